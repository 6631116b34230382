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

#define CB_ABI_VERSION 2
#define CB_COMM_LEN 16

/* Names of the pinned objects under --pin-dir. */
#define CB_MAP_HEARTBEATS "heartbeats"
#define CB_MAP_EVENTS "events"
#define CB_MAP_BEATS "beats"
#define CB_MAP_STATS "stats"
#define CB_MAP_LOST "lost"

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

/*
 * What a ring record reports. Lifecycle kinds travel on the `events` ring
 * (must not be lost), BEAT on the lossy `beats` ring.
 *
 * Which lifecycle records the programs write is chosen for cost (each one
 * is a ring reservation on the hot path of every connection): what the
 * daemon must know when it happens, and nothing it can read later.
 *   OPEN   when a connection reaches ESTABLISHED, either side: the tuple is
 *          complete then (connect() enters SYN_SENT before it picks the
 *          local port). Handshakes that never complete are not sessions.
 *   STATE  when a connection leaves ESTABLISHED (FIN_WAIT1: we close first;
 *          CLOSE_WAIT: the peer did): it becomes DRAINING. Later steps of
 *          the close (FIN_WAIT2, LAST_ACK, CLOSING) are read from the kernel
 *          when a row is shown; every change is reported only while
 *          someone streams events (the loader's `all_states` switch).
 *   CLOSE  entered TCP_CLOSE (or destroyed unseen): final counters.
 *   RESET  an RST sent or received on a tracked connection.
 *   BEAT   throttled heartbeat (see struct cb_heartbeat).
 */
enum cb_rec_kind {
	CB_REC_OPEN = 1,
	CB_REC_STATE = 2,
	CB_REC_CLOSE = 3,
	CB_REC_RESET = 4,
	CB_REC_BEAT = 5,
	CB_REC_KIND_MAX = 6,
};

/* cb_record.flags */
enum cb_rec_flags {
	CB_RF_PROCESS_CTX = 1 << 0,  /* pid/comm name the task that caused the record */
	CB_RF_FROM_DESTROY = 1 << 1, /* CLOSE synthesised at tcp_destroy_sock: its
				      * inet_sock_set_state(CLOSE) run was missed or its
				      * record could not be reserved */
	CB_RF_RST_SENT = 1 << 2,     /* RESET: we sent the RST */
	CB_RF_RST_RECEIVED = 1 << 3, /* RESET: the peer sent the RST */
	CB_RF_DATA = 1 << 4,         /* BEAT: this CPU saw payload since its last BEAT */
	CB_RF_SYNTH = 1 << 5,        /* never set by the kernel: a record the daemon built
				      * itself from sock_diag or the heartbeats map */
	CB_RF_REMNANT = 1 << 6,      /* CLOSE from FIN_WAIT2 before the peer's FIN: the
				      * kernel keeps a timewait remnant in FIN_WAIT2 under
				      * the same cookie; the connection is not over */
	CB_RF_OWNER_PID = 1 << 7,    /* pid is the connection's owner (connect()'s
				      * process, from the heartbeat); comm is not filled */
	CB_RF_COUNTERS = 1 << 8,     /* ctr holds the kernel's totals (tcp_sock) */
	CB_RF_PASSIVE = 1 << 9,      /* never set by the kernel (an OPEN from SYN_RECV says
				      * it): the daemon found the socket accepted */
	CB_RF_SEEDED = 1 << 10,      /* BEAT of an entry the heartbeat path created itself
				      * (the socket predates the programs, or its OPEN run
				      * was missed): the only BEAT that stands for an OPEN.
				      * Any other BEAT can outrun its OPEN or trail its
				      * CLOSE (another ring): it never makes a session */
};

/* The endpoints of a connection. src = local side, dst = peer (like `ss`). */
struct cb_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	__u32 netns; /* inode number of the socket's network namespace */
	__u8 family; /* 4 or 6 */
	__u8 __pad[7];
};

/*
 * What a record knows about a connection's traffic. The totals are the
 * kernel's own (struct tcp_sock), read when the record was written: the
 * same values `ss -ti` prints (bytes_acked, bytes_received, segs_in,
 * segs_out, the total of retrans, rtt), valid with CB_RF_COUNTERS. The
 * clocks are the writing CPU's heartbeat slot (BEAT only; 0 elsewhere).
 */
struct cb_counters {
	__u64 bytes_acked;    /* tx_bytes */
	__u64 bytes_received; /* rx_bytes */
	__u32 segs_in;
	__u32 segs_out;
	__u32 total_retrans;
	__u32 srtt_us; /* smoothed RTT, µs (tcp_sock srtt_us >> 3) */
	__u64 last_data_ns;
	__u64 last_seen_ns;
};

/* One ring record, the same layout for every kind (one decoder, one size). */
struct cb_record {
	__u8 kind;      /* enum cb_rec_kind */
	__u8 version;   /* CB_ABI_VERSION */
	__u16 size;     /* sizeof(struct cb_record) */
	__u8 old_state; /* enum cb_tcp_state before the change (OPEN/STATE/CLOSE) */
	__u8 new_state; /* enum cb_tcp_state now (every kind) */
	__u16 flags;    /* enum cb_rec_flags */
	__u64 cookie;   /* bpf_get_socket_cookie() */
	__u64 ts_ns;    /* when the record was written */
	struct cb_tuple tuple;
	struct cb_counters ctr;
	__u64 cgroup_id; /* OPEN: the socket's cgroup v2 id (its own, right in softirq
			  * too); 0 when unknown */
	__u32 pid;       /* tgid, with CB_RF_PROCESS_CTX or CB_RF_OWNER_PID */
	__u32 __pad1;
	char comm[CB_COMM_LEN]; /* with CB_RF_PROCESS_CTX */
};

/* Key of the pinned `heartbeats` map: the socket cookie. */
struct cb_hb_key {
	__u64 cookie;
};

/*
 * Value of the pinned `heartbeats` map (BPF_MAP_TYPE_LRU_PERCPU_HASH): one
 * slot per possible CPU, each written only by its own CPU, so no atomics.
 * Merge across CPUs: newest time, first non-zero pid, OR of flags. Both
 * clocks start at the open; a seeded entry (CB_HBF_SEEDED) starts at its
 * first heartbeat instead. Byte and segment counts are not kept here: the
 * kernel's tcp_sock has them (records carry them).
 *
 * Kept small: the kernel stores entries x possible CPUs x this size.
 */
struct cb_heartbeat {
	__u64 last_data_ns; /* payload moved either way: a received segment with new
			     * data, or one acknowledging data we sent (not
			     * keepalives, not duplicates); stamped at most once
			     * per jiffy */
	__u64 last_seen_ns; /* any sign of life: also pure ACKs and keepalive probes */
	__u32 pid;        /* connect()'s process (active opens only) */
	__u32 beat_stamp; /* (ns >> 20) when this CPU last emitted a BEAT; wraps after
			   * ~52 days, compared modulo 2^32 */
	__u16 flags;      /* CB_HBF_* */
	__u16 __pad0;
	__u32 __pad1;
};

enum cb_hb_flags {
	CB_HBF_SEEDED = 1 << 0,     /* created by the heartbeat path: the socket predates
				     * the programs or its OPEN was missed */
	CB_HBF_BEAT = 1 << 1,       /* this CPU's slot keeps a beat throttle: beat_stamp
				     * is valid */
	CB_HBF_CLOSE_LOST = 1 << 2, /* its CLOSE record could not be reserved: the entry
				     * stays so that tcp_destroy_sock (or the daemon)
				     * still reports the close */
};

/* Indices of the per-CPU `stats` array (BPF_MAP_TYPE_PERCPU_ARRAY of __u64). */
enum cb_stat {
	CB_STAT_EVENTS_EMITTED = 0,  /* records submitted to `events` */
	CB_STAT_EVENTS_DROPPED = 1,  /* `events` reservation failures (ring full) */
	CB_STAT_BEATS_EMITTED = 2,   /* records submitted to `beats` */
	CB_STAT_BEATS_DROPPED = 3,   /* `beats` reservation failures (ring full) */
	CB_STAT_MAP_UPDATE_FAILED = 4, /* `heartbeats` insert failed */
	CB_STAT_MAP_SEEDED = 5,      /* `heartbeats` entries created by the heartbeat path */
	CB_STAT_CLOSE_LOST = 6,      /* CLOSE records that could not be reserved (the
				      * entry was kept, flagged CB_HBF_CLOSE_LOST) */
	CB_STAT_MAX = 8,
};

/*
 * The pinned `lost` map (BPF_MAP_TYPE_HASH, key: netns inode, value: __u64
 * count): every lifecycle record the programs could not deliver (a full
 * events ring, a failed heartbeats insert) is counted under its
 * connection's network namespace, so that the daemon repairs exactly the
 * namespaces that lost something, promptly, instead of re-reading every
 * socket of the host on a timer. The daemon deletes an entry once it has
 * repaired that namespace.
 */
#define CB_LOST_MAX_NETNS 4096

_Static_assert(sizeof(struct cb_tuple) == 48, "cb_tuple layout");
_Static_assert(sizeof(struct cb_counters) == 48, "cb_counters layout");
_Static_assert(sizeof(struct cb_record) == 152, "cb_record layout");
_Static_assert(sizeof(struct cb_hb_key) == 8, "cb_hb_key layout");
_Static_assert(sizeof(struct cb_heartbeat) == 32, "cb_heartbeat layout");
_Static_assert(__builtin_offsetof(struct cb_record, cookie) == 8, "cb_record.cookie");
_Static_assert(__builtin_offsetof(struct cb_record, tuple) == 24, "cb_record.tuple");
_Static_assert(__builtin_offsetof(struct cb_record, ctr) == 72, "cb_record.ctr");
_Static_assert(__builtin_offsetof(struct cb_record, cgroup_id) == 120, "cb_record.cgroup_id");
_Static_assert(__builtin_offsetof(struct cb_record, pid) == 128, "cb_record.pid");

#endif /* CONNBEAT_ABI_H */
