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
 *  - Never wake the reader per record: submit with BPF_RB_NO_WAKEUP, and
 *    force a wakeup only once the ring's unconsumed data passes a threshold
 *    (a quarter of the ring, set by the loader). The daemon polls with a
 *    short timeout, so a quiet ring is still read within that timeout.
 *  - A failed reservation is counted in `stats` (*_DROPPED), never silent.
 *  - A tracepoint program already running on this CPU is skipped by the
 *    kernel when its tracepoint fires again (softirq interrupting process
 *    context) and only counted in recursion_misses: whatever a missed run
 *    would have done is repaired later (tcp_destroy_sock for a missed CLOSE,
 *    the heartbeat path seeding a missed OPEN, the daemon's reconciliation).
 *
 * Observed on 6.18 (tests/integration/test_bpf_trace.py checks it):
 *  - Active open: CLOSE->SYN_SENT in connect() (process context), then
 *    SYN_SENT->ESTABLISHED in softirq when the SYN-ACK arrives.
 *  - Passive open: the child socket is born in LISTEN->SYN_RECV when the
 *    handshake's final ACK arrives (softirq), then SYN_RECV->ESTABLISHED.
 *    The request sock (NEW_SYN_RECV) never passes inet_sock_set_state.
 *  - TIME_WAIT is never reported on the full socket: the active closer goes
 *    FIN_WAIT1->FIN_WAIT2->CLOSE (or CLOSING->CLOSE); tcp_time_wait() hands
 *    the connection to a separate inet_timewait_sock (same cookie) without a
 *    state-change event and tcp_done() moves the full socket to CLOSE. So
 *    CLOSE is the end of the session for us; the timewait remnant is not a
 *    session (ss shows it, connbeat does not).
 *  - connect() enters SYN_SENT before it picks the local port, so an active
 *    OPEN has sport 0 unless the socket was bound; the next record
 *    (ESTABLISHED, or CLOSE when the connect fails) carries the full tuple.
 *  - SO_LINGER 0 and close() with unread data enter CLOSE first and send
 *    their RST afterwards, so that RESET arrives after the CLOSE record with
 *    the heartbeat entry already gone (only tcp_sock's counters are filled).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "connbeat_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define SOCK_STREAM 1
#define MSG_PEEK 2
#define TCPHDR_FIN 0x01
#define EEXIST 17

/* Upper bound of the per-CPU summing loop, for the verifier; the real bound
 * is nr_cpus (known to the verifier: rodata is frozen before load). The
 * loader warns on hosts with more possible CPUs (CB_BPF_MAX_CPUS). */
#define CB_MAX_CPUS 1024

#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

/* ---- tunables, set by the loader between open and load (style.md #6) ---- */

/* Minimum gap between two BEATs of one connection on one CPU, in units of
 * 2^20 ns (~1.05 ms), the unit of cb_heartbeat.beat_stamp. 0: every event. */
const volatile __u32 beat_interval = 954; /* ~1 s */
/* libbpf_num_possible_cpus(): how many per-CPU slots to sum. */
const volatile __u32 nr_cpus = 1;
/* Force a reader wakeup once this many bytes wait unconsumed in a ring. */
const volatile __u64 events_wake_bytes = 2 << 20;
const volatile __u64 beats_wake_bytes = 1 << 20;

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

/*
 * A per-CPU clock cache, private (not pinned). bpf_ktime_get_ns() costs
 * ~50 ns per call in this VM (measured: a third of the heartbeat path's
 * budget), bpf_jiffies64() ~5 ns. So the programs read the monotonic clock
 * once per jiffy per CPU and reuse that value until jiffies move on.
 */
struct clock_cache {
	__u64 jiffies;
	__u64 ns;
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

	/* Atomic although per-CPU: a softirq program can interrupt a process
	 * context one on this CPU between its load and store. */
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* A ring record or NULL, counting the failure in the ring's DROPPED slot. */
static __always_inline struct cb_record *rec_reserve(void *ring, __u32 dropped_idx)
{
	struct cb_record *r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);

	if (!r) {
		stat_inc(dropped_idx);
		return NULL;
	}
	/* Ring memory holds older records: clear it so padding and unused
	 * fields are zero (18 stores, cheaper than reasoning per kind). */
	__builtin_memset(r, 0, sizeof(*r));
	return r;
}

/* Submit without waking the reader, unless the ring is filling up: the
 * reader polls with a short timeout, so only a backlog needs a wakeup. */
static __always_inline void rec_submit(void *ring, struct cb_record *r, __u64 wake_bytes,
				       __u32 emitted_idx)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= wake_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(r, flags);
	stat_inc(emitted_idx);
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
	r->new_state = skc->skc_state;
	r->tuple.sport = skc->skc_num; /* host order already */
	if (!r->tuple.sport) {
		/* skc_num is 0 until connect() picks the local port (after
		 * SYN_SENT) and again once CLOSE released it (inet_put_port);
		 * inet_sport keeps the port after CLOSE. */
		struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);

		if (tp)
			r->tuple.sport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
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

static __always_inline void rec_set_process(struct cb_record *r)
{
	r->flags |= CB_RF_PROCESS_CTX;
	r->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
}

static __always_inline void hb_merge(struct cb_counters *c, const struct cb_heartbeat *h)
{
	if (h->last_data_ns > c->last_data_ns)
		c->last_data_ns = h->last_data_ns;
	if (h->last_seen_ns > c->last_seen_ns)
		c->last_seen_ns = h->last_seen_ns;
	c->tx_bytes += h->tx_bytes;
	c->rx_bytes += h->rx_bytes;
	c->retrans += h->retrans;
	c->resets += h->resets;
}

/*
 * Merge every CPU's slot of one heartbeats entry into c: newest times,
 * summed counters. `mine`, when the caller holds it, is this CPU's slot:
 * one hash lookup less. Returns false when the entry does not exist.
 * Not a snapshot: other CPUs keep writing their slots meanwhile, so a sum
 * can miss the last few bytes in flight; the next record carries them.
 */
static __always_inline bool hb_sum(const struct cb_hb_key *key, struct cb_counters *c,
				   const struct cb_heartbeat *mine)
{
	__u32 me = CB_MAX_CPUS;
	bool found = false;

	if (mine) {
		me = bpf_get_smp_processor_id();
		hb_merge(c, mine);
		found = true;
	}
	for (__u32 cpu = 0; cpu < CB_MAX_CPUS; cpu++) {
		struct cb_heartbeat *h;

		if (cpu >= nr_cpus)
			break;
		if (cpu == me)
			continue;
		h = bpf_map_lookup_percpu_elem(&heartbeats, key, cpu);
		if (!h)
			break; /* no entry at all (the lookup fails on every CPU alike) */
		found = true;
		hb_merge(c, h);
	}
	return found;
}

/* The kernel's own segment counters, for full TCP sockets. retrans: the
 * kernel's total_retrans is authoritative when we can read it (ours only
 * counts what the programs saw since the entry was created). */
static __always_inline void tcp_counters(const struct sock *sk, struct cb_counters *c)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);

	if (!tp)
		return;
	c->segs_in = tp->segs_in;
	c->segs_out = tp->segs_out;
	c->retrans = tp->total_retrans;
}

/* Counters of a record about a connection: the map's, then tcp_sock's. */
static __always_inline void rec_counters(struct cb_record *r, const struct sock *sk,
					 const struct cb_hb_key *key, const struct cb_heartbeat *mine)
{
	hb_sum(key, &r->ctr, mine);
	tcp_counters(sk, &r->ctr);
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
	    state == CB_TCP_NEW_SYN_RECV)
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

static __always_inline struct cb_heartbeat *hb_lookup_or_seed(const struct sock *sk,
							      const struct cb_hb_key *key)
{
	struct cb_heartbeat *h = bpf_map_lookup_elem(&heartbeats, key);

	if (h)
		return h;
	if (hb_seed(sk, key))
		return NULL;
	return bpf_map_lookup_elem(&heartbeats, key);
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

/* ---- the heartbeat path: send/recv/probe ---- */

enum hb_cause {
	HB_SEND = 1,
	HB_RECV = 2,
	HB_SEGMENT = 3, /* tcp_probe: a segment arrived (data or not) */
};

/*
 * Update this CPU's slot and, throttled, emit a BEAT.
 *
 * The throttle follows Cilium's __ct_update_timeout(): each CPU's slot
 * remembers when it last beat (beat_stamp, in 2^20 ns units) and beats again
 * only once beat_interval has passed, so there is at most one BEAT per
 * connection per CPU per interval; a slot that never beat (no CB_HBF_BEAT)
 * beats at once, so the first activity on each CPU is always reported. The
 * OPEN record counts as a beat of the CPU that created the entry; a seeded
 * entry (OPEN missed) beats at once, which gives the daemon its tuple.
 *
 * Benign race: the slot is this CPU's alone, but a softirq program (probe,
 * retransmit) can interrupt a process-context one (send/recv) between its
 * reads and writes of the same slot. They write different fields except
 * last_seen_ns/last_data_ns (both "now", either value is right) and
 * beat_stamp/flags, where the worst case is one extra BEAT in that
 * interval. Counters are only ever incremented by one context each
 * (tx/rx_bytes: process; retrans: softirq/timer), so no increment is lost.
 */
static __always_inline int hb_touch(const struct sock *sk, enum hb_cause cause, __u64 bytes,
				    bool data)
{
	struct cb_hb_key key = { .cookie = sock_cookie(sk) };
	struct cb_heartbeat *h;
	struct cb_record *r;
	__u64 now;
	__u32 stamp;

	h = hb_lookup_or_seed(sk, &key);
	if (!h)
		return 0;
	now = clock_now();
	WRITE_ONCE(h->last_seen_ns, now);
	if (data)
		WRITE_ONCE(h->last_data_ns, now);
	if (cause == HB_SEND)
		h->tx_bytes += bytes;
	else if (cause == HB_RECV)
		h->rx_bytes += bytes;
	if (cause != HB_SEGMENT && !h->pid)
		h->pid = bpf_get_current_pid_tgid() >> 32;

	stamp = now >> 20;
	if ((READ_ONCE(h->flags) & CB_HBF_BEAT) &&
	    (__u32)(stamp - READ_ONCE(h->beat_stamp)) < beat_interval)
		return 0;
	WRITE_ONCE(h->beat_stamp, stamp);
	h->flags |= CB_HBF_BEAT;

	r = rec_reserve(&beats, CB_STAT_BEATS_DROPPED);
	if (!r)
		return 0;
	rec_fill(r, CB_REC_BEAT, sk, key.cookie, now);
	r->old_state = r->new_state;
	if (data)
		r->flags |= CB_RF_DATA;
	if (cause != HB_SEGMENT)
		rec_set_process(r);
	rec_counters(r, sk, &key, h);
	rec_submit(&beats, r, beats_wake_bytes, CB_STAT_BEATS_EMITTED);
	return 0;
}

static __always_inline int handle_send(const struct sock *sk, int ret)
{
	if (ret <= 0 || !sk || !is_inet_tcp(sk))
		return 0;
	return hb_touch(sk, HB_SEND, ret, true);
}

static __always_inline int handle_recv(const struct sock *sk, int ret, int flags)
{
	/* MSG_PEEK moves nothing: the bytes are counted when really read. */
	if (ret <= 0 || (flags & MSG_PEEK) || !sk || !is_inet_tcp(sk))
		return 0;
	return hb_touch(sk, HB_RECV, ret, true);
}

/* tcp_probe fires for every segment tcp_rcv_established() receives: the
 * TCP-level heartbeat, including pure ACKs and keepalives. TCP_SKB_CB is
 * filled by tcp_v{4,6}_fill_cb() by then: end_seq = seq + SYN + FIN +
 * payload. skb->cb is a char array, which the verifier lets us read as
 * scratch space through the BTF pointer (no probe_read). */
static __always_inline int handle_probe(const struct sock *sk, const struct sk_buff *skb)
{
	const struct tcp_skb_cb *tcb = (const void *)skb->cb;
	__u32 len = tcb->end_seq - tcb->seq;

	if (tcb->tcp_flags & TCPHDR_FIN)
		len--;
	return hb_touch(sk, HB_SEGMENT, 0, len > 0);
}

static __always_inline int handle_retransmit(const struct sock *sk, int err)
{
	struct cb_hb_key key;
	struct cb_heartbeat *h;
	struct cb_record *r;
	__u64 now;

	if (err) /* not sent (e.g. -EBUSY): not a retransmission */
		return 0;
	key.cookie = sock_cookie(sk);
	h = hb_lookup_or_seed(sk, &key);
	if (!h)
		return 0;
	h->retrans++;
	now = clock_now();
	r = rec_reserve(&beats, CB_STAT_BEATS_DROPPED);
	if (!r)
		return 0;
	rec_fill(r, CB_REC_RETRANS, sk, key.cookie, now);
	r->old_state = r->new_state;
	rec_counters(r, sk, &key, h);
	rec_submit(&beats, r, beats_wake_bytes, CB_STAT_BEATS_EMITTED);
	return 0;
}

/*
 * RST sent or received on a full TCP socket. tcp_send_reset's sk may be NULL
 * (no socket: port closed), a request sock or a timewait sock (only
 * sock_common is valid there: check the state before touching struct sock).
 * A tracked connection counts it in its slot; an untracked one that is
 * already in CLOSE still gets its record (SO_LINGER 0 sends its RST after
 * entering CLOSE). Listeners and sockets never tracked are skipped.
 */
static __always_inline int handle_reset(const struct sock *sk, __u8 rf)
{
	struct cb_hb_key key;
	struct cb_heartbeat *h;
	struct cb_record *r;
	__u8 state;

	if (!sk)
		return 0;
	state = sk->__sk_common.skc_state;
	if (state == CB_TCP_TIME_WAIT || state == CB_TCP_NEW_SYN_RECV || state == CB_TCP_LISTEN)
		return 0;
	if (!is_inet_tcp(sk))
		return 0;
	key.cookie = sock_cookie(sk);
	h = bpf_map_lookup_elem(&heartbeats, &key);
	if (h)
		h->resets++;
	else if (state != CB_TCP_CLOSE)
		return 0;
	r = rec_reserve(&events, CB_STAT_EVENTS_DROPPED);
	if (!r)
		return 0;
	rec_fill(r, CB_REC_RESET, sk, key.cookie, clock_now());
	r->old_state = r->new_state;
	r->flags = rf;
	if (h)
		rec_counters(r, sk, &key, h);
	else
		tcp_counters(sk, &r->ctr); /* the map's counters are gone: zero */
	rec_submit(&events, r, events_wake_bytes, CB_STAT_EVENTS_EMITTED);
	return 0;
}

/* ---- lifecycle: inet_sock_set_state and tcp_destroy_sock ---- */

static __always_inline int handle_set_state(const struct sock *sk, int oldstate, int newstate)
{
	struct cb_hb_key key;
	struct cb_record *r;
	__u64 now;
	__u8 kind;

	/* inet_sock_set_state runs before sk_state changes; it fires for any
	 * inet protocol (MPTCP, SCTP...): TCP only. */
	if (!is_inet_tcp(sk))
		return 0;
	/* Listening sockets are not sessions (CLOSE->LISTEN, LISTEN->CLOSE);
	 * LISTEN->SYN_RECV is the passive child being born: a session. */
	if (newstate == CB_TCP_LISTEN || oldstate == newstate ||
	    (oldstate == CB_TCP_LISTEN && newstate == CB_TCP_CLOSE))
		return 0;

	now = clock_now();
	key.cookie = sock_cookie(sk);
	if (newstate == CB_TCP_SYN_SENT ||
	    (newstate == CB_TCP_SYN_RECV && oldstate == CB_TCP_LISTEN)) {
		/* Both clocks start at the open: a connection that never
		 * moves data is idle since it was opened. The OPEN record
		 * counts as this CPU's first BEAT (the daemon has the tuple
		 * and the time from it): a short connection then costs no
		 * BEAT on this CPU, only on others it touches. */
		struct cb_heartbeat init = { .last_data_ns = now,
					     .last_seen_ns = now,
					     .beat_stamp = now >> 20,
					     .flags = CB_HBF_BEAT };
		int err;

		kind = CB_REC_OPEN;
		if (newstate == CB_TCP_SYN_SENT) /* connect(): process context */
			init.pid = bpf_get_current_pid_tgid() >> 32;
		err = bpf_map_update_elem(&heartbeats, &key, &init, BPF_NOEXIST);
		if (err && err != -EEXIST)
			stat_inc(CB_STAT_MAP_UPDATE_FAILED);
	} else if (newstate == CB_TCP_CLOSE) {
		kind = CB_REC_CLOSE;
	} else {
		kind = CB_REC_STATE;
	}

	r = rec_reserve(&events, CB_STAT_EVENTS_DROPPED);
	if (r) {
		rec_fill(r, kind, sk, key.cookie, now);
		r->old_state = oldstate;
		r->new_state = newstate;
		if (kind == CB_REC_OPEN && newstate == CB_TCP_SYN_SENT)
			rec_set_process(r);
		else if (kind == CB_REC_CLOSE)
			rec_counters(r, sk, &key, NULL);
	}
	/* Delete after summing (and whether or not the record fit). */
	if (kind == CB_REC_CLOSE)
		bpf_map_delete_elem(&heartbeats, &key);
	if (r)
		rec_submit(&events, r, events_wake_bytes, CB_STAT_EVENTS_EMITTED);
	return 0;
}

/*
 * The socket is being destroyed. Normally its CLOSE already deleted the
 * entry and this is one failed lookup. If an entry is still there, the
 * CLOSE run was missed (recursion miss) or a late heartbeat re-created it:
 * delete it, and if the delete is ours (not a racing CLOSE's), report the
 * close so that the daemon never keeps a dead session.
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
	r = rec_reserve(&events, CB_STAT_EVENTS_DROPPED);
	if (r) {
		rec_fill(r, CB_REC_CLOSE, sk, key.cookie, clock_now());
		r->old_state = r->new_state;
		r->new_state = CB_TCP_CLOSE;
		r->flags = CB_RF_FROM_DESTROY;
		rec_counters(r, sk, &key, NULL);
	}
	if (bpf_map_delete_elem(&heartbeats, &key)) {
		if (r)
			bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		return 0;
	}
	if (r)
		rec_submit(&events, r, events_wake_bytes, CB_STAT_EVENTS_EMITTED);
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

SEC("tp_btf/sock_send_length")
int BPF_PROG(cb_send, struct sock *sk, int ret, int flags)
{
	return handle_send(sk, ret);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(cb_recv, struct sock *sk, int ret, int flags)
{
	return handle_recv(sk, ret, flags);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(cb_probe, struct sock *sk, const struct sk_buff *skb)
{
	return handle_probe(sk, skb);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(cb_retrans, const struct sock *sk, const struct sk_buff *skb, int err)
{
	return handle_retransmit(sk, err);
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
