/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * connbeat_proto.h — the control protocol between `connbeat` and
 * `connbeatd`, over the daemon's Unix stream socket.
 *
 * Framing: every message is a 16-byte struct cb_frame_hdr followed by
 * `length` payload bytes (at most CB_PROTO_MAX_PAYLOAD). A client sends one
 * request and reads the reply before it sends the next; it may keep the
 * connection for several requests (a drain set lives as long as it).
 *
 *   DUMP_REQ         -> ROWS* END      sessions matching a filter, streamed
 *   STATS_REQ        -> STATS          counters and gauges as (name, value) pairs
 *   DRAIN_REQ        -> DRAINED        mark matching sessions DRAINING (and keep
 *                                      the set for DRAIN_STATUS / KILL)
 *   DRAIN_STATUS_REQ -> ROWS* END      which of the kept set are still open
 *   KILL_REQ         -> ROWS* END      destroy matching sockets (or the kept set)
 *   SUMMARY_REQ      -> GROUPS* END    counts per cgroup / comm / port / peer
 *   EVENTS_REQ       -> EVENTS*        a live stream until the client hangs up
 *   any              -> ERROR          malformed request, permission, failure
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
#define CB_PROTO_VERSION 2
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
	CB_FLT_NETNS = 1 << 8,
	CB_FLT_CGROUP = 1 << 9,
	CB_FLT_ALL = (1 << 10) - 1,
};

/* A cgroup path relative to the cgroup2 mount, NUL-terminated. */
#define CB_CGROUP_PATH_MAX 512

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
	uint32_t netns;      /* inode of the network namespace */
	uint32_t __pad1;
	char cgroup[CB_CGROUP_PATH_MAX]; /* that cgroup and its descendants */
};

enum cb_msg_type {
	/* requests */
	CB_MSG_DUMP_REQ = 1,
	CB_MSG_STATS_REQ = 2,
	CB_MSG_DRAIN_REQ = 3,
	CB_MSG_DRAIN_STATUS_REQ = 4,
	CB_MSG_KILL_REQ = 5,
	CB_MSG_SUMMARY_REQ = 6,
	CB_MSG_EVENTS_REQ = 7,
	CB_MSG_REQ_MAX = 8,
	/* replies */
	CB_MSG_ROWS = 16,
	CB_MSG_END = 17,
	CB_MSG_STATS = 18,
	CB_MSG_DRAINED = 19,
	CB_MSG_ERROR = 20,
	CB_MSG_GROUPS = 21,
	CB_MSG_EVENTS = 22,
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

/* --sort: largest first (idle: most idle; age: oldest), ties by cookie. */
enum cb_sort_key {
	CB_SORT_NONE = 0,
	CB_SORT_IDLE = 1,
	CB_SORT_AGE = 2,
	CB_SORT_TX = 3,
	CB_SORT_RX = 4,
	CB_SORT_RETRANS = 5,
	CB_SORT_RTT = 6,
	CB_SORT_COUNT = 7,
};

struct cb_dump_req {
	struct cb_filter filter;
	uint8_t mode;       /* enum cb_dump_mode */
	uint8_t idle_basis; /* enum cb_idle_basis_req */
	uint8_t sort;       /* enum cb_sort_key; with a limit the daemon picks the top
			     * `limit` (memory bounded by it); without, the CLI sorts */
	uint8_t __pad0;
	uint32_t limit;     /* at most this many rows; 0 = all */
	uint64_t idle_ns;   /* STALE threshold; 0 = the daemon's (--idle, and
			     * --drain-timeout for DRAINING sessions) */
};

enum cb_drain_flags {
	CB_DRAIN_KEEP = 1 << 0, /* remember the set (every matching open session, those
				 * already DRAINING included) on this connection */
};

struct cb_drain_req {
	struct cb_filter filter;
	uint8_t flags; /* enum cb_drain_flags */
	uint8_t __pad0[7];
};

struct cb_drain_status_req {
	uint8_t rows;  /* 1: send the rows still open too */
	uint8_t __pad0[7];
};

enum cb_kill_flags {
	CB_KILL_DRY_RUN = 1 << 0, /* report what would be killed, kill nothing */
	CB_KILL_DRAINED = 1 << 1, /* the set kept by DRAIN_REQ, not the filter */
};

struct cb_kill_req {
	struct cb_filter filter;
	uint8_t flags; /* enum cb_kill_flags */
	uint8_t __pad0[7];
};

enum cb_summary_by {
	CB_BY_CGROUP = 1,
	CB_BY_COMM = 2,
	CB_BY_PORT = 3, /* the local port of listening-side sessions: the service */
	CB_BY_PEER = 4, /* the remote address */
	CB_BY_COUNT = 5,
};

struct cb_summary_req {
	struct cb_filter filter;
	uint8_t by; /* enum cb_summary_by */
	uint8_t __pad0[7];
};

struct cb_events_req {
	struct cb_filter filter;
};

/* cb_row.flags */
enum cb_row_flags {
	CB_ROW_AGE_UNKNOWN = 1 << 0,    /* seeded: opened before connbeat saw it */
	CB_ROW_OWNER_KNOWN = 1 << 1,    /* pid valid (comm when not empty) */
	CB_ROW_OPERATOR_DRAIN = 1 << 2, /* an operator drained it */
	CB_ROW_REMNANT = 1 << 3,        /* a FIN_WAIT2 timewait remnant */
	CB_ROW_RST_SENT = 1 << 4,       /* we sent an RST */
	CB_ROW_RST_RECEIVED = 1 << 5,   /* the peer sent one */
	CB_ROW_FRESH = 1 << 6,          /* state and counters read from the kernel now */
	CB_ROW_LISTENING_SIDE = 1 << 7, /* accepted (the local end of a service) */
};

/* cb_row.flags2 */
enum cb_row_flags2 {
	CB_ROW2_ORPHAN = 1 << 0, /* no process holds the socket now (ss shows no users):
				  * an orphan or a remnant; pid and comm, when known,
				  * are its last owner's */
};

/* One session. Durations are computed by the daemon when it copies the row. */
struct cb_row {
	uint64_t cookie;
	uint8_t saddr[16]; /* local; IPv4 in the first 4 bytes */
	uint8_t daddr[16]; /* peer */
	uint16_t sport;
	uint16_t dport;
	uint32_t netns;    /* inode */
	uint8_t family;    /* 4 or 6 */
	uint8_t tcp_state; /* enum cb_tcp_state */
	uint8_t state;     /* enum cb_drain_state */
	uint8_t flags;     /* enum cb_row_flags */
	uint32_t pid;
	uint64_t idle_ns; /* silent for, on the requested basis */
	uint64_t seen_ns; /* since any sign of life */
	uint64_t age_ns;  /* since first seen (see CB_ROW_AGE_UNKNOWN) */
	uint64_t tx_bytes; /* the kernel's bytes_acked */
	uint64_t rx_bytes; /* the kernel's bytes_received */
	uint32_t segs_in;
	uint32_t segs_out;
	uint32_t retrans;  /* total_retrans */
	uint32_t resets;
	char comm[16];     /* NUL-padded */
	uint32_t rtt_us;   /* smoothed RTT; 0 unknown */
	uint32_t flags2;   /* enum cb_row_flags2 */
	uint64_t cgroup_id; /* cgroup v2 id (kernfs id); 0 unknown */
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
	int32_t status;   /* 0, or a positive errno when the reply stopped early */
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
	uint64_t count;   /* sessions marked DRAINING now */
	uint64_t matched; /* the set: every matching open session */
};

/* One group of a summary. */
#define CB_TCP_STATE_SLOTS 13 /* CB_TCP_MAX_STATES of connbeat_abi.h */
struct cb_group {
	uint64_t sessions;
	uint64_t by_state[CB_ST_COUNT];
	uint64_t by_tcp_state[CB_TCP_STATE_SLOTS];
	uint64_t oldest_idle_ns; /* of its open sessions */
	uint64_t cgroup_id;      /* by cgroup (0: unknown) */
	uint16_t port;           /* by port */
	uint8_t family;          /* by peer: 4 or 6 */
	uint8_t __pad0[5];
	uint8_t addr[16];        /* by peer */
	char comm[16];           /* by comm ("" unknown) */
};

/* GROUPS payload: this header, then `count` struct cb_group. */
struct cb_groups_hdr {
	uint32_t count;
	uint32_t __pad0;
};
#define CB_GROUPS_PER_FRAME 1024

enum cb_event_kind {
	CB_EV_OPEN = 1,
	CB_EV_STATE = 2,
	CB_EV_CLOSE = 3,
};

enum cb_event_end {
	CB_END_NONE = 0,
	CB_END_FIN = 1,
	CB_END_RST_SENT = 2,
	CB_END_RST_RECEIVED = 3,
};

struct cb_event {
	uint8_t kind;      /* enum cb_event_kind */
	uint8_t old_state; /* enum cb_tcp_state */
	uint8_t new_state;
	uint8_t end;       /* close: enum cb_event_end */
	uint32_t __pad0;
	uint64_t ts_ns;       /* CLOCK_MONOTONIC, when the kernel reported it */
	uint64_t duration_ns; /* close: since the open (0 when the open was unseen) */
	struct cb_row row;    /* the connection as of the event */
};

/* EVENTS payload: this header, then `count` struct cb_event. `missed` is
 * how many events this client missed since the previous frame (it did not
 * keep up; ingest never waits for it). */
struct cb_events_hdr {
	uint32_t count;
	uint32_t __pad0;
	uint64_t missed;
};
#define CB_EVENTS_PER_FRAME 256

#define CB_ERROR_MSG_LEN 160
struct cb_error {
	int32_t code; /* positive errno */
	uint32_t __pad0;
	char message[CB_ERROR_MSG_LEN]; /* NUL-terminated, says what to do */
};

_Static_assert(sizeof(struct cb_filter) == 560, "cb_filter travels on the wire");
_Static_assert(sizeof(struct cb_frame_hdr) == 16, "cb_frame_hdr layout");
_Static_assert(sizeof(struct cb_dump_req) == 576, "cb_dump_req layout");
_Static_assert(sizeof(struct cb_drain_req) == 568, "cb_drain_req layout");
_Static_assert(sizeof(struct cb_kill_req) == 568, "cb_kill_req layout");
_Static_assert(sizeof(struct cb_summary_req) == 568, "cb_summary_req layout");
_Static_assert(sizeof(struct cb_row) == 144, "cb_row layout");
_Static_assert(sizeof(struct cb_end) == 24, "cb_end layout");
_Static_assert(sizeof(struct cb_stat_entry) == 104, "cb_stat_entry layout");
_Static_assert(sizeof(struct cb_error) == 168, "cb_error layout");
_Static_assert(sizeof(struct cb_group) == 200, "cb_group layout");
_Static_assert(sizeof(struct cb_event) == 168, "cb_event layout");
_Static_assert(sizeof(struct cb_rows_hdr) + CB_ROWS_PER_FRAME * sizeof(struct cb_row) <=
		       CB_PROTO_MAX_PAYLOAD,
	       "a full ROWS frame fits");
_Static_assert(sizeof(struct cb_groups_hdr) + CB_GROUPS_PER_FRAME * sizeof(struct cb_group) <=
		       CB_PROTO_MAX_PAYLOAD,
	       "a full GROUPS frame fits");

#endif /* CONNBEAT_PROTO_WIRE_H */
