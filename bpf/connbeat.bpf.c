// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connbeat.bpf.c — the kernel side of connbeat: tp_btf programs on the socket
 * and TCP tracepoints that keep one per-CPU heartbeat per TCP connection
 * (keyed by socket cookie) and report lifecycle and throttled heartbeat
 * records on two ring buffers. See include/connbeat_abi.h for the records
 * and design.md §2 for the data flow.
 *
 * Rules every program here follows:
 *  - tp_btf only (no tracefs, no kprobes/fentry); each SEC() is a thin
 *    wrapper around a static handler; cheapest filters first (protocol, then
 *    family, then state).
 *  - Pay on the hot path only for what the daemon must know when it
 *    happens. A connection costs three lifecycle records per side (OPEN at
 *    ESTABLISHED, STATE when it starts to close, CLOSE); byte and segment
 *    counts are the kernel's own tcp_sock totals, read into the records
 *    that are written anyway, never accumulated per event; a BEAT goes out
 *    at most once per connection per CPU per interval (none at all for a
 *    connection shorter than that).
 *  - The heartbeat path is one program, on tcp_probe: every segment an
 *    established socket receives, which carries both directions' news (new
 *    payload, or an ACK for payload we sent). The application's own send
 *    and receive calls are not hooked: they sit on the request path of
 *    every server (a request/response server paid 10% of its rate for
 *    them) and add nothing the segments do not say, except the process,
 *    which connect() and the daemon's owners pass give. A heartbeat is a
 *    few loads of the socket's own clocks, and at most once per socket per
 *    jiffy one hash lookup and two stores.
 *  - Never wake the reader per record: submit with BPF_RB_NO_WAKEUP, and
 *    force a wakeup only once the ring's unconsumed data passes a threshold
 *    (a quarter of the ring, set by the loader). The daemon polls with a
 *    short timeout, so a quiet ring is still read within that timeout.
 *  - A lifecycle record that cannot be delivered is counted in `stats` and
 *    under its network namespace in `lost`, so that the daemon repairs that
 *    namespace at once; a lost CLOSE keeps the heartbeats entry
 *    (CB_HBF_CLOSE_LOST) so that tcp_destroy_sock reports it after all.
 *  - A tracepoint program already running on this CPU is skipped by the
 *    kernel when its tracepoint fires again (softirq interrupting process
 *    context) and only counted in recursion_misses: whatever a missed run
 *    would have done is repaired later (tcp_destroy_sock for a missed CLOSE,
 *    the heartbeat path seeding a missed OPEN, the daemon's reconciliation).
 *
 * Observed on 6.18 (tests/integration/test_bpf_trace.py checks it):
 *  - Active open: CLOSE->SYN_SENT in connect() (process context: the
 *    heartbeats entry is created there, with connect()'s pid), then
 *    SYN_SENT->ESTABLISHED in softirq when the SYN-ACK arrives: the OPEN.
 *  - Passive open: the child socket is born in LISTEN->SYN_RECV when the
 *    handshake's final ACK arrives (softirq), then SYN_RECV->ESTABLISHED:
 *    the OPEN. The request sock (NEW_SYN_RECV) never passes
 *    inet_sock_set_state.
 *  - TIME_WAIT is never reported on the full socket: the active closer goes
 *    FIN_WAIT1->FIN_WAIT2->CLOSE (or CLOSING->CLOSE); tcp_time_wait() hands
 *    the connection to a separate inet_timewait_sock (same cookie) without a
 *    state-change event and tcp_done() moves the full socket to CLOSE. A
 *    TIME_WAIT remnant is not a session; a FIN_WAIT2 remnant (we closed, the
 *    peer has not: no FIN received yet) is, until it goes: its CLOSE carries
 *    CB_RF_REMNANT.
 *  - SO_LINGER 0 and close() with unread data enter CLOSE first and send
 *    their RST afterwards, so that RESET arrives after the CLOSE record with
 *    the heartbeat entry already gone.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "connbeat_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The verifier's own cast to a read-only BTF pointer (a kfunc since 6.2). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define TCPHDR_FIN 0x01
#define TCPHDR_ACK 0x10
#define EEXIST 17

/* Upper bound of the per-CPU loop, for the verifier; the real bound is
 * nr_cpus (known to the verifier: rodata is frozen before load). The loader
 * warns on hosts with more possible CPUs (CB_BPF_MAX_CPUS). */
#define CB_MAX_CPUS 1024

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

/* ---- tunables, set by the loader between open and load (style.md #6) ---- */

/* Minimum gap between two BEATs of one connection on one CPU, in units of
 * 2^20 ns (~1.05 ms), the unit of cb_heartbeat.beat_stamp. 0: every event. */
const volatile __u32 beat_interval = 954; /* ~1 s */
/* libbpf_num_possible_cpus(): how many per-CPU slots there are. */
const volatile __u32 nr_cpus = 1;
/* Force a reader wakeup once this many bytes wait unconsumed in a ring. */
const volatile __u64 events_wake_bytes = 2 << 20;
const volatile __u64 beats_wake_bytes = 1 << 20;

/* Set by the daemon at run time through the mmap'ed .bss: while non-zero,
 * report every TCP state change of an open connection, not only the first
 * step of its close (someone streams `connbeat events`). */
__u32 all_states;

/* ---- maps (BTF-defined, pinned by name under the loader's pin_root_path) ---- */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct cb_hb_key);
	__type(value, struct cb_heartbeat);
	__uint(max_entries, 65536); /* the loader sets it from --max-sessions */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} heartbeats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* the loader sets it */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* the loader sets it */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} beats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CB_STAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* Lifecycle records lost, by network namespace (include/connbeat_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, CB_LOST_MAX_NETNS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lost SEC(".maps");

/*
 * A per-CPU clock cache, private (not pinned). bpf_ktime_get_ns() costs
 * ~50 ns per call in this VM (measured: a third of the heartbeat path's
 * budget), bpf_jiffies64() ~5 ns. So the programs read the monotonic clock
 * once per jiffy per CPU and reuse that value until jiffies move on.
 */
struct clock_cache {
	__u64 jiffies;
	__u64 ns;
	__u64 checked_jiffies[2]; /* when this CPU last looked at each ring's backlog */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct clock_cache);
	__uint(max_entries, 1);
} clock SEC(".maps");

/* ---- small helpers ---- */

/*
 * CLOCK_MONOTONIC nanoseconds with one-tick resolution: never ahead of the
 * true time, at most one jiffy (1-10 ms) behind it. Every connbeat time
 * (record ts, last_data/last_seen) comes from here, so they stay mutually
 * consistent; idleness is judged in seconds, where a tick does not matter.
 *
 * Benign race: a softirq program can interrupt a process-context one on
 * this CPU between its reads or writes of the cache. ns is written before
 * jiffies, so a reader that sees the new jiffies also sees its ns; the worst
 * outcome is one extra bpf_ktime_get_ns() call, or a value a tick old.
 */
static __always_inline __u64 clock_now(void)
{
	__u32 zero = 0;
	struct clock_cache *c = bpf_map_lookup_elem(&clock, &zero);
	__u64 j = bpf_jiffies64(), ns;

	if (!c)
		return bpf_ktime_get_ns();
	if (READ_ONCE(c->jiffies) == j)
		return READ_ONCE(c->ns);
	ns = bpf_ktime_get_ns();
	WRITE_ONCE(c->ns, ns);
	/* Compiler barrier; a CPU reads its own stores in order. */
	asm volatile("" ::: "memory");
	WRITE_ONCE(c->jiffies, j);
	return ns;
}

/* The socket cookie: sock_gen_cookie() stores it in the socket the first
 * time anyone asks, so a plain load usually suffices; the helper (which
 * generates it) only when it is still 0. Saves a helper call per run. */
static __always_inline __u64 sock_cookie(const struct sock *sk)
{
	__u64 c = sk->__sk_common.skc_cookie.counter;

	return c ? c : bpf_get_socket_cookie((void *)sk);
}

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		(*v)++; /* per-CPU slot: no atomics needed */
}

/* A lifecycle record of this netns was not delivered: count it where the
 * daemon looks for namespaces to repair. A subprogram: the rare path keeps
 * its instructions out of the callers'. */
static __noinline void lost_inc(__u32 netns)
{
	__u64 one = 1, *v;
	int err;

	v = bpf_map_lookup_elem(&lost, &netns);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	err = bpf_map_update_elem(&lost, &netns, &one, BPF_NOEXIST);
	if (err == -EEXIST) { /* another CPU made it meanwhile */
		v = bpf_map_lookup_elem(&lost, &netns);
		if (v)
			__sync_fetch_and_add(v, 1);
	}
}

/*
 * The tcp_sock of a full TCP socket. Every program reaches here only with
 * one (inet_sock_set_state, tcp_probe and tcp_destroy_sock are called on
 * full TCP sockets; the reset programs check the state and protocol
 * first), so the verifier's cast does, free at run time, what
 * bpf_skc_to_tcp_sock() would check with a helper call per record. Reads
 * through it are fault-safe loads all the same.
 */
static __always_inline const struct tcp_sock *tcp_sk_of(const struct sock *sk)
{
	return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
}

static __always_inline __u32 sock_netns(const struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

static __always_inline struct cb_record *rec_reserve(void *ring, __u32 dropped_idx)
{
	struct cb_record *r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);

	if (!r) {
		stat_inc(dropped_idx);
		return NULL;
	}
	/* Ring memory holds older records: clear it so padding and unused
	 * fields are zero (20 stores, cheaper than reasoning per kind). */
	__builtin_memset(r, 0, sizeof(*r));
	return r;
}

/* A lifecycle record for the events ring; on failure the loss is counted
 * under the connection's netns too. */
static __always_inline struct cb_record *event_reserve(const struct sock *sk)
{
	struct cb_record *r = rec_reserve(&events, CB_STAT_EVENTS_DROPPED);

	if (!r)
		lost_inc(sock_netns(sk));
	return r;
}

/*
 * Submit without waking the reader, unless the ring is filling up: the
 * reader polls with a short timeout, so only a backlog needs a wakeup. A
 * wakeup is an irq_work, a self-IPI (an MSR write that traps to the
 * hypervisor on a VM): while the backlog lasts, at most one per CPU per
 * jiffy, not one per record (measured: 3.6% of the machine under churn).
 * The backlog itself is looked at once per CPU per jiffy too: it reads the
 * consumer position, which the reader writes after every record it takes,
 * so a look per record was a cache miss per record while the reader ran.
 * A jiffy's worth of records is far below the threshold (a quarter of the
 * ring).
 */
static __always_inline void rec_submit(void *ring, struct cb_record *r, __u64 wake_bytes,
				       __u32 emitted_idx, __u32 ring_idx)
{
	__u64 flags = BPF_RB_NO_WAKEUP, j = bpf_jiffies64();
	struct clock_cache *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&clock, &zero);
	if (c && ring_idx < 2 && READ_ONCE(c->checked_jiffies[ring_idx]) != j) {
		WRITE_ONCE(c->checked_jiffies[ring_idx], j);
		if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= wake_bytes)
			flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(r, flags);
	stat_inc(emitted_idx);
}

static __always_inline void event_submit(struct cb_record *r)
{
	rec_submit(&events, r, events_wake_bytes, CB_STAT_EVENTS_EMITTED, 0);
}

static __always_inline void rec_fill(struct cb_record *r, __u8 kind, const struct sock *sk,
				     __u64 cookie, __u64 now)
{
	const struct sock_common *skc = &sk->__sk_common;

	r->kind = kind;
	r->version = CB_ABI_VERSION;
	r->size = sizeof(*r);
	r->cookie = cookie;
	r->ts_ns = now;
	r->old_state = r->new_state = skc->skc_state;
	r->tuple.sport = skc->skc_num; /* host order already */
	if (!r->tuple.sport) {
		/* skc_num is 0 again once CLOSE released the port
		 * (inet_put_port); inet_sport keeps it. */
		r->tuple.sport = bpf_ntohs(tcp_sk_of(sk)->inet_conn.icsk_inet.inet_sport);
	}
	r->tuple.dport = bpf_ntohs(skc->skc_dport);
	r->tuple.netns = skc->skc_net.net->ns.inum;
	if (skc->skc_family == AF_INET) {
		r->tuple.family = 4;
		__builtin_memcpy(r->tuple.saddr, &skc->skc_rcv_saddr, 4);
		__builtin_memcpy(r->tuple.daddr, &skc->skc_daddr, 4);
	} else {
		/* AF_INET6, including v4-mapped ::ffff:a.b.c.d (ss prints them
		 * the same way). */
		r->tuple.family = 6;
		__builtin_memcpy(r->tuple.saddr, &skc->skc_v6_rcv_saddr, 16);
		__builtin_memcpy(r->tuple.daddr, &skc->skc_v6_daddr, 16);
	}
}

/* The kernel's own totals of a full TCP socket, what `ss -ti` prints. */
static __always_inline void tcp_counters(const struct sock *sk, struct cb_record *r)
{
	const struct tcp_sock *tp = tcp_sk_of(sk);

	r->flags |= CB_RF_COUNTERS;
	r->ctr.bytes_acked = tp->bytes_acked;
	r->ctr.bytes_received = tp->bytes_received;
	r->ctr.segs_in = tp->segs_in;
	r->ctr.segs_out = tp->segs_out;
	r->ctr.total_retrans = tp->total_retrans;
	r->ctr.srtt_us = tp->srtt_us >> 3;
}

/* The socket's own cgroup v2 (sk_cgrp_data, set when the socket was made):
 * right in softirq too, unlike the current task's. Its id is the cgroup's
 * kernfs id, the inode number of its directory in cgroup2fs. */
static __always_inline __u64 sock_cgroup_id(const struct sock *sk)
{
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;

	return cg ? cg->kn->id : 0;
}

/* SOCK_DONE: the peer's FIN arrived (tcp_fin) or the socket was reset. */
static __always_inline bool sock_flag_done(const struct sock *sk)
{
	int bit = bpf_core_enum_value(enum sock_flags, SOCK_DONE);

	return (sk->__sk_common.skc_flags >> bit) & 1;
}

/* Only TCP over IPv4/IPv6, read from the full socket. */
static __always_inline bool is_inet_tcp(const struct sock *sk)
{
	__u16 family;

	if (sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SOCK_STREAM)
		return false;
	family = sk->__sk_common.skc_family;
	return family == AF_INET || family == AF_INET6;
}

/*
 * Lookup-or-seed (libbpf-tools maps.bpf.h bpf_map_lookup_or_try_init): the
 * heartbeat path meets a socket that has no entry when the socket predates
 * the programs or its OPEN run was missed. Create it with BPF_NOEXIST (two
 * CPUs may race; the loser's -EEXIST is fine) — but never for a socket that
 * is closed or listening: a read after close must not resurrect an entry
 * that nothing would delete (tcp_destroy_sock would, and would then report a
 * spurious CLOSE).
 */
static __noinline int hb_seed(const struct sock *sk, const struct cb_hb_key *key)
{
	/* A subprogram of its own (a bpf-to-bpf call): the rare path keeps
	 * its stack and stores out of the hot path's instructions. */
	struct cb_heartbeat init = { .flags = CB_HBF_SEEDED };
	__u8 state = sk->__sk_common.skc_state;
	int err;

	if (state == CB_TCP_CLOSE || state == CB_TCP_LISTEN || state == CB_TCP_TIME_WAIT ||
	    state == CB_TCP_NEW_SYN_RECV || state == CB_TCP_SYN_SENT || state == CB_TCP_SYN_RECV)
		return -1;
	/* Held in err, not tested inline: see the note in maps.bpf.h about
	 * the verifier and the helper's return register. */
	err = bpf_map_update_elem(&heartbeats, key, &init, BPF_NOEXIST);
	if (!err)
		stat_inc(CB_STAT_MAP_SEEDED);
	else if (err != -EEXIST) {
		stat_inc(CB_STAT_MAP_UPDATE_FAILED);
		return -1;
	}
	return 0;
}

/* connect()'s pid, from whichever CPU's slot ran CLOSE->SYN_SENT (usually
 * this one, checked first by the caller). */
static __noinline __u32 hb_pid_any(const struct cb_hb_key *key)
{
	for (__u32 cpu = 0; cpu < CB_MAX_CPUS; cpu++) {
		struct cb_heartbeat *h;

		if (cpu >= nr_cpus)
			break;
		h = bpf_map_lookup_percpu_elem(&heartbeats, key, cpu);
		if (!h)
			break; /* no entry at all (the lookup fails on every CPU alike) */
		if (h->pid)
			return h->pid;
	}
	return 0;
}

/* ---- the heartbeat path: send/recv/probe ---- */

/*
 * Update this CPU's slot and, throttled, emit a BEAT.
 *
 * The throttle follows Cilium's __ct_update_timeout(): each CPU's slot
 * remembers when it last beat (beat_stamp, in 2^20 ns units) and beats again
 * only once beat_interval has passed, so there is at most one BEAT per
 * connection per CPU per interval. A slot's first touch only starts its
 * throttle: the OPEN already told the daemon of the connection, so a
 * connection shorter than one interval costs no BEAT at all. The exception
 * is an entry the heartbeat path seeded itself (the socket predates the
 * programs, or its OPEN was missed): it beats at once, which gives the
 * daemon its tuple. A connection that went quiet beats on its first
 * activity after an interval — which is how a STALE session revives.
 *
 * Benign race: the slot is this CPU's alone, and a run of this program is
 * never interrupted by another (the kernel skips a nested run: a recursion
 * miss). Only cb_set_state can write the slot meanwhile (the OPEN's
 * stamp), and only with "now": either value is right.
 */
static __always_inline int hb_touch(const struct sock *sk, bool data)
{
	struct cb_hb_key key = { .cookie = sock_cookie(sk) };
	struct cb_heartbeat *h;
	struct cb_record *r;
	bool seeded = false;
	__u32 stamp;
	__u16 flags;
	__u64 now;

	h = bpf_map_lookup_elem(&heartbeats, &key);
	if (!h) {
		if (hb_seed(sk, &key))
			return 0;
		h = bpf_map_lookup_elem(&heartbeats, &key);
		if (!h)
			return 0;
		seeded = true;
	}
	now = clock_now();
	WRITE_ONCE(h->last_seen_ns, now);
	if (data)
		WRITE_ONCE(h->last_data_ns, now);

	stamp = now >> 20;
	flags = READ_ONCE(h->flags);
	if (!(flags & CB_HBF_BEAT)) {
		WRITE_ONCE(h->beat_stamp, stamp);
		WRITE_ONCE(h->flags, flags | CB_HBF_BEAT);
		if (!seeded && !(flags & CB_HBF_SEEDED) && beat_interval)
			return 0; /* (interval 0, for tests: every event beats) */
	} else if ((__u32)(stamp - READ_ONCE(h->beat_stamp)) < beat_interval) {
		return 0;
	} else {
		WRITE_ONCE(h->beat_stamp, stamp);
	}

	r = rec_reserve(&beats, CB_STAT_BEATS_DROPPED);
	if (!r)
		return 0;
	rec_fill(r, CB_REC_BEAT, sk, key.cookie, now);
	if (data)
		r->flags |= CB_RF_DATA;
	if (seeded || (flags & CB_HBF_SEEDED))
		r->flags |= CB_RF_SEEDED;
	tcp_counters(sk, r);
	r->ctr.last_data_ns = h->last_data_ns;
	r->ctr.last_seen_ns = h->last_seen_ns;
	rec_submit(&beats, r, beats_wake_bytes, CB_STAT_BEATS_EMITTED, 1);
	return 0;
}

/*
 * tcp_probe fires for every segment tcp_rcv_established() receives, before
 * it is processed: the TCP-level heartbeat, including pure ACKs and
 * keepalives. Data moved when the segment brings new payload (it ends
 * beyond rcv_nxt) or acknowledges payload we sent (its ACK is beyond
 * snd_una: in ESTABLISHED our FIN is not sent yet, so that is data). A
 * keepalive probe (seq = rcv_nxt - 1, at most one byte), its reply (the
 * same ACK again) and a duplicate retransmission move nothing: signs of
 * life, not data. TCP_SKB_CB is filled by tcp_v{4,6}_fill_cb() by then:
 * end_seq = seq + SYN + FIN + payload. skb->cb is a char array, which the
 * verifier lets us read as scratch space through the BTF pointer.
 *
 * Once per jiffy is enough (our clock has that resolution): when the
 * kernel has already processed a segment of the same kind on this socket
 * in this jiffy — its own clocks say so: icsk_ack.lrcvtime for payload,
 * rcv_tstamp for any acceptable ACK — this program stamped the heartbeat
 * then, and the map is not touched at all. Segments the kernel processed
 * outside tcp_rcv_established() (the handshake) are covered by the OPEN,
 * which stamps the heartbeat too. Where the kernel's clock is coarser than
 * ours (an ACK for new data after a bare ACK in the same jiffy), last_data
 * can lag by under a jiffy plus the gap since the previous data: idleness
 * is judged in seconds.
 */
static __always_inline int handle_probe(const struct sock *sk, const struct sk_buff *skb)
{
	const struct tcp_skb_cb *tcb = (const void *)skb->cb;
	const struct tcp_sock *tp = tcp_sk_of(sk);
	__u32 end, j32 = (__u32)bpf_jiffies64();
	bool payload, acked;

	end = tcb->end_seq - (tcb->tcp_flags & TCPHDR_FIN ? 1 : 0);
	payload = (__s32)(end - tp->rcv_nxt) > 0;
	/* (beat_interval 0, for tests: every segment beats) */
	if (beat_interval && (payload ? tp->inet_conn.icsk_ack.lrcvtime == j32 : tp->rcv_tstamp == j32))
		return 0;
	/* only now: snd_una is one more cache line, for the runs that stay */
	acked = (tcb->tcp_flags & TCPHDR_ACK) && (__s32)(tcb->ack_seq - tp->snd_una) > 0;
	return hb_touch(sk, payload || acked);
}

/*
 * RST sent or received on a full TCP socket. tcp_send_reset's sk may be NULL
 * (no socket: port closed), a request sock or a timewait sock (only
 * sock_common is valid there: check the state before touching struct sock).
 * A tracked connection gets its record; so does an untracked one that is
 * already in CLOSE (SO_LINGER 0 sends its RST after entering CLOSE).
 * Listeners, handshakes and sockets never tracked are skipped.
 */
static __always_inline int handle_reset(const struct sock *sk, __u16 rf)
{
	struct cb_hb_key key;
	struct cb_record *r;
	__u8 state;

	if (!sk)
		return 0;
	state = sk->__sk_common.skc_state;
	/* not sessions: listeners, request and timewait socks, and handshakes
	 * (a refused connect() is never a session) */
	if (state == CB_TCP_TIME_WAIT || state == CB_TCP_NEW_SYN_RECV || state == CB_TCP_LISTEN ||
	    state == CB_TCP_SYN_SENT || state == CB_TCP_SYN_RECV)
		return 0;
	if (!is_inet_tcp(sk))
		return 0;
	key.cookie = sock_cookie(sk);
	if (state != CB_TCP_CLOSE && !bpf_map_lookup_elem(&heartbeats, &key))
		return 0;
	r = event_reserve(sk);
	if (!r)
		return 0;
	rec_fill(r, CB_REC_RESET, sk, key.cookie, clock_now());
	r->flags = rf;
	tcp_counters(sk, r);
	event_submit(r);
	return 0;
}

/* ---- lifecycle: inet_sock_set_state and tcp_destroy_sock ---- */

/* connect(): the entry is born in process context, with the owner's pid and
 * both clocks at the open; no record (the OPEN waits for the port). */
static __always_inline int on_syn_sent(const struct sock *sk, const struct cb_hb_key *key,
				       __u64 now)
{
	struct cb_heartbeat init = { .last_data_ns = now,
				     .last_seen_ns = now,
				     .pid = bpf_get_current_pid_tgid() >> 32,
				     .beat_stamp = now >> 20,
				     .flags = CB_HBF_BEAT };
	int err = bpf_map_update_elem(&heartbeats, key, &init, BPF_NOEXIST);

	if (err && err != -EEXIST)
		stat_inc(CB_STAT_MAP_UPDATE_FAILED);
	return 0;
}

/* SYN_SENT or SYN_RECV -> ESTABLISHED: the OPEN, with the whole tuple. */
static __always_inline int on_established(const struct sock *sk, const struct cb_hb_key *key,
					  int oldstate, __u64 now)
{
	struct cb_heartbeat *h = bpf_map_lookup_elem(&heartbeats, key);
	struct cb_record *r;
	__u32 pid = 0;

	if (h) {
		/* the handshake's last segment was not a tcp_probe one: stamp
		 * the open here, as the passive side's init does (handle_probe
		 * relies on it) */
		pid = h->pid;
		WRITE_ONCE(h->last_seen_ns, now);
		WRITE_ONCE(h->last_data_ns, now);
	} else {
		/* the passive child (or connect()'s run was missed): both
		 * clocks start at the open; the OPEN counts as this CPU's
		 * first BEAT */
		struct cb_heartbeat init = { .last_data_ns = now,
					     .last_seen_ns = now,
					     .beat_stamp = now >> 20,
					     .flags = CB_HBF_BEAT };
		int err = bpf_map_update_elem(&heartbeats, key, &init, BPF_NOEXIST);

		if (err && err != -EEXIST) {
			stat_inc(CB_STAT_MAP_UPDATE_FAILED);
			lost_inc(sock_netns(sk));
		}
	}
	if (!pid && oldstate == CB_TCP_SYN_SENT)
		pid = hb_pid_any(key);
	r = event_reserve(sk);
	if (!r)
		return 0;
	rec_fill(r, CB_REC_OPEN, sk, key->cookie, now);
	r->old_state = oldstate;
	r->new_state = CB_TCP_ESTABLISHED;
	r->cgroup_id = sock_cgroup_id(sk);
	if (pid) {
		r->flags |= CB_RF_OWNER_PID;
		r->pid = pid;
	}
	tcp_counters(sk, r);
	event_submit(r);
	return 0;
}

/*
 * -> CLOSE: the final counters. A FIN_WAIT2 socket that closes before the
 * peer's FIN and without an error (not a reset) is handed to a FIN_WAIT2
 * timewait remnant by tcp_time_wait(): the connection lives on under the
 * same cookie, and the CLOSE says so (the daemon keeps the session DRAINING
 * until the remnant goes). The peer's FIN is SOCK_DONE (tcp_fin sets it):
 * sk_shutdown cannot tell, close() sets RCV_SHUTDOWN itself. The flag is a
 * hint: an abortive close (SO_LINGER 0) from FIN_WAIT2 also matches, and the
 * daemon confirms every remnant with a sock_diag lookup.
 */
static __always_inline int on_close(const struct sock *sk, const struct cb_hb_key *key,
				    int oldstate, __u64 now)
{
	struct cb_record *r;

	if (oldstate == CB_TCP_SYN_SENT || oldstate == CB_TCP_SYN_RECV) {
		/* a handshake that never completed: never a session */
		bpf_map_delete_elem(&heartbeats, key);
		return 0;
	}
	r = event_reserve(sk);
	if (!r) {
		/* keep the entry, flagged: tcp_destroy_sock reports the close
		 * (and the daemon repairs this netns meanwhile) */
		struct cb_heartbeat *h = bpf_map_lookup_elem(&heartbeats, key);

		stat_inc(CB_STAT_CLOSE_LOST);
		if (h)
			h->flags |= CB_HBF_CLOSE_LOST;
		return 0;
	}
	rec_fill(r, CB_REC_CLOSE, sk, key->cookie, now);
	r->old_state = oldstate;
	r->new_state = CB_TCP_CLOSE;
	if (oldstate == CB_TCP_FIN_WAIT2 && !sock_flag_done(sk) && !sk->sk_err)
		r->flags |= CB_RF_REMNANT;
	tcp_counters(sk, r);
	bpf_map_delete_elem(&heartbeats, key);
	event_submit(r);
	return 0;
}

static __always_inline int handle_set_state(const struct sock *sk, int oldstate, int newstate)
{
	struct cb_hb_key key;
	struct cb_record *r;
	__u64 now;

	/* inet_sock_set_state runs before sk_state changes; it fires for any
	 * inet protocol (MPTCP, SCTP...): TCP only. Listening sockets are not
	 * sessions (CLOSE->LISTEN, LISTEN->CLOSE), and LISTEN->SYN_RECV (the
	 * passive child being born) is reported when it is ESTABLISHED. */
	if (!is_inet_tcp(sk) || newstate == CB_TCP_LISTEN || oldstate == CB_TCP_LISTEN ||
	    oldstate == newstate)
		return 0;
	now = clock_now();
	key.cookie = sock_cookie(sk);
	if (newstate == CB_TCP_SYN_SENT)
		return on_syn_sent(sk, &key, now);
	if (newstate == CB_TCP_CLOSE)
		return on_close(sk, &key, oldstate, now);
	if (oldstate == CB_TCP_SYN_SENT || oldstate == CB_TCP_SYN_RECV)
		return newstate == CB_TCP_ESTABLISHED ? on_established(sk, &key, oldstate, now) : 0;
	/* an open connection changes state: the first step of its close is
	 * what the daemon needs now (it becomes DRAINING); the later ones
	 * only while someone streams events */
	if (oldstate != CB_TCP_ESTABLISHED && !READ_ONCE(all_states))
		return 0;
	r = event_reserve(sk);
	if (!r)
		return 0;
	rec_fill(r, CB_REC_STATE, sk, key.cookie, now);
	r->old_state = oldstate;
	r->new_state = newstate;
	tcp_counters(sk, r);
	event_submit(r);
	return 0;
}

/*
 * The socket is being destroyed. Normally its CLOSE already deleted the
 * entry and this is one failed lookup. If an entry is still there, the
 * CLOSE run was missed (recursion miss), its record could not be reserved
 * (CB_HBF_CLOSE_LOST), or a late heartbeat re-created it: delete it, and if
 * the delete is ours (not a racing CLOSE's), report the close so that the
 * daemon never keeps a dead session.
 */
static __always_inline int handle_destroy(const struct sock *sk)
{
	struct cb_hb_key key;
	struct cb_record *r;

	if (!is_inet_tcp(sk))
		return 0;
	key.cookie = sock_cookie(sk);
	if (!bpf_map_lookup_elem(&heartbeats, &key))
		return 0;
	r = event_reserve(sk);
	if (r) {
		rec_fill(r, CB_REC_CLOSE, sk, key.cookie, clock_now());
		r->new_state = CB_TCP_CLOSE;
		r->flags = CB_RF_FROM_DESTROY;
		tcp_counters(sk, r);
	}
	if (bpf_map_delete_elem(&heartbeats, &key)) {
		if (r)
			bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		return 0;
	}
	if (r)
		event_submit(r);
	return 0;
}

/* ---- the programs: thin wrappers (style.md #5) ---- */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(cb_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return handle_set_state(sk, oldstate, newstate);
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(cb_destroy, struct sock *sk)
{
	return handle_destroy(sk);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(cb_probe, struct sock *sk, const struct sk_buff *skb)
{
	return handle_probe(sk, skb);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(cb_rst_recv, struct sock *sk)
{
	return handle_reset(sk, CB_RF_RST_RECEIVED);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(cb_rst_send, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	return handle_reset(sk, CB_RF_RST_SENT);
}
