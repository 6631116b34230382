/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * connbeat_proto.h — the control protocol between `connbeat` and
 * `connbeatd`, over the daemon's Unix stream socket.
 *
 * Framing: every message is a 16-byte struct cb_frame_hdr followed by
 * `length` payload bytes (at most CB_PROTO_MAX_PAYLOAD). A client sends one
 * request and reads the reply before it sends the next; it may keep the
 * connection for several requests.
 *
 *   DUMP_REQ  -> ROWS* END       sessions matching a filter, streamed in chunks
 *   STATS_REQ -> STATS           counters and gauges as (name, value) pairs
 *   DRAIN_REQ -> DRAINED         mark matching sessions DRAINING
 *   any       -> ERROR           malformed request, permission, failure
 *
 * Layout rules (same as include/connbeat_abi.h): only fixed-width integers
 * and char arrays, explicit padding that must be zero, every size pinned
 * with _Static_assert. Host byte order: both ends are on the same host.
 * Any change of layout or meaning bumps CB_PROTO_VERSION; a daemon answers a
 * frame of another version with an ERROR (EPROTONOSUPPORT) that says so.
 */
#ifndef CONNBEAT_PROTO_WIRE_H
#define CONNBEAT_PROTO_WIRE_H

#include <stdint.h>


/* Where connbeatd listens and connbeat connects unless told otherwise. */
#define CB_DEFAULT_SOCKET "/run/connbeat/connbeat.sock"

#define CB_PROTO_MAGIC 0x31504243u /* "CBP1" in memory order */
#define CB_PROTO_VERSION 1
#define CB_PROTO_MAX_PAYLOAD (1u << 20)

/* Drain states of a session (design.md §3); rows and filters carry them. */
enum cb_drain_state {
	CB_ST_ACTIVE = 0,
	CB_ST_STALE = 1,
	CB_ST_DRAINING = 2,
	CB_ST_CLOSED = 3,
	CB_ST_COUNT = 4,
};

/* Which sessions a request is about; the semantics are in user/core/filter.h. */
enum cb_filter_field {
	CB_FLT_STATE = 1 << 0,
	CB_FLT_TCP_STATE = 1 << 1,
	CB_FLT_PORT = 1 << 2,
	CB_FLT_SPORT = 1 << 3,
	CB_FLT_DPORT = 1 << 4,
	CB_FLT_ADDR = 1 << 5,
	CB_FLT_PID = 1 << 6,
	CB_FLT_OPERATOR_DRAINED = 1 << 7, /* only sessions an operator drained */
	CB_FLT_ALL = (1 << 8) - 1,
};

struct cb_filter {
	uint32_t fields;         /* enum cb_filter_field: which criteria are set */
	uint32_t state_mask;     /* 1 << enum cb_drain_state */
	uint32_t tcp_state_mask; /* 1 << enum cb_tcp_state */
	uint32_t pid;
	uint16_t port;
	uint16_t sport;
	uint16_t dport;
	uint8_t addr_family; /* 4 or 6 */
	uint8_t __pad0;
	uint8_t addr[16];
};

_Static_assert(sizeof(struct cb_filter) == 40, "cb_filter travels on the wire");

enum cb_msg_type {
	/* requests */
	CB_MSG_DUMP_REQ = 1,
	CB_MSG_STATS_REQ = 2,
	CB_MSG_DRAIN_REQ = 3,
	/* replies */
	CB_MSG_ROWS = 16,
	CB_MSG_END = 17,
	CB_MSG_STATS = 18,
	CB_MSG_DRAINED = 19,
	CB_MSG_ERROR = 20,
};

struct cb_frame_hdr {
	uint32_t magic;   /* CB_PROTO_MAGIC */
	uint16_t version; /* CB_PROTO_VERSION */
	uint16_t type;    /* enum cb_msg_type */
	uint32_t length;  /* payload bytes that follow */
	uint32_t flags;   /* reserved: 0 */
};

enum cb_dump_mode {
	CB_DUMP_LIST = 0,  /* every matching session */
	CB_DUMP_STALE = 1, /* only those silent for at least the threshold, most idle first */
};

enum cb_idle_basis_req {
	CB_BASIS_DEFAULT = 0, /* the daemon's --idle-basis */
	CB_BASIS_DATA = 1,
	CB_BASIS_ANY = 2,
};

struct cb_dump_req {
	struct cb_filter filter;
	uint8_t mode;       /* enum cb_dump_mode */
	uint8_t idle_basis; /* enum cb_idle_basis_req */
	uint16_t __pad0;
	uint32_t limit;     /* at most this many rows; 0 = all */
	uint64_t idle_ns;   /* STALE threshold; 0 = the daemon's (--idle, and
			     * --drain-timeout for DRAINING sessions) */
};

struct cb_drain_req {
	struct cb_filter filter;
};

/* cb_row.flags */
enum cb_row_flags {
	CB_ROW_AGE_UNKNOWN = 1 << 0,    /* seeded: opened before connbeat saw it */
	CB_ROW_OWNER_KNOWN = 1 << 1,    /* pid/comm valid */
	CB_ROW_OPERATOR_DRAIN = 1 << 2, /* an operator drained it */
};

/* One session. Durations are computed by the daemon when it copies the row. */
struct cb_row {
	uint64_t cookie;
	uint8_t saddr[16]; /* local; IPv4 in the first 4 bytes */
	uint8_t daddr[16]; /* peer */
	uint16_t sport;
	uint16_t dport;
	uint32_t netns;
	uint8_t family;    /* 4 or 6 */
	uint8_t tcp_state; /* enum cb_tcp_state */
	uint8_t state;     /* enum cb_drain_state */
	uint8_t flags;     /* enum cb_row_flags */
	uint32_t pid;
	uint64_t idle_ns; /* silent for, on the requested basis */
	uint64_t seen_ns; /* since any sign of life */
	uint64_t age_ns;  /* since first seen (see CB_ROW_AGE_UNKNOWN) */
	uint64_t tx_bytes;
	uint64_t rx_bytes;
	uint32_t segs_in;
	uint32_t segs_out;
	uint32_t retrans;
	uint32_t resets;
	char comm[16]; /* NUL-padded */
};

/* ROWS payload: this header, then `count` struct cb_row. */
struct cb_rows_hdr {
	uint32_t count;
	uint32_t __pad0;
};
#define CB_ROWS_PER_FRAME 1024

struct cb_end {
	uint64_t rows;    /* rows sent in this reply */
	uint64_t matched; /* sessions that matched (≥ rows when a limit cut it) */
	int32_t status;   /* 0, or a positive errno when the dump stopped early */
	uint32_t __pad0;
};

/* STATS payload: this header, then `count` struct cb_stat_entry. Names are
 * Prometheus series, labels included: connbeat_sessions{state="stale"}. */
struct cb_stats_hdr {
	uint32_t count;
	uint32_t __pad0;
};
#define CB_STAT_NAME_LEN 96
struct cb_stat_entry {
	char name[CB_STAT_NAME_LEN]; /* NUL-terminated */
	uint64_t value;
};

struct cb_drained {
	uint64_t count;
};

#define CB_ERROR_MSG_LEN 160
struct cb_error {
	int32_t code; /* positive errno */
	uint32_t __pad0;
	char message[CB_ERROR_MSG_LEN]; /* NUL-terminated, says what to do */
};

_Static_assert(sizeof(struct cb_frame_hdr) == 16, "cb_frame_hdr layout");
_Static_assert(sizeof(struct cb_dump_req) == 56, "cb_dump_req layout");
_Static_assert(sizeof(struct cb_drain_req) == 40, "cb_drain_req layout");
_Static_assert(sizeof(struct cb_row) == 128, "cb_row layout");
_Static_assert(sizeof(struct cb_end) == 24, "cb_end layout");
_Static_assert(sizeof(struct cb_stat_entry) == 104, "cb_stat_entry layout");
_Static_assert(sizeof(struct cb_error) == 168, "cb_error layout");
_Static_assert(sizeof(struct cb_rows_hdr) + CB_ROWS_PER_FRAME * sizeof(struct cb_row) <=
		       CB_PROTO_MAX_PAYLOAD,
	       "a full ROWS frame fits");

#endif /* CONNBEAT_PROTO_WIRE_H */
