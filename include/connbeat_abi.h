/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * connbeat_abi.h — the ABI between the eBPF programs (bpf/connbeat.bpf.c)
 * and the daemon: ring records, the pinned `heartbeats` map key and value,
 * and the indices of the per-CPU `stats` array.
 *
 * Contract:
 *  - Only __u8..__u64 fields, explicit padding, no pointers, no bool. Every
 *    layout is pinned with _Static_assert, compiled on both sides, so a
 *    mismatch breaks the build instead of corrupting data.
 *  - Every ring record is one `struct cb_record`: it starts with a kind, the
 *    ABI version and its own size, so the reader can reject short, long or
 *    foreign records before it trusts a single field (count and drop).
 *  - Times are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns()) with one-tick
 *    resolution: the programs read the clock once per jiffy per CPU and reuse
 *    it (bpf/connbeat.bpf.c clock_now()), so a time is never ahead of the
 *    true one and at most 1/HZ (1-10 ms) behind; records of one connection
 *    written within one tick carry the same ts.
 *  - The socket cookie (bpf_get_socket_cookie() == sock_diag idiag_cookie)
 *    is the one identity of a connection everywhere.
 *  - Ports are host byte order. IPv4 addresses use the first 4 bytes of the
 *    16-byte arrays (family 4); IPv6, including v4-mapped ::ffff:a.b.c.d,
 *    use all 16 (family 6), the way `ss` prints them.
 *  - Bump CB_ABI_VERSION on any change of layout or meaning. Pinned maps
 *    whose layout changed are recreated by the loader (libbpf refuses to
 *    reuse a pinned map whose key/value size or type differ).
 */
#ifndef CONNBEAT_ABI_H
#define CONNBEAT_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define CB_ABI_VERSION 1
#define CB_COMM_LEN 16

/* Names of the pinned objects under --pin-dir. */
#define CB_MAP_HEARTBEATS "heartbeats"
#define CB_MAP_EVENTS "events"
#define CB_MAP_BEATS "beats"
#define CB_MAP_STATS "stats"

/* TCP states, kernel numbering (include/net/tcp_states.h). */
enum cb_tcp_state {
	CB_TCP_ESTABLISHED = 1,
	CB_TCP_SYN_SENT = 2,
	CB_TCP_SYN_RECV = 3,
	CB_TCP_FIN_WAIT1 = 4,
	CB_TCP_FIN_WAIT2 = 5,
	CB_TCP_TIME_WAIT = 6,
	CB_TCP_CLOSE = 7,
	CB_TCP_CLOSE_WAIT = 8,
	CB_TCP_LAST_ACK = 9,
	CB_TCP_LISTEN = 10,
	CB_TCP_CLOSING = 11,
	CB_TCP_NEW_SYN_RECV = 12,
	CB_TCP_MAX_STATES = 13,
};

/* What a ring record reports. Lifecycle kinds travel on the `events` ring
 * (must not be lost), BEAT and RETRANS on the lossy `beats` ring. */
enum cb_rec_kind {
	CB_REC_OPEN = 1,    /* first sight: entered SYN_SENT (active) or SYN_RECV (passive) */
	CB_REC_STATE = 2,   /* any later TCP state change of a connection */
	CB_REC_CLOSE = 3,   /* entered TCP_CLOSE (or destroyed unseen); counters are final */
	CB_REC_RESET = 4,   /* RST sent or received (see CB_RF_RST_*) */
	CB_REC_BEAT = 5,    /* throttled heartbeat: at most one per socket per CPU per interval */
	CB_REC_RETRANS = 6, /* a segment was retransmitted */
	CB_REC_KIND_MAX = 7,
};

/* cb_record.flags */
enum cb_rec_flags {
	CB_RF_PROCESS_CTX = 1 << 0,  /* pid/comm name the task that caused the record */
	CB_RF_FROM_DESTROY = 1 << 1, /* CLOSE synthesised at tcp_destroy_sock: its
				      * inet_sock_set_state(CLOSE) run was missed */
	CB_RF_RST_SENT = 1 << 2,     /* RESET: we sent the RST */
	CB_RF_RST_RECEIVED = 1 << 3, /* RESET: the peer sent the RST */
	CB_RF_DATA = 1 << 4,         /* BEAT: caused by payload (send/recv or data segment) */
	CB_RF_SYNTH = 1 << 5,        /* never set by the kernel: a record the daemon built
				      * itself from sock_diag or the heartbeats map */
};

/* The endpoints of a connection. src = local side, dst = peer (like `ss`). */
struct cb_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* 0 in an active OPEN unless bound: connect() enters SYN_SENT
		      * before it picks the port; later records carry it */
	__u16 dport;
	__u32 netns; /* inode number of the socket's network namespace */
	__u8 family; /* 4 or 6 */
	__u8 __pad[7];
};

/*
 * Counters of one connection, summed over every CPU's slot of the per-CPU
 * `heartbeats` value when the record was written (times: the newest).
 * segs_in/segs_out/retrans are the kernel's own tcp_sock counters (u32, they
 * wrap like the kernel's); bytes are application bytes moved through
 * send/recv (sock_send_length / sock_recv_length).
 */
struct cb_counters {
	__u64 last_data_ns; /* payload moved either way */
	__u64 last_seen_ns; /* any sign of life: data, pure ACK, keepalive */
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u32 segs_in;
	__u32 segs_out;
	__u32 retrans;
	__u16 resets;
	__u16 __pad;
};

/* One ring record, the same layout for every kind (one decoder, one size). */
struct cb_record {
	__u8 kind;    /* enum cb_rec_kind */
	__u8 version; /* CB_ABI_VERSION */
	__u16 size;   /* sizeof(struct cb_record) */
	__u8 old_state; /* enum cb_tcp_state before the change (STATE/CLOSE/OPEN) */
	__u8 new_state; /* enum cb_tcp_state now (every kind) */
	__u8 flags;     /* enum cb_rec_flags */
	__u8 __pad0;
	__u64 cookie; /* bpf_get_socket_cookie() */
	__u64 ts_ns;  /* when the record was written */
	struct cb_tuple tuple;
	struct cb_counters ctr; /* zero in OPEN and STATE; filled in CLOSE, BEAT, RETRANS,
				 * RESET (a RESET sent after CLOSE, as SO_LINGER 0 does, has
				 * only the tcp_sock counters: the map entry is gone) */
	__u32 pid; /* tgid, valid with CB_RF_PROCESS_CTX */
	__u32 __pad1;
	char comm[CB_COMM_LEN]; /* valid with CB_RF_PROCESS_CTX */
};

/* Key of the pinned `heartbeats` map: the socket cookie. */
struct cb_hb_key {
	__u64 cookie;
};

/*
 * Value of the pinned `heartbeats` map (BPF_MAP_TYPE_LRU_PERCPU_HASH): one
 * slot per possible CPU, each written only by its own CPU, so no atomics.
 * Merge across CPUs: newest time, summed counters, first non-zero pid,
 * OR of flags. Both clocks start at the open (SYN_SENT/SYN_RECV), so a
 * connection that never moves data is idle since it was opened; a seeded
 * entry (CB_HBF_SEEDED) starts at its first heartbeat instead.
 * Kept at 48 bytes: the kernel stores entries x possible CPUs x this size.
 */
struct cb_heartbeat {
	__u64 last_data_ns;
	__u64 last_seen_ns;
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u32 pid;        /* first process seen on this CPU in process context */
	__u32 beat_stamp; /* (ns >> 20) when this CPU last emitted a BEAT; wraps after
			   * ~52 days, compared modulo 2^32 */
	__u32 retrans;    /* retransmits seen on this CPU */
	__u16 resets;     /* RSTs sent or received seen on this CPU */
	__u16 flags;      /* CB_HBF_* */
};

enum cb_hb_flags {
	CB_HBF_SEEDED = 1 << 0, /* created by the heartbeat path: the socket predates
				 * the programs or its OPEN was missed */
	CB_HBF_BEAT = 1 << 1,   /* this CPU's slot has emitted a BEAT: beat_stamp is
				 * valid (a slot without it beats at its first activity) */
};

/* Indices of the per-CPU `stats` array (BPF_MAP_TYPE_PERCPU_ARRAY of __u64). */
enum cb_stat {
	CB_STAT_EVENTS_EMITTED = 0,  /* records submitted to `events` */
	CB_STAT_EVENTS_DROPPED = 1,  /* `events` reservation failures (ring full) */
	CB_STAT_BEATS_EMITTED = 2,   /* records submitted to `beats` */
	CB_STAT_BEATS_DROPPED = 3,   /* `beats` reservation failures (ring full) */
	CB_STAT_MAP_UPDATE_FAILED = 4, /* `heartbeats` insert failed */
	CB_STAT_MAP_SEEDED = 5,      /* `heartbeats` entries created by the heartbeat path */
	CB_STAT_MAX = 8,
};

_Static_assert(sizeof(struct cb_tuple) == 48, "cb_tuple layout");
_Static_assert(sizeof(struct cb_counters) == 48, "cb_counters layout");
_Static_assert(sizeof(struct cb_record) == 144, "cb_record layout");
_Static_assert(sizeof(struct cb_hb_key) == 8, "cb_hb_key layout");
_Static_assert(sizeof(struct cb_heartbeat) == 48, "cb_heartbeat layout");
_Static_assert(__builtin_offsetof(struct cb_record, cookie) == 8, "cb_record.cookie");
_Static_assert(__builtin_offsetof(struct cb_record, tuple) == 24, "cb_record.tuple");
_Static_assert(__builtin_offsetof(struct cb_record, ctr) == 72, "cb_record.ctr");
_Static_assert(__builtin_offsetof(struct cb_record, pid) == 120, "cb_record.pid");

#endif /* CONNBEAT_ABI_H */
