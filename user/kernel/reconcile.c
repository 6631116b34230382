// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* reconcile.c — see reconcile.h. */
#include "kernel/reconcile.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/apply.h"
#include "kernel/hbmap.h"
#include "common/log.h"
#include "kernel/proc.h"
#include "kernel/sock_diag.h"

#pragma GCC poison u8 u16 u32 u64

static const char *const corr_names[CB_CORR_COUNT] = {
	[CB_CORR_MISSING_OPEN] = "missing_open",
	[CB_CORR_STATE] = "state",
	[CB_CORR_MISSED_CLOSE] = "missed_close",
	[CB_CORR_LAST_SEEN] = "last_seen",
	[CB_CORR_ORPHAN_HEARTBEAT] = "orphan_heartbeat",
};

const char *cb_correction_name(unsigned int kind)
{
	return kind < CB_CORR_COUNT ? corr_names[kind] : "?";
}

/* ---- the cookies of one dump: an open-addressing set (0 = empty; the
 * kernel never hands out cookie 0) ---------------------------------------- */

struct cookie_set {
	uint64_t *slot;
	size_t mask;
	size_t count;
};

static int set_init(struct cookie_set *s, size_t want)
{
	size_t n = 1024;

	while (n < 2 * want)
		n <<= 1;
	s->slot = calloc(n, sizeof(*s->slot));
	s->mask = n - 1;
	s->count = 0;
	return s->slot ? 0 : -ENOMEM;
}

static void set_put_nogrow(struct cookie_set *s, uint64_t c)
{
	size_t i = (size_t)cb_cookie_mix(c) & s->mask;

	while (s->slot[i] && s->slot[i] != c)
		i = (i + 1) & s->mask;
	if (!s->slot[i]) {
		s->slot[i] = c;
		s->count++;
	}
}

static int set_add(struct cookie_set *s, uint64_t c)
{
	if (!c)
		return 0;
	if (2 * (s->count + 1) > s->mask + 1) {
		struct cookie_set bigger;

		if (set_init(&bigger, 2 * (s->count + 1)))
			return -ENOMEM;
		for (size_t i = 0; i <= s->mask; i++)
			if (s->slot[i])
				set_put_nogrow(&bigger, s->slot[i]);
		free(s->slot);
		*s = bigger;
	}
	set_put_nogrow(s, c);
	return 0;
}

static bool set_has(const struct cookie_set *s, uint64_t c)
{
	size_t i = (size_t)cb_cookie_mix(c) & s->mask;

	while (s->slot[i]) {
		if (s->slot[i] == c)
			return true;
		i = (i + 1) & s->mask;
	}
	return false;
}

/* ---- the reconciler --------------------------------------------------------- */

struct cb_reconciler {
	struct cb_reconcile_opts o;
	uint32_t netns;
	_Atomic uint64_t interval_ns;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock; /* stop flag + cond; also one pass at a time */
	pthread_cond_t cond;
	bool stop;
	pthread_mutex_t pass_lock;
	_Atomic uint64_t passes, failures, seeded, diag_sockets, heartbeats, last_pass_ns;
	_Atomic uint64_t corr[CB_CORR_COUNT];
	size_t last_dump; /* sizes the next pass's cookie set */
};

/* One pass's working state. */
struct pass {
	struct cb_reconciler *r;
	struct cb_map *m;
	bool seed;
	uint64_t t0;  /* when the dump began, minus the clock margin */
	struct cookie_set seen;
	uint64_t corr[CB_CORR_COUNT];
	uint64_t added, sockets, entries;
	/* a one-entry cache: sessions of one process come in runs */
	uint32_t comm_pid;
	char comm[CB_COMM_LEN];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Step 1: one socket of the dump. */
static int on_socket(const struct cb_diag_sock *d, void *ctx)
{
	struct pass *p = ctx;
	struct cb_shard *sh;
	struct cb_session *s;
	struct cb_record rec;
	int kind = -1;

	p->sockets++;
	if (set_add(&p->seen, d->cookie))
		return -ENOMEM;
	/* A SYN_RECV socket is still the listener's business (request socks
	 * share the state): its records arrive as soon as it is accepted. */
	if (d->state == CB_TCP_SYN_RECV || !d->cookie)
		return 0;
	sh = cb_map_shard(p->m, d->cookie);
	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, d->cookie);
	if (!s)
		kind = CB_CORR_MISSING_OPEN;
	else if (s->last_seen_ns < p->t0 && cb_session_state(s) == CB_ST_CLOSED)
		kind = CB_CORR_MISSING_OPEN; /* alive again: a reconnect whose OPEN was lost */
	else if (s->last_seen_ns < p->t0 && s->tcp_state != d->state &&
		 cb_session_state(s) != CB_ST_CLOSED)
		kind = CB_CORR_STATE;
	cb_shard_unlock(sh);
	if (kind < 0)
		return 0;
	cb_sock_diag_to_record(d, mono_ns(), p->r->netns, &rec);
	switch (cb_apply_record(p->m, &rec, mono_ns())) {
	case CB_APPLY_INSERTED:
		if (p->seed) {
			p->added++;
			break;
		}
		/* fall through */
	case CB_APPLY_UPDATED:
		p->corr[kind]++;
		break;
	default:
		break;
	}
	return 0;
}

static void read_comm(struct pass *p, uint32_t pid, char out[CB_COMM_LEN])
{
	if (p->comm_pid != pid) {
		cb_proc_comm(pid, p->comm);
		p->comm_pid = pid;
	}
	memcpy(out, p->comm, CB_COMM_LEN);
}

/* Step 2: one entry of the heartbeats map. */
static int on_heartbeat(uint64_t cookie, const struct cb_heartbeat *hb, void *ctx)
{
	struct pass *p = ctx;
	struct cb_reconciler *r = p->r;
	struct cb_shard *sh = cb_map_shard(p->m, cookie);
	struct cb_session *s;
	struct cb_record rec;
	bool present, refresh = false, lost_beat = false, want_owner = false;

	p->entries++;
	memset(&rec, 0, sizeof(rec));
	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, cookie);
	present = s != NULL;
	/* anything newer than what an open session has? (a CLOSED one's entry
	 * is about to go) */
	if (s && cb_session_state(s) != CB_ST_CLOSED &&
	    (hb->last_seen_ns > s->last_seen_ns || hb->last_data_ns > s->last_data_ns ||
	     hb->tx_bytes > s->tx_bytes || hb->rx_bytes > s->rx_bytes ||
	     (hb->pid && !(s->flags & CB_SF_OWNER_KNOWN)))) {
		refresh = true;
		/* the record carries the session's own tuple and state, so that
		 * applying it changes clocks, counters and owner only */
		rec.tuple.family = (s->flags & CB_SF_FAMILY6) ? 6 : 4;
		memcpy(rec.tuple.saddr, s->saddr, 16);
		memcpy(rec.tuple.daddr, s->daddr, 16);
		rec.tuple.sport = s->sport;
		rec.tuple.dport = s->dport;
		rec.tuple.netns = s->netns;
		lost_beat = hb->last_seen_ns >
			    s->last_seen_ns + r->o.beat_interval_ns + CB_RECONCILE_MARGIN_NS;
		want_owner = hb->pid && !(s->flags & CB_SF_OWNER_KNOWN);
	}
	cb_shard_unlock(sh);

	if (refresh) {
		rec.kind = CB_REC_BEAT;
		rec.version = CB_ABI_VERSION;
		rec.size = sizeof(rec);
		rec.flags = CB_RF_SYNTH;
		/* CLOSE: should the session vanish meanwhile, a BEAT in this
		 * state creates nothing (apply.h) */
		rec.new_state = CB_TCP_CLOSE;
		rec.cookie = cookie;
		rec.ts_ns = mono_ns();
		rec.ctr.last_data_ns = hb->last_data_ns;
		rec.ctr.last_seen_ns = hb->last_seen_ns;
		rec.ctr.tx_bytes = hb->tx_bytes;
		rec.ctr.rx_bytes = hb->rx_bytes;
		if (want_owner) {
			rec.flags |= CB_RF_PROCESS_CTX;
			rec.pid = hb->pid;
			read_comm(p, hb->pid, rec.comm);
		}
		if (cb_apply_record(p->m, &rec, mono_ns()) == CB_APPLY_UPDATED && lost_beat &&
		    !p->seed)
			p->corr[CB_CORR_LAST_SEEN]++;
		return 0;
	}
	if (present)
		return 0;
	/* Nobody knows this socket: not in the map, not in this namespace's
	 * dump, silent for a whole interval (so not one opened meanwhile):
	 * its close was never seen by the programs. The kernel's LRU would
	 * evict it eventually; free the slot now. (An idle socket of another
	 * namespace that the map never learnt of loses its entry too; the
	 * programs create a new one, marked seeded, at its next activity.) */
	if (!p->seed && !set_has(&p->seen, cookie)) {
		uint64_t quiet = atomic_load_explicit(&r->interval_ns, memory_order_relaxed);

		if (hb->last_seen_ns + quiet < p->t0 &&
		    bpf_map_delete_elem(r->o.heartbeats_fd, &cookie) == 0)
			p->corr[CB_CORR_ORPHAN_HEARTBEAT]++;
	}
	return 0;
}

/* Step 3: an open session of this namespace absent from the dump. */
static void visit_missed_close(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			       void *ctx)
{
	struct pass *p = ctx;
	unsigned int st = cb_session_state(s);

	if (st == CB_ST_CLOSED || s->netns != p->r->netns || s->last_seen_ns >= p->t0 ||
	    set_has(&p->seen, s->cookie))
		return;
	s->tcp_state = CB_TCP_CLOSE;
	if (__cb_session_transition(m, sh, s, st, CB_ST_CLOSED))
		p->corr[CB_CORR_MISSED_CLOSE]++;
}

int cb_reconcile_pass(struct cb_reconciler *r, bool seed)
{
	struct pass p = { .r = r, .m = r->o.map, .seed = seed };
	struct cb_map_cursor cur = {};
	uint64_t start = mono_ns();
	int err;

	pthread_mutex_lock(&r->pass_lock);
	p.t0 = start > CB_RECONCILE_MARGIN_NS ? start - CB_RECONCILE_MARGIN_NS : 0;
	err = set_init(&p.seen, r->last_dump);
	if (err)
		goto out;
	err = cb_sock_diag_dump(CB_DIAG_SESSION_STATES, on_socket, &p, -1);
	if (err) {
		cb_warn("reconcile: the sock_diag dump failed (%s); sessions are not checked "
			"against the kernel this time",
			strerror(-err));
		goto out;
	}
	r->last_dump = p.sockets;
	if (r->o.heartbeats_fd >= 0) {
		err = cb_hbmap_scan(r->o.heartbeats_fd, on_heartbeat, &p);
		if (err) {
			cb_warn("reconcile: reading the heartbeats map failed (%s)",
				strerror(-err));
			goto out;
		}
		atomic_store_explicit(&r->heartbeats, p.entries, memory_order_relaxed);
	}
	if (!seed)
		while (!cb_map_cursor_done(p.m, &cur))
			cb_map_visit(p.m, &cur, visit_missed_close, &p);
out:
	free(p.seen.slot);
	for (unsigned int k = 0; k < CB_CORR_COUNT; k++)
		add(&r->corr[k], p.corr[k]);
	add(&r->seeded, p.added);
	add(err ? &r->failures : &r->passes, 1);
	atomic_store_explicit(&r->diag_sockets, p.sockets, memory_order_relaxed);
	atomic_store_explicit(&r->last_pass_ns, mono_ns() - start, memory_order_relaxed);
	pthread_mutex_unlock(&r->pass_lock);
	if (!err && !seed && (p.corr[CB_CORR_MISSING_OPEN] || p.corr[CB_CORR_MISSED_CLOSE] ||
			      p.corr[CB_CORR_STATE]))
		cb_dbg("reconcile: %llu sockets; added %llu, closed %llu, state fixed %llu",
		       (unsigned long long)p.sockets,
		       (unsigned long long)p.corr[CB_CORR_MISSING_OPEN],
		       (unsigned long long)p.corr[CB_CORR_MISSED_CLOSE],
		       (unsigned long long)p.corr[CB_CORR_STATE]);
	return err;
}

static void *reconcile_main(void *arg)
{
	struct cb_reconciler *r = arg;
	struct timespec deadline;
	uint64_t iv;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		iv = atomic_load_explicit(&r->interval_ns, memory_order_relaxed);
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += (time_t)(iv / 1000000000ull);
		deadline.tv_nsec += (long)(iv % 1000000000ull);
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		while (!r->stop &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &deadline) != ETIMEDOUT)
			;
		if (r->stop)
			break;
		pthread_mutex_unlock(&r->lock);
		cb_reconcile_pass(r, false);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int cb_reconcile_new(struct cb_reconciler **out, const struct cb_reconcile_opts *o)
{
	struct cb_reconciler *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	int err;

	if (!r)
		return -ENOMEM;
	r->o = *o;
	atomic_store(&r->interval_ns, o->interval_ns ? o->interval_ns : 5000000000ull);
	err = cb_sock_diag_netns(&r->netns);
	if (err) {
		cb_err("cannot read this process's network namespace (%s): is /proc mounted?",
		       strerror(-err));
		free(r);
		return err;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->pass_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = r;
	return 0;
}

int cb_reconcile_start(struct cb_reconciler *r)
{
	int err = -pthread_create(&r->thread, NULL, reconcile_main, r);

	if (err)
		cb_err("cannot start the reconcile thread: %s", strerror(-err));
	else
		r->running = true;
	return err;
}

void cb_reconcile_set_interval(struct cb_reconciler *r, uint64_t interval_ns)
{
	atomic_store_explicit(&r->interval_ns, interval_ns, memory_order_relaxed);
	pthread_mutex_lock(&r->lock);
	pthread_cond_signal(&r->cond); /* re-arm the wait with the new interval */
	pthread_mutex_unlock(&r->lock);
}

void cb_reconcile_stop(struct cb_reconciler *r)
{
	if (!r || !r->running)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->running = false;
}

void cb_reconcile_free(struct cb_reconciler *r)
{
	if (!r)
		return;
	cb_reconcile_stop(r);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->pass_lock);
	free(r);
}

void cb_reconcile_stats(const struct cb_reconciler *r, struct cb_reconcile_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->passes = atomic_load_explicit(&r->passes, memory_order_relaxed);
	out->failures = atomic_load_explicit(&r->failures, memory_order_relaxed);
	out->seeded = atomic_load_explicit(&r->seeded, memory_order_relaxed);
	out->diag_sockets = atomic_load_explicit(&r->diag_sockets, memory_order_relaxed);
	out->heartbeats = atomic_load_explicit(&r->heartbeats, memory_order_relaxed);
	out->last_pass_ns = atomic_load_explicit(&r->last_pass_ns, memory_order_relaxed);
	for (unsigned int k = 0; k < CB_CORR_COUNT; k++)
		out->corrections[k] = atomic_load_explicit(&r->corr[k], memory_order_relaxed);
}

uint32_t cb_reconcile_netns(const struct cb_reconciler *r)
{
	return r->netns;
}
