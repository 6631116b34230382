/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * session.h — the session record: one per TCP connection, keyed by the
 * socket cookie.
 *
 * Size budget (design.md §3): ≤ 128 bytes per session *including* every
 * index and wheel link. The record itself is 112 bytes; its hash and wheel
 * links (12 bytes, struct cb_session_links) live in a dense array beside
 * the slab, and the hash-bucket array of the session map adds 2–4 bytes per
 * session. To get there:
 *  - links are 32-bit slab indices, not pointers (records live in a per-shard
 *    slab, never malloc'ed one by one: malloc's own header would eat 16 B);
 *  - the process name, the network namespace and the cgroup are interned
 *    (comm_id, netns_id, cgroup_id: 2 bytes each, core/comm.h and
 *    core/intern.h), pid kept inline;
 *  - the smoothed RTT is kept in 16 bits, as a small float (cb_rtt_encode):
 *    12 significant bits, to 134 s; rows a query returns are read exactly
 *    from the kernel anyway;
 *  - the struct is packed to 4-byte alignment: 64-bit fields are only ever
 *    read or written under the shard lock, so they need not be naturally
 *    aligned for atomicity; x86-64 and arm64 load them unaligned.
 * Why the links are apart: unlinking a session (a close that moves its
 * deadline, an eviction at the cap) walks its hash chain and touches its
 * wheel neighbours. In a slab of hundreds of MB each of those is a cache
 * miss on a record nobody needs; in the links array (12 B each, 1/10 of
 * the slab) they mostly hit. Measured by bench_core's churn at the cap.
 * `state` (the drain state) is the one field changed with atomic
 * compare-and-swap (see state.h).
 */
#ifndef CONNBEAT_SESSION_H
#define CONNBEAT_SESSION_H

#include <stdint.h>

#include "connbeat_proto.h" /* enum cb_drain_state: rows carry it */

#pragma GCC poison u8 u16 u32 u64

/* Index of a record in its shard's slab; 0 is never a valid record, so
 * zero-filled memory is an empty bucket / end of list. */
typedef uint32_t cb_sidx_t;
#define CB_SIDX_NIL ((cb_sidx_t)0)

/* cb_session.flags */
enum cb_session_flags {
	CB_SF_FAMILY6 = 1 << 0,       /* IPv6 (incl. v4-mapped); else IPv4 */
	CB_SF_FIRST_UNKNOWN = 1 << 1, /* seeded (sock_diag / map): opened before we saw it */
	CB_SF_OWNER_KNOWN = 1 << 2,   /* pid is valid (comm_id may still be 0) */
	CB_SF_OPERATOR_DRAIN = 1 << 3, /* DRAINING because an operator asked */
	CB_SF_CLOSE_STREAMED = 1 << 4, /* the events stream has had its close (events.c,
					* under the shard lock): a second CLOSE is not one */
	CB_SF_REMNANT = 1 << 5,       /* the kernel keeps it as a FIN_WAIT2 timewait
				       * remnant: DRAINING until the remnant goes */
	CB_SF_SWEEP_SEEN = 1 << 6,    /* the background sweep met its socket this cycle */
	CB_SF_OWNER_SOUGHT = 1 << 7,  /* an owners pass found no process holding it */
};

/* cb_session.resets: a count of RSTs and how the connection was reset, and
 * (in the one spare bit the record has) whether it was accepted. */
#define CB_RESETS_COUNT_MAX 31u
#define CB_RESETS_PASSIVE 0x20u  /* accepted: the local end of a service */
#define CB_RESETS_SENT 0x40u
#define CB_RESETS_RECEIVED 0x80u

struct __attribute__((packed, aligned(4))) cb_session {
	uint64_t cookie;         /* socket cookie: the key */
	/* beside the key, in the record's first 16 bytes (one cache line at any
	 * 16-byte offset): what a chain walk, an eviction scan and a state
	 * change read first */
	_Atomic uint8_t state;   /* enum cb_drain_state: changed only by CAS */
	uint8_t flags;           /* enum cb_session_flags */
	uint8_t tcp_state;       /* enum cb_tcp_state (kernel numbering) */
	uint8_t resets;          /* RSTs: count (saturating) | CB_RESETS_* flags */
	uint32_t pid;            /* first process seen using it (tgid) */
	uint64_t first_seen_ns;  /* CLOCK_MONOTONIC */
	uint64_t last_data_ns;   /* payload moved either way */
	uint64_t last_seen_ns;   /* any sign of life (incl. pure ACKs, keepalives) */
	uint64_t tx_bytes;
	uint64_t rx_bytes;
	uint8_t saddr[16];       /* local; IPv4 in the first 4 bytes */
	uint8_t daddr[16];       /* peer */
	uint32_t segs_in;        /* the kernel's tcp_sock totals, as of the newest record */
	uint32_t segs_out;
	uint32_t retrans;        /* total_retrans */
	uint16_t netns_id;       /* interned network namespace inode, 0 = unknown */
	uint16_t cgroup_id;      /* interned cgroup v2 id, 0 = unknown */
	uint16_t sport;          /* host byte order */
	uint16_t dport;
	uint16_t comm_id;        /* interned process name, 0 = unknown */
	uint16_t rtt;            /* smoothed RTT, cb_rtt_encode()d; 0 = unknown */
};

_Static_assert(sizeof(struct cb_session) == 112, "cb_session must stay 112 bytes");

/* A session's place in its shard's hash chain and timing-wheel slot list,
 * at the same index as the record (session_map.c keeps the array). */
struct cb_session_links {
	cb_sidx_t hnext; /* next in hash chain; next free index once freed */
	cb_sidx_t wnext; /* timing-wheel slot list */
	cb_sidx_t wprev; /* 0: not in the wheel (see wheel.h for slot heads) */
};

/* RTT in 16 bits: 12 significant bits and a 4-bit shift, µs up to
 * 4095 << 15 (134 s); exact below 4.1 ms, within 1/2048 above. */
static inline uint16_t cb_rtt_encode(uint32_t us)
{
	uint32_t shift = 0;

	while ((us >> shift) > 0xfff && shift < 15)
		shift++;
	if ((us >> shift) > 0xfff)
		return 0xffff;
	return (uint16_t)(shift << 12 | (us >> shift));
}

static inline uint32_t cb_rtt_decode(uint16_t v)
{
	return (uint32_t)(v & 0xfff) << (v >> 12);
}

#endif /* CONNBEAT_SESSION_H */
