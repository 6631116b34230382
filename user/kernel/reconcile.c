// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* reconcile.c — see reconcile.h. */
#include "kernel/reconcile.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "core/apply.h"
#include "kernel/hbmap.h"
#include "kernel/netns.h"
#include "kernel/proc.h"

#pragma GCC poison u8 u16 u32 u64

static const char *const corr_names[CB_CORR_COUNT] = {
	[CB_CORR_MISSING_OPEN] = "missing_open",
	[CB_CORR_STATE] = "state",
	[CB_CORR_MISSED_CLOSE] = "missed_close",
	[CB_CORR_ORPHAN_HEARTBEAT] = "orphan_heartbeat",
};

static const char *const dumpfail_names[CB_DUMPFAIL_COUNT] = {
	[CB_DUMPFAIL_GONE] = "gone",
	[CB_DUMPFAIL_DENIED] = "denied",
	[CB_DUMPFAIL_ERROR] = "error",
};

const char *cb_correction_name(unsigned int kind)
{
	return kind < CB_CORR_COUNT ? corr_names[kind] : "?";
}

const char *cb_dump_failure_name(unsigned int reason)
{
	return reason < CB_DUMPFAIL_COUNT ? dumpfail_names[reason] : "?";
}

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

static uint64_t get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

/* ---- a set of cookies (0 = empty; the kernel never hands out cookie 0) --- */

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

/* ---- growable arrays of lookups ---------------------------------------- */

int cb_lookups_push(struct cb_lookups *l, const struct cb_lookup *x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct cb_lookup *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *x;
	return 0;
}

void cb_lookups_free(struct cb_lookups *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The key of a session, for an exact lookup. Under its shard lock. */
void cb_lookup_of_session(const struct cb_map *m, const struct cb_session *s, struct cb_lookup *l)
{
	memset(l, 0, sizeof(*l));
	l->netns = cb_session_netns(m, s);
	l->key.cookie = s->cookie;
	l->key.family = (s->flags & CB_SF_FAMILY6) ? 6 : 4;
	l->key.sport = s->sport;
	l->key.dport = s->dport;
	memcpy(l->key.saddr, s->saddr, 16);
	memcpy(l->key.daddr, s->daddr, 16);
}

static void diag_lookup(const struct cb_diag_sock *d, uint32_t netns, struct cb_lookup *l)
{
	memset(l, 0, sizeof(*l));
	l->netns = netns;
	l->key.cookie = d->cookie;
	l->key.family = d->family;
	l->key.sport = d->sport;
	l->key.dport = d->dport;
	memcpy(l->key.saddr, d->saddr, 16);
	memcpy(l->key.daddr, d->daddr, 16);
}

/* ---- the reconciler ----------------------------------------------------- */

/* One network namespace we know of. */
struct ns_entry {
	struct cb_netns_info info; /* how to reach it (the last discovery) */
	uint64_t lost_done;        /* its `lost` count already repaired */
	uint32_t missing;          /* discoveries in a row that did not find it */
	bool seeded;               /* dumped whole at least once */
	uint64_t swept_cycle;      /* the sweep cycle that dumped it completely */
	uint64_t sweep_t0;         /* when that dump began */
	bool by_lookup;            /* this cycle swept by exact lookups, not a dump */
};

struct sweep {
	uint64_t cycle;          /* the cycle in progress (1, 2, ...) */
	uint64_t cycle_start_ns;
	/* the intervals of the ticks since the cycle was planned, summed: a
	 * clock of ticks, not of the wall, so that tests drive it by passes */
	uint64_t since_plan_ns;
	bool paced;              /* a cycle was planned before: pace the next */
	size_t pos;              /* next netns of the table to dump */
	struct cb_diag *diag;    /* the dump in progress, or NULL */
	uint32_t inode;          /* ... of this netns */
	uint64_t t0;             /* ... begun then */
	uint64_t cycle_sockets, last_cycle_sockets;
	struct cb_lookups suspects; /* contradictions to look up again next tick */
	/* sockets a read brought beyond the tick's budget (sock_diag hands
	 * over a kernel batch at a time, up to a few hundred): the next tick
	 * takes them first, so that no tick handles more than its budget */
	struct cb_diag_sock *held;
	size_t nheld, held_pos, held_cap;
	int held_end; /* the dump ended behind them: 0 complete, or -errno */
	/* the sessions of the namespaces swept by lookup this cycle (sorted by
	 * netns), looked up `budget` at a time before the dumps */
	bool planned;
	struct cb_lookups look;
	size_t look_pos;
};

struct remnant {
	struct cb_lookup l;
};

struct cb_reconciler {
	struct cb_reconcile_opts o;
	struct cb_map *m;
	_Atomic uint64_t interval_ns;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock; /* stop flag + cond */
	pthread_cond_t cond;
	bool stop;
	pthread_mutex_t pass_lock; /* one pass (or seeding) at a time */

	/* the namespaces; the table is the reconcile thread's, read by
	 * query threads under ns_lock (they copy an entry's info) */
	pthread_mutex_t ns_lock;
	struct ns_entry *ns;
	size_t nns, ns_cap;
	uint64_t discoveries;

	struct sweep sw;
	uint64_t stat_drops_seen; /* the programs' global loss counters, last seen */
	uint64_t misses_seen;     /* lifecycle recursion misses, last repaired */
	uint32_t since_all;       /* passes since every netns was repaired (UINT32_MAX: never) */
	bool loss_baseline;       /* both taken (at seeding, or by the first pass) */

	/* remnants to watch, from the ingest thread and our own dumps */
	pthread_mutex_t remnant_lock;
	struct remnant *rem;
	size_t nrem, rem_cap;

	/* owners passes: from this thread or a query's */
	pthread_mutex_t owners_lock;
	_Atomic uint64_t owners_done_ns; /* when the last pass completed */
	uint64_t owners_next_ns;         /* the thread's next pass, at the earliest */
	struct cb_comm_cache comms;      /* for the start-up heartbeats read */

	_Atomic uint64_t passes, failures, seeded, repairs, sweep_cycles, sweep_sockets;
	_Atomic uint64_t sweep_budget, sweep_tick_max, sweep_last_cycle_ns, remnants_now;
	_Atomic uint64_t lookups, owners_passes, owners_last_ns, owners_set, heartbeats;
	_Atomic uint64_t last_pass_ns, netns_now;
	_Atomic uint64_t corr[CB_CORR_COUNT];
	_Atomic uint64_t dump_failures[CB_DUMPFAIL_COUNT];
};

static unsigned int dump_failure_reason(int err)
{
	if (err == -ESRCH || err == -ENOENT)
		return CB_DUMPFAIL_GONE;
	if (err == -EPERM || err == -EACCES)
		return CB_DUMPFAIL_DENIED;
	return CB_DUMPFAIL_ERROR;
}

static void count_dump_failure(struct cb_reconciler *r, uint32_t inode, int err)
{
	static struct cb_ratelimit rl = CB_RATELIMIT_INIT(60000, 3);

	add(&r->dump_failures[dump_failure_reason(err)], 1);
	cb_log_ratelimited(&rl, CB_LOG_WARN,
			   "reconcile: cannot read the sockets of network namespace %u (%s); its "
			   "sessions are left as they are until the next try",
			   inode, strerror(-err));
}

/* The entry of netns `inode`, or NULL. Under ns_lock (or the reconcile
 * thread, which alone changes the table). */
static struct ns_entry *ns_find(struct cb_reconciler *r, uint32_t inode)
{
	for (size_t i = 0; i < r->nns; i++)
		if (r->ns[i].info.inode == inode)
			return &r->ns[i];
	return NULL;
}

static bool tracked(struct cb_reconciler *r, uint32_t inode)
{
	bool yes;

	pthread_mutex_lock(&r->ns_lock);
	yes = ns_find(r, inode) != NULL;
	pthread_mutex_unlock(&r->ns_lock);
	return yes;
}

static int find_info(const struct cb_netns_info *ns, void *ctx)
{
	struct cb_netns_info *want = ctx;

	if (ns->inode != want->inode)
		return 0;
	*want = *ns;
	return -ECANCELED; /* found: stop */
}

/* How to reach netns `inode` now, from a discovery of its own. */
static bool reachable_now(uint32_t inode, struct cb_netns_info *out)
{
	struct cb_netns_info f = { .inode = inode };

	if (!inode || cb_netns_discover(find_info, &f, NULL) != -ECANCELED)
		return false;
	*out = f;
	return true;
}

/* Copy how to reach `inode` (for a query thread). A netns born since the
 * last discovery (a new pod's, within its first interval) is looked for
 * now: not looking would report its live sockets as gone. */
static bool ns_info(struct cb_reconciler *r, uint32_t inode, struct cb_netns_info *out)
{
	struct cb_netns_info f = { .inode = inode };
	struct ns_entry *e;

	pthread_mutex_lock(&r->ns_lock);
	e = ns_find(r, inode);
	if (e)
		*out = e->info;
	pthread_mutex_unlock(&r->ns_lock);
	if (e)
		return true;
	if (!inode || cb_netns_discover(find_info, &f, NULL) != -ECANCELED)
		return false;
	*out = f;
	return true;
}

/* ---- entering a netns: open a sock_diag socket there ---------------------- */

static int open_diag_cb(void *ctx)
{
	return cb_diag_open(ctx);
}

/* A sock_diag socket of netns `info`. It keeps the netns alive while open:
 * callers close it when their dump or lookups are done. */
static int diag_in(const struct cb_netns_info *info, struct cb_diag **out)
{
	*out = NULL;
	return cb_netns_run_in(info, open_diag_cb, out);
}

/*
 * The same for netns `inode` as the table knows it. When the table's way
 * in is stale — its process and its name gone, and the inode now another
 * netns's (the kernel reuses them at once) — a discovery of its own tries
 * once more; the table itself is corrected by the next discovery. -ESRCH
 * when nothing reaches it.
 */
static int diag_of(struct cb_reconciler *r, uint32_t inode, struct cb_diag **out)
{
	struct cb_netns_info info, fresh;
	int err;

	*out = NULL;
	if (!ns_info(r, inode, &info))
		return -ESRCH;
	err = diag_in(&info, out);
	if (err != -ESRCH || !reachable_now(inode, &fresh) ||
	    (fresh.pid == info.pid && !strcmp(fresh.name, info.name)))
		return err;
	return diag_in(&fresh, out);
}

/* ---- applying what the kernel says ---------------------------------------- */

/* Apply a sock_diag sighting as a synthetic record. */
static enum cb_apply_result apply_diag(struct cb_reconciler *r, const struct cb_diag_sock *d,
				       uint32_t netns, uint64_t ts)
{
	struct cb_record rec;

	cb_sock_diag_to_record(d, ts, netns, &rec);
	if (rec.flags & CB_RF_REMNANT)
		cb_reconcile_note_remnant(r, &rec);
	return cb_apply_record(r->m, &rec, mono_ns());
}

static bool still_remnant(struct cb_map *m, uint64_t cookie);

/* Close a session whose socket the kernel no longer has (a synthetic
 * CLOSE: it lingers from now), and free its heartbeats entry if the
 * programs left one behind. `count`: as a missed close, unless it was a
 * remnant (whose end the kernel never reports). False when there was
 * nothing to close: a CLOSED session (its own CLOSE was read meanwhile,
 * apply.h) or none. */
static bool close_session(struct cb_reconciler *r, const struct cb_lookup *l, bool count)
{
	struct cb_record rec;

	if (count && still_remnant(r->m, l->key.cookie))
		count = false;
	memset(&rec, 0, sizeof(rec));
	rec.kind = CB_REC_CLOSE;
	rec.version = CB_ABI_VERSION;
	rec.size = sizeof(rec);
	rec.flags = CB_RF_SYNTH;
	rec.cookie = l->key.cookie;
	rec.ts_ns = mono_ns();
	rec.old_state = rec.new_state = CB_TCP_CLOSE;
	rec.tuple.family = l->key.family;
	memcpy(rec.tuple.saddr, l->key.saddr, 16);
	memcpy(rec.tuple.daddr, l->key.daddr, 16);
	rec.tuple.sport = l->key.sport;
	rec.tuple.dport = l->key.dport;
	rec.tuple.netns = l->netns;
	if (cb_apply_record(r->m, &rec, rec.ts_ns) != CB_APPLY_UPDATED)
		return false;
	if (r->o.on_close)
		r->o.on_close(&rec, r->o.ctx);
	if (count)
		add(&r->corr[CB_CORR_MISSED_CLOSE], 1);
	if (r->o.heartbeats_fd >= 0 &&
	    bpf_map_delete_elem(r->o.heartbeats_fd, &(struct cb_hb_key){ l->key.cookie }) == 0 &&
	    count)
		add(&r->corr[CB_CORR_ORPHAN_HEARTBEAT], 1);
	return true;
}

/* ---- verification by exact lookup ---------------------------------------- */

struct found_ctx {
	struct cookie_set set;
	struct cb_diag_sock *v;
	size_t n, cap;
};

static int found_one(const struct cb_diag_sock *d, void *ctx)
{
	struct found_ctx *f = ctx;

	if (set_add(&f->set, d->cookie))
		return -ENOMEM;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64;
		struct cb_diag_sock *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = *d;
	return 0;
}

/* The netns inode of the session of `cookie` (0 when it has none). */
static uint32_t netns_of(struct cb_reconciler *r, uint64_t cookie)
{
	struct cb_shard *sh = cb_map_shard(r->m, cookie);
	struct cb_session *s;
	uint32_t netns = 0;

	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, cookie);
	if (s)
		netns = cb_session_netns(r->m, s);
	cb_shard_unlock(sh);
	return netns;
}

static int by_netns(const void *a, const void *b)
{
	const struct cb_lookup *x = a, *y = b;

	if (x->netns != y->netns)
		return x->netns < y->netns ? -1 : 1;
	return x->key.cookie < y->key.cookie ? -1 : x->key.cookie > y->key.cookie;
}

/* cb_reconcile_lookup(), and which items it could not look up because
 * their netns could not be entered (unreached[i] set, when given). */
static int lookup_items(struct cb_reconciler *r, const struct cb_lookup *items, size_t n,
			cb_diag_fn fn, void *ctx, uint8_t *unreached)
{
	struct cb_diag_key *keys;
	size_t i = 0;
	int found = 0, err = 0;

	keys = malloc((n ? n : 1) * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	/* items come grouped by netns (callers sort); each group is one
	 * entry into its netns */
	while (i < n) {
		struct cb_diag *d = NULL;
		size_t j = i, k = 0;
		int ret;

		while (j < n && items[j].netns == items[i].netns)
			keys[k++] = items[j++].key;
		if (diag_of(r, items[i].netns, &d) == 0) {
			ret = cb_diag_lookup(d, keys, k, fn, ctx);
			cb_diag_close(d);
			add(&r->lookups, k);
			if (ret < 0) {
				err = ret;
				break;
			}
			found += ret;
		} else if (unreached) {
			memset(unreached + i, 1, j - i);
		}
		i = j;
	}
	free(keys);
	return err ? err : found;
}

int cb_reconcile_lookup(struct cb_reconciler *r, const struct cb_lookup *items, size_t n,
			cb_diag_fn fn, void *ctx)
{
	return lookup_items(r, items, n, fn, ctx, NULL);
}

static int by_item_netns(const void *a, const void *b, void *ctx)
{
	const struct cb_lookup *items = ctx;
	uint32_t x = items[*(const size_t *)a].netns, y = items[*(const size_t *)b].netns;

	return x < y ? -1 : x > y;
}

int cb_reconcile_destroy(struct cb_reconciler *r, struct cb_lookup *items, size_t n, int *res)
{
	struct cb_diag_key *keys = malloc((n ? n : 1) * sizeof(*keys));
	size_t *order = malloc((n ? n : 1) * sizeof(*order));
	int *out = malloc((n ? n : 1) * sizeof(*out));
	int err = 0;

	if (!keys || !order || !out) {
		err = -ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		res[i] = -ESRCH;
		order[i] = i;
	}
	/* group by netns, keeping where each item came from */
	qsort_r(order, n, sizeof(*order), by_item_netns, items);
	for (size_t i = 0; i < n && !err;) {
		uint32_t netns = items[order[i]].netns;
		struct cb_diag *d = NULL;
		size_t j = i, k = 0;

		while (j < n && items[order[j]].netns == netns)
			keys[k++] = items[order[j++]].key;
		if (diag_of(r, netns, &d) == 0) {
			int ret = cb_diag_destroy(d, keys, k, out);

			cb_diag_close(d);
			if (ret == -EOPNOTSUPP) {
				err = ret;
				break;
			}
			for (size_t x = 0; x < k; x++)
				res[order[i + x]] = ret ? ret : out[x];
		}
		i = j;
	}
done:
	free(keys);
	free(order);
	free(out);
	return err;
}

/* Look the candidates up (sorted by netns here) and act on each: gone or
 * TIME_WAIT: closed (a missed close when `count`); a FIN_WAIT2 remnant:
 * marked; alive: nothing (a dump missed it). `*nclosed` (when given) counts
 * the sessions it closed. */
static int verify_closes(struct cb_reconciler *r, struct cb_lookups *cand, bool count,
			 size_t *nclosed)
{
	struct found_ctx f = { 0 };
	struct cookie_set ended = { 0 };
	uint8_t *unreached = NULL;
	bool synced = false;
	int err;

	if (!cand->n)
		return 0;
	qsort(cand->v, cand->n, sizeof(*cand->v), by_netns);
	err = set_init(&f.set, cand->n);
	if (err)
		return err;
	unreached = calloc(cand->n, 1);
	if (!unreached) {
		err = -ENOMEM;
		goto out;
	}
	err = lookup_items(r, cand->v, cand->n, found_one, &f, unreached);
	if (err < 0)
		goto out;
	err = set_init(&ended, 16);
	if (err)
		goto out;
	for (size_t i = 0; i < f.n; i++) {
		const struct cb_diag_sock *d = &f.v[i];

		if (d->timewait && d->state == CB_TCP_TIME_WAIT)
			err = set_add(&ended, d->cookie); /* TIME_WAIT is not a session */
		else if (d->timewait && d->state == CB_TCP_FIN_WAIT2) /* a remnant: DRAINING, watched */
			apply_diag(r, d, netns_of(r, d->cookie), mono_ns());
		if (err)
			goto out;
	}
	for (size_t i = 0; i < cand->n; i++) {
		if (set_has(&f.set, cand->v[i].key.cookie) && !set_has(&ended, cand->v[i].key.cookie))
			continue;
		if (unreached[i] && tracked(r, cand->v[i].netns)) {
			/* a netns we know but could not enter (a stale way in, a
			 * transient failure): not looked up is not gone. Until
			 * the next try, or until a discovery forgets the netns.
			 * (One no discovery reaches is gone, and so are these
			 * sockets: untracked_candidates() checked.) */
			if (!i || !unreached[i - 1] || cand->v[i - 1].netns != cand->v[i].netns)
				count_dump_failure(r, cand->v[i].netns, -ESRCH);
			continue;
		}
		if (!synced && r->o.sync_rings) /* their own CLOSEs first (close_session) */
			r->o.sync_rings(r->o.ctx);
		synced = true;
		if (close_session(r, &cand->v[i], count) && nclosed)
			(*nclosed)++;
	}
out:
	free(unreached);
	free(ended.slot);
	free(f.set.slot);
	free(f.v);
	return err;
}

/*
 * Sessions a sighting has just created, looked up once more. A sighting is
 * as old as its dump or lookup: the socket may have closed since, and its
 * CLOSE been read before the session existed (a CLOSE of an unknown session
 * is ignored) or the CLOSED session been evicted at the cap — the sighting
 * would then create a session that nothing ever closes. Looked up after the
 * insert, a socket still there reports its close to a session that exists;
 * one gone is closed now. `*kept`: how many were real.
 */
static int confirm_born(struct cb_reconciler *r, struct cb_lookups *born, size_t *kept)
{
	size_t closed = 0;
	int err = verify_closes(r, born, false, &closed);

	*kept = born->n > closed ? born->n - closed : 0;
	return err;
}

/* ---- whole-netns dumps: seeding, new namespaces, repairs ---------------- */

struct whole {
	struct cb_reconciler *r;
	uint32_t netns;
	bool seed;         /* start-up: additions are seeded, not corrections */
	uint64_t t0;       /* the dump began then, less the clock margin */
	struct cookie_set seen;
	struct cb_lookups born; /* sessions created by a repair: confirmed after */
	uint64_t sockets, added;
};

static int on_whole_socket(const struct cb_diag_sock *d, void *ctx)
{
	struct whole *w = ctx;
	struct cb_map *m = w->r->m;
	struct cb_shard *sh;
	struct cb_session *s;
	enum cb_apply_result res;
	int kind = -1;

	w->sockets++;
	if (set_add(&w->seen, d->cookie))
		return -ENOMEM;
	/* A SYN_RECV socket is still the listener's business (request socks
	 * share the state): its OPEN comes when it is ESTABLISHED. */
	if (d->state == CB_TCP_SYN_RECV || d->state == CB_TCP_SYN_SENT || !d->cookie)
		return 0;
	sh = cb_map_shard(m, d->cookie);
	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, d->cookie);
	if (!s)
		kind = CB_CORR_MISSING_OPEN;
	else if (cb_session_state(s) == CB_ST_CLOSED)
		kind = s->last_seen_ns < w->t0 && !(d->timewait && d->state == CB_TCP_FIN_WAIT2) ?
			       CB_CORR_MISSING_OPEN : -2; /* alive again: its OPEN was lost */
	else if (s->last_seen_ns < w->t0 && cb_tcp_state_draining(d->state) &&
		 cb_session_state(s) != CB_ST_DRAINING)
		kind = CB_CORR_STATE;
	cb_shard_unlock(sh);
	if (kind == -2)
		return 0; /* closed after the dump began, or a remnant of a closed one */
	res = apply_diag(w->r, d, w->netns, w->t0);
	if (res == CB_APPLY_INSERTED)
		w->added++;
	if (res == CB_APPLY_IGNORED || w->seed) /* (nothing is read from the rings meanwhile) */
		return 0;
	if (res == CB_APPLY_INSERTED)
		kind = CB_CORR_MISSING_OPEN;
	if (kind == CB_CORR_MISSING_OPEN && !d->timewait) {
		/* created or reopened: confirmed after the dump (a remnant is
		 * watched anyway; out of memory: counted unconfirmed) */
		struct cb_lookup l;

		diag_lookup(d, w->netns, &l);
		if (!cb_lookups_push(&w->born, &l))
			return 0;
	}
	if (kind >= 0)
		add(&w->r->corr[kind], 1);
	return 0;
}

struct whole_run {
	struct whole *w;
	int err;
};

static int whole_in_ns(void *ctx)
{
	struct whole_run *wr = ctx;
	struct cb_diag *d;
	int err = cb_diag_open(&d);

	if (err)
		return err;
	err = cb_diag_dump(d, CB_DIAG_SESSION_STATES, true, on_whole_socket, wr->w, -1);
	cb_diag_close(d);
	return err;
}

/* Candidates for a missed close in netns `netns`: open sessions there that
 * the dump did not meet and that were silent since before it began. */
struct close_walk {
	struct cb_reconciler *r;
	uint16_t netns_id;
	uint64_t t0;
	const struct cookie_set *seen;
	struct cb_lookups cand;
	int err;
};

static void visit_whole_close(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			      void *ctx)
{
	struct close_walk *cw = ctx;
	struct cb_lookup l;

	if (s->netns_id != cw->netns_id || cb_session_state(s) == CB_ST_CLOSED ||
	    s->last_seen_ns >= cw->t0 || s->first_seen_ns >= cw->t0 ||
	    set_has(cw->seen, s->cookie))
		return;
	cb_lookup_of_session(m, s, &l);
	if (!cw->err)
		cw->err = cb_lookups_push(&cw->cand, &l);
}

/* Dump netns `e` whole and make the map agree with it. */
static int dump_whole(struct cb_reconciler *r, struct ns_entry *e, bool seed)
{
	struct whole w = { .r = r, .netns = e->info.inode, .seed = seed };
	struct whole_run wr = { .w = &w };
	struct close_walk cw = { .r = r };
	struct cb_map_cursor cur = { 0 };
	uint64_t start = mono_ns();
	int err;

	w.t0 = start > CB_RECONCILE_MARGIN_NS ? start - CB_RECONCILE_MARGIN_NS : 0;
	err = set_init(&w.seen, 1024);
	if (err)
		return err;
	err = cb_netns_run_in(&e->info, whole_in_ns, &wr);
	if (err) {
		count_dump_failure(r, e->info.inode, err);
		goto confirm; /* what it created before failing still is */
	}
	e->seeded = true;
	if (seed)
		add(&r->seeded, w.added);
	/* the sessions of this netns it did not meet: looked up before closing */
	cw.netns_id = cb_intern_find(cb_map_netns(r->m), e->info.inode);
	cw.t0 = w.t0;
	cw.seen = &w.seen;
	if (cw.netns_id && !seed) {
		while (!cb_map_cursor_done(r->m, &cur))
			cb_map_visit(r->m, &cur, visit_whole_close, &cw);
		err = cw.err ? cw.err : verify_closes(r, &cw.cand, true, NULL);
	}
confirm:
	if (w.born.n) {
		size_t kept = 0;
		int cerr = confirm_born(r, &w.born, &kept);

		add(&r->corr[CB_CORR_MISSING_OPEN], kept);
		err = err ? err : cerr;
		cb_dbg("reconcile: netns %u: %llu sockets, %llu added, %zu of the added or "
		       "reopened gone by the time they were confirmed", e->info.inode,
		       (unsigned long long)w.sockets, (unsigned long long)w.added,
		       w.born.n - kept);
	}
	cb_lookups_free(&w.born);
	cb_lookups_free(&cw.cand);
	free(w.seen.slot);
	return err;
}

/* ---- discovery ------------------------------------------------------------ */

struct disc {
	struct cb_reconciler *r;
	uint64_t gen;
	struct cb_netns_info *fresh; /* namespaces seen for the first time */
	size_t nfresh, cap;
	int err;
};

static int on_netns(const struct cb_netns_info *ns, void *ctx)
{
	struct disc *dc = ctx;
	struct cb_reconciler *r = dc->r;
	struct ns_entry *e;

	pthread_mutex_lock(&r->ns_lock);
	e = ns_find(r, ns->inode);
	if (!e) {
		if (r->nns == r->ns_cap) {
			size_t cap = r->ns_cap ? 2 * r->ns_cap : 64;
			struct ns_entry *v = realloc(r->ns, cap * sizeof(*v));

			if (!v) {
				pthread_mutex_unlock(&r->ns_lock);
				return -ENOMEM;
			}
			r->ns = v;
			r->ns_cap = cap;
		}
		e = &r->ns[r->nns++];
		memset(e, 0, sizeof(*e));
	}
	e->info = *ns;
	e->missing = 0;
	pthread_mutex_unlock(&r->ns_lock);
	return 0;
}

/* Close (once) the open sessions of a netns that is gone. */
struct gone_walk {
	uint16_t netns_id;
	struct cb_lookups cand;
	int err;
};

static void visit_gone(struct cb_map *m, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	struct gone_walk *g = ctx;
	struct cb_lookup l;

	if (s->netns_id != g->netns_id || cb_session_state(s) == CB_ST_CLOSED)
		return;
	cb_lookup_of_session(m, s, &l);
	if (!g->err)
		g->err = cb_lookups_push(&g->cand, &l);
}

/*
 * Forget netns r->ns[i], gone from two discoveries in a row, closing its
 * sessions; false when it is back. The kernel hands a freed netns inode to
 * the next netns made (a pod replaced by a new one usually gets its
 * predecessor's): a netns made after the discovery scan, whose sockets
 * the walk below meets under the same inode, is not the one that went.
 * So it looks once more, after the walk and the wait for the rings,
 * just before closing anything — the last moment a new netns could still
 * be told from the old one.
 */
static bool forget_netns(struct cb_reconciler *r, size_t i)
{
	struct gone_walk g = { .netns_id = cb_intern_find(cb_map_netns(r->m), r->ns[i].info.inode) };
	struct cb_map_cursor cur = { 0 };
	uint32_t inode = r->ns[i].info.inode;
	struct cb_netns_info now;

	if (g.netns_id) {
		while (!cb_map_cursor_done(r->m, &cur))
			cb_map_visit(r->m, &cur, visit_gone, &g);
		if (g.cand.n && r->o.sync_rings) /* the closes its sockets wrote first */
			r->o.sync_rings(r->o.ctx);
	}
	if (reachable_now(inode, &now)) {
		cb_dbg("reconcile: network namespace %u is back (a new one under its inode): "
		       "%zu sessions kept", inode, g.cand.n);
		cb_lookups_free(&g.cand);
		pthread_mutex_lock(&r->ns_lock);
		r->ns[i].info = now;
		r->ns[i].missing = 0;
		r->ns[i].seeded = false; /* a new netns: dumped whole (discover) */
		pthread_mutex_unlock(&r->ns_lock);
		return false;
	}
	if (g.cand.n) {
		size_t closed = 0;

		for (size_t k = 0; k < g.cand.n; k++)
			closed += close_session(r, &g.cand.v[k], true);
		if (closed)
			cb_info("network namespace %u is gone: %zu of its sessions closed", inode,
				closed);
	}
	cb_lookups_free(&g.cand);
	if (r->o.lost_fd >= 0)
		bpf_map_delete_elem(r->o.lost_fd, &inode);
	pthread_mutex_lock(&r->ns_lock);
	r->ns[i] = r->ns[--r->nns];
	if (r->sw.pos > i)
		r->sw.pos--;
	pthread_mutex_unlock(&r->ns_lock);
	return true;
}

/* Discover; seed the new namespaces; forget the ones gone twice in a row. */
static int discover(struct cb_reconciler *r, bool seed)
{
	struct disc dc = { .r = r, .gen = ++r->discoveries };
	uint64_t unreadable = 0;
	int n, err = 0;

	pthread_mutex_lock(&r->ns_lock);
	for (size_t i = 0; i < r->nns; i++)
		r->ns[i].missing++;
	pthread_mutex_unlock(&r->ns_lock);
	n = cb_netns_discover(on_netns, &dc, &unreadable);
	if (n < 0) {
		cb_warn("reconcile: finding the network namespaces failed (%s)", strerror(-n));
		return n;
	}
	for (size_t i = 0; i < r->nns;) {
		struct ns_entry *e = &r->ns[i];

		if (e->missing >= 2 && e->info.inode != cb_netns_self() && forget_netns(r, i))
			continue;
		if (!e->missing && !e->seeded) {
			int ret = dump_whole(r, e, seed);

			if (ret && ret != -ESRCH)
				err = ret;
		}
		i++;
	}
	atomic_store_explicit(&r->netns_now, r->nns, memory_order_relaxed);
	return err;
}

/* ---- reported loss --------------------------------------------------------- */

static uint64_t stats_losses(struct cb_reconciler *r)
{
	uint64_t *vals, sum = 0;
	int ncpu = libbpf_num_possible_cpus();
	__u32 keys[] = { CB_STAT_EVENTS_DROPPED, CB_STAT_MAP_UPDATE_FAILED, CB_STAT_CLOSE_LOST };

	if (r->o.stats_fd < 0 || ncpu <= 0)
		return 0;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return 0;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (!bpf_map_lookup_elem(r->o.stats_fd, &keys[k], vals))
			for (int c = 0; c < ncpu; c++)
				sum += vals[c];
	free(vals);
	return sum;
}

static uint64_t lifecycle_misses(struct cb_reconciler *r)
{
	return r->o.lifecycle_misses ? r->o.lifecycle_misses(r->o.ctx) : 0;
}

/* What was lost before now is not this daemon's to repair (seeding reads
 * everything anyway). */
static void take_loss_baseline(struct cb_reconciler *r)
{
	r->stat_drops_seen = stats_losses(r);
	r->misses_seen = lifecycle_misses(r);
	r->loss_baseline = true;
}

/*
 * Repair every netns whose `lost` count grew; when the programs count
 * losses that no netns entry explains (the lost map was full), all, at
 * once. When the kernel skipped a lifecycle program's run (a recursion
 * miss: nothing ran to count it, nor to say which netns), all too, but at
 * most once per miss_repair_passes: under sustained churn the kernel skips
 * a run every few seconds, and a repair of every netns walks the kernel's
 * whole TCP hash once per netns — on a host with a hundred namespaces,
 * seconds of CPU each time. What a skipped run can lose is little: a
 * missed CLOSE is reported at destroy, a missed first close step by the
 * CLOSE, the missed OPEN of an accepted connection by its next segment (a
 * seeded BEAT: it has no heartbeats entry yet); only a connection opened
 * by connect() whose OPEN was skipped (its entry exists since SYN_SENT),
 * or a silent accepted one, waits for the repair.
 */
static int repair_losses(struct cb_reconciler *r)
{
	uint64_t total = stats_losses(r), misses = lifecycle_misses(r), explained = 0;
	uint32_t gap = r->o.miss_repair_passes;
	__u32 key, next, *prev = NULL;
	bool all = false;
	int err = 0;

	if (!r->loss_baseline) {
		take_loss_baseline(r);
		total = r->stat_drops_seen;
		misses = r->misses_seen;
	}
	if (r->since_all < UINT32_MAX)
		r->since_all++;
	if (misses > r->misses_seen && r->since_all >= gap) {
		cb_warn("the kernel skipped %llu runs of the lifecycle programs (recursion misses: "
			"a program was already running on that CPU): repairing every network "
			"namespace (again in %u passes at the earliest)",
			(unsigned long long)(misses - r->misses_seen), gap);
		all = true;
	}
	while (r->o.lost_fd >= 0 && bpf_map_get_next_key(r->o.lost_fd, prev, &next) == 0) {
		uint64_t count;
		struct ns_entry *e;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(r->o.lost_fd, &key, &count))
			continue;
		e = ns_find(r, key);
		if (!e || count <= e->lost_done)
			continue;
		explained++;
		if (all) { /* repaired below with the others */
			e->lost_done = count;
			continue;
		}
		add(&r->repairs, 1);
		cb_info("network namespace %u lost %llu lifecycle records: repairing it", key,
			(unsigned long long)(count - e->lost_done));
		if (dump_whole(r, e, false) == 0)
			e->lost_done = count;
		else
			err = -EIO;
	}
	if (total > r->stat_drops_seen && !explained) {
		/* losses without a netns entry: the lost map was full */
		if (!all)
			cb_warn("the programs lost records they could not attribute to a network "
				"namespace: repairing every one");
		all = true;
	}
	r->stat_drops_seen = total;
	if (all) {
		r->misses_seen = misses; /* covered by this repair too */
		r->since_all = 0;
		add(&r->repairs, r->nns);
		for (size_t i = 0; i < r->nns; i++)
			if (dump_whole(r, &r->ns[i], false))
				err = -EIO;
	}
	return err;
}

/* ---- remnants -------------------------------------------------------------- */

void cb_reconcile_note_remnant(struct cb_reconciler *r, const struct cb_record *rec)
{
	struct remnant x;

	memset(&x, 0, sizeof(x));
	x.l.netns = rec->tuple.netns;
	x.l.key.cookie = rec->cookie;
	x.l.key.family = rec->tuple.family;
	x.l.key.sport = rec->tuple.sport;
	x.l.key.dport = rec->tuple.dport;
	memcpy(x.l.key.saddr, rec->tuple.saddr, 16);
	memcpy(x.l.key.daddr, rec->tuple.daddr, 16);
	pthread_mutex_lock(&r->remnant_lock);
	if (r->nrem == r->rem_cap) {
		size_t cap = r->rem_cap ? 2 * r->rem_cap : 64;
		struct remnant *v = realloc(r->rem, cap * sizeof(*v));

		if (!v) {
			pthread_mutex_unlock(&r->remnant_lock);
			return; /* the sweep finds it instead */
		}
		r->rem = v;
		r->rem_cap = cap;
	}
	r->rem[r->nrem++] = x;
	atomic_store_explicit(&r->remnants_now, r->nrem, memory_order_relaxed);
	pthread_mutex_unlock(&r->remnant_lock);
}

/* Is the session still a remnant worth watching? */
static bool still_remnant(struct cb_map *m, uint64_t cookie)
{
	struct cb_shard *sh = cb_map_shard(m, cookie);
	struct cb_session *s;
	bool yes;

	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, cookie);
	yes = s && (s->flags & CB_SF_REMNANT) && cb_session_state(s) != CB_ST_CLOSED;
	cb_shard_unlock(sh);
	return yes;
}

/* Keep watching the remnant of lookup key `l`. */
static void watch_on(struct cb_reconciler *r, const struct cb_lookup *l)
{
	struct cb_record rec = { 0 };

	rec.cookie = l->key.cookie;
	rec.tuple.netns = l->netns;
	rec.tuple.family = l->key.family;
	rec.tuple.sport = l->key.sport;
	rec.tuple.dport = l->key.dport;
	memcpy(rec.tuple.saddr, l->key.saddr, 16);
	memcpy(rec.tuple.daddr, l->key.daddr, 16);
	cb_reconcile_note_remnant(r, &rec);
}

/* Look every remnant up; close the ones the kernel dropped. */
static int check_remnants(struct cb_reconciler *r)
{
	struct cb_lookups check = { 0 }, keep = { 0 };
	struct cookie_set alive_set = { 0 };
	struct found_ctx f = { 0 };
	int err;

	pthread_mutex_lock(&r->remnant_lock);
	for (size_t i = 0; i < r->nrem; i++)
		cb_lookups_push(&check, &r->rem[i].l);
	r->nrem = 0;
	pthread_mutex_unlock(&r->remnant_lock);
	if (!check.n)
		return 0;
	/* one entry per cookie, and only sessions that are still remnants */
	qsort(check.v, check.n, sizeof(*check.v), by_netns);
	for (size_t i = 0; i < check.n; i++)
		if ((!keep.n || keep.v[keep.n - 1].key.cookie != check.v[i].key.cookie ||
		     keep.v[keep.n - 1].netns != check.v[i].netns) &&
		    still_remnant(r->m, check.v[i].key.cookie))
			cb_lookups_push(&keep, &check.v[i]);
	err = set_init(&f.set, keep.n);
	if (!err && keep.n) {
		err = cb_reconcile_lookup(r, keep.v, keep.n, found_one, &f);
		err = err < 0 ? err : 0;
	}
	/* the ones still FIN_WAIT2 remnants (a set: remnants can be many) */
	if (!err)
		err = set_init(&alive_set, f.n);
	for (size_t j = 0; !err && j < f.n; j++)
		if (f.v[j].state == CB_TCP_FIN_WAIT2)
			err = set_add(&alive_set, f.v[j].cookie);
	for (size_t i = 0; i < keep.n; i++) {
		if (err || set_has(&alive_set, keep.v[i].key.cookie))
			watch_on(r, &keep.v[i]); /* alive, or not known now: next interval */
		else
			close_session(r, &keep.v[i], false); /* its end: not a correction */
	}
	free(alive_set.slot);
	free(f.set.slot);
	free(f.v);
	cb_lookups_free(&check);
	cb_lookups_free(&keep);
	pthread_mutex_lock(&r->remnant_lock);
	atomic_store_explicit(&r->remnants_now, r->nrem, memory_order_relaxed);
	pthread_mutex_unlock(&r->remnant_lock);
	return err;
}

/* ---- the sweep -------------------------------------------------------------- */

struct sweep_ctx {
	struct cb_reconciler *r;
	uint32_t netns;
	uint64_t t0;
	uint64_t sockets;
	uint64_t limit; /* sockets this tick may still handle; the rest are held */
};

/* One socket of the sweep (netns, dump begun at t0): mark its session seen;
 * a contradiction is a suspect, looked up again next tick. */
static void sweep_one(struct cb_reconciler *r, const struct cb_diag_sock *d, uint32_t netns,
		      uint64_t t0)
{
	struct cb_shard *sh;
	struct cb_session *s;
	bool suspect = false;

	if (d->state == CB_TCP_SYN_RECV || d->state == CB_TCP_SYN_SENT || !d->cookie)
		return;
	sh = cb_map_shard(r->m, d->cookie);
	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, d->cookie);
	if (!s) {
		suspect = true;
	} else if (cb_session_state(s) != CB_ST_CLOSED) {
		s->flags |= CB_SF_SWEEP_SEEN;
		if (cb_tcp_state_draining(d->state) && cb_session_state(s) != CB_ST_DRAINING)
			suspect = s->last_seen_ns < t0;
		else if (d->state != s->tcp_state && cb_tcp_state_draining(s->tcp_state))
			s->tcp_state = d->state; /* a later step of its close: not reported */
	}
	cb_shard_unlock(sh);
	if (suspect && r->sw.suspects.n < 65536) {
		struct cb_lookup l;

		diag_lookup(d, netns, &l);
		cb_lookups_push(&r->sw.suspects, &l);
	}
}

/* A socket of the dump: handled now while the tick's budget lasts, else
 * held for the next tick. */
static int on_sweep_socket(const struct cb_diag_sock *d, void *ctx)
{
	struct sweep_ctx *sc = ctx;
	struct sweep *sw = &sc->r->sw;

	if (sc->sockets >= sc->limit) {
		if (sw->nheld == sw->held_cap) {
			size_t cap = sw->held_cap ? 2 * sw->held_cap : 256;
			struct cb_diag_sock *v = realloc(sw->held, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			sw->held = v;
			sw->held_cap = cap;
		}
		sw->held[sw->nheld++] = *d;
		return 0;
	}
	sc->sockets++;
	sweep_one(sc->r, d, sc->netns, sc->t0);
	return 0;
}

/* Last tick's suspects, looked up exactly: still contradicting the map
 * now, they are corrections. */
static int by_cookie(const void *a, const void *b)
{
	uint64_t x = ((const struct cb_lookup *)a)->key.cookie;
	uint64_t y = ((const struct cb_lookup *)b)->key.cookie;

	return x < y ? -1 : x > y;
}

/* The suspect of `cookie` in `byc` (the suspects sorted by cookie). */
static const struct cb_lookup *find_suspect(const struct cb_lookup *byc, size_t n, uint64_t cookie)
{
	struct cb_lookup k = { .key.cookie = cookie };

	return byc ? bsearch(&k, byc, n, sizeof(*byc), by_cookie) : NULL;
}

static int settle_suspects(struct cb_reconciler *r)
{
	struct cb_lookups *sus = &r->sw.suspects, born = { 0 };
	struct cb_lookup *byc;
	struct found_ctx f = { 0 };
	int err;

	if (!sus->n)
		return 0;
	qsort(sus->v, sus->n, sizeof(*sus->v), by_netns);
	byc = malloc(sus->n * sizeof(*byc));
	if (byc) {
		memcpy(byc, sus->v, sus->n * sizeof(*byc));
		qsort(byc, sus->n, sizeof(*byc), by_cookie);
	}
	err = set_init(&f.set, sus->n);
	if (!err)
		err = cb_reconcile_lookup(r, sus->v, sus->n, found_one, &f);
	if (r->o.on_sighted)
		r->o.on_sighted(r->o.ctx);
	for (size_t i = 0; err >= 0 && i < f.n; i++) {
		const struct cb_diag_sock *d = &f.v[i];
		struct cb_shard *sh = cb_map_shard(r->m, d->cookie);
		const struct cb_lookup *l;
		struct cb_session *s;
		uint32_t netns = 0;
		int kind = -1;

		/* its netns (a missing session has none of its own) */
		l = find_suspect(byc, sus->n, d->cookie);
		if (l)
			netns = l->netns;
		if (d->state == CB_TCP_SYN_RECV || d->state == CB_TCP_SYN_SENT ||
		    (d->timewait && d->state == CB_TCP_TIME_WAIT))
			continue;
		cb_shard_lock(sh);
		s = __cb_shard_lookup(sh, d->cookie);
		if (!s)
			kind = CB_CORR_MISSING_OPEN;
		else if (cb_session_state(s) != CB_ST_CLOSED && cb_tcp_state_draining(d->state) &&
			 cb_session_state(s) != CB_ST_DRAINING)
			kind = CB_CORR_STATE;
		cb_shard_unlock(sh);
		if (kind < 0 || apply_diag(r, d, netns, mono_ns()) == CB_APPLY_IGNORED)
			continue;
		if (kind == CB_CORR_MISSING_OPEN) {
			struct cb_lookup nl;

			if (d->timewait)
				continue; /* a remnant: watched, not a missed open */
			/* created (or reopened, if its OPEN and CLOSE were read
			 * meanwhile): confirmed below; out of memory: unconfirmed */
			diag_lookup(d, netns, &nl);
			if (!cb_lookups_push(&born, &nl))
				continue;
		}
		add(&r->corr[kind], 1);
	}
	if (born.n) {
		size_t kept;
		int cerr = confirm_born(r, &born, &kept);

		add(&r->corr[CB_CORR_MISSING_OPEN], kept);
		err = err < 0 ? err : cerr;
		cb_lookups_free(&born);
	}
	free(byc);
	free(f.set.slot);
	free(f.v);
	sus->n = 0;
	return err < 0 ? err : 0;
}

struct cycle_walk {
	struct cb_reconciler *r;
	struct cb_lookups cand;
	struct cb_lookups untracked; /* of a netns no discovery reaches */
	int err;
};

/* The end of a cycle, per session: not met by its netns's complete dump
 * and silent since then: a candidate; the seen marks are cleared for the
 * next cycle. */
static void visit_cycle_end(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			    void *ctx)
{
	struct cycle_walk *cw = ctx;
	struct cb_reconciler *r = cw->r;
	struct ns_entry *e;
	struct cb_lookup l;
	bool seen = s->flags & CB_SF_SWEEP_SEEN;

	s->flags &= ~CB_SF_SWEEP_SEEN;
	if (seen || cb_session_state(s) == CB_ST_CLOSED || (s->flags & CB_SF_REMNANT))
		return;
	/* the reconcile thread alone changes the table: no lock needed to read */
	e = ns_find(r, cb_session_netns(m, s));
	if (!e) {
		/* its netns went before a discovery saw it (or is out of
		 * reach): silent since the cycle began, it is checked below */
		uint64_t t0 = r->sw.cycle_start_ns > CB_RECONCILE_MARGIN_NS ?
				      r->sw.cycle_start_ns - CB_RECONCILE_MARGIN_NS : 0;

		if (s->last_seen_ns >= t0 || s->first_seen_ns >= t0)
			return;
		cb_lookup_of_session(m, s, &l);
		if (!cw->err)
			cw->err = cb_lookups_push(&cw->untracked, &l);
		return;
	}
	if (e->swept_cycle != r->sw.cycle || s->last_seen_ns >= e->sweep_t0 ||
	    s->first_seen_ns >= e->sweep_t0)
		return;
	cb_lookup_of_session(m, s, &l);
	if (!cw->err)
		cw->err = cb_lookups_push(&cw->cand, &l);
}

/* Sessions of a netns no discovery reaches: the programs delete a socket's
 * heartbeats entry when it is destroyed, even when its CLOSE is lost, so
 * one without an entry is gone; it is looked up (in case its netns is
 * reachable after all) and closed. */
static int untracked_candidates(struct cb_reconciler *r, struct cycle_walk *cw)
{
	int ncpu = libbpf_num_possible_cpus();
	struct cb_heartbeat *slots;
	int err = 0;

	if (!cw->untracked.n || r->o.heartbeats_fd < 0 || ncpu <= 0)
		return 0;
	slots = calloc(ncpu, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; !err && i < cw->untracked.n; i++) {
		struct cb_hb_key key = { .cookie = cw->untracked.v[i].key.cookie };

		if (bpf_map_lookup_elem(r->o.heartbeats_fd, &key, slots) && errno == ENOENT)
			err = cb_lookups_push(&cw->cand, &cw->untracked.v[i]);
	}
	free(slots);
	return err;
}

static int end_cycle(struct cb_reconciler *r, uint64_t now)
{
	struct cycle_walk cw = { .r = r };
	struct cb_map_cursor cur = { 0 };
	int err;

	while (!cb_map_cursor_done(r->m, &cur))
		cb_map_visit(r->m, &cur, visit_cycle_end, &cw);
	err = cw.err ? cw.err : untracked_candidates(r, &cw);
	err = err ? err : verify_closes(r, &cw.cand, true, NULL);
	cb_lookups_free(&cw.cand);
	cb_lookups_free(&cw.untracked);
	add(&r->sweep_cycles, 1);
	atomic_store_explicit(&r->sweep_last_cycle_ns, now - r->sw.cycle_start_ns,
			      memory_order_relaxed);
	r->sw.last_cycle_sockets = r->sw.cycle_sockets;
	r->sw.cycle_sockets = 0;
	r->sw.cycle++; /* its start is set when it is planned */
	r->sw.pos = 0;
	r->sw.planned = false;
	return err;
}

static int sweep_open_cb(void *ctx)
{
	struct cb_diag **d = ctx;
	int err = cb_diag_open(d);

	if (!err) {
		err = cb_diag_dump_start(*d, CB_DIAG_SESSION_STATES, false);
		if (err) {
			cb_diag_close(*d);
			*d = NULL;
		}
	}
	return err;
}

/* The dump of the netns being swept ended (ret 0: complete, or -errno) and
 * every socket it read has been handled. */
static void sweep_dump_done(struct cb_reconciler *r, int ret)
{
	struct ns_entry *e = ns_find(r, r->sw.inode);

	if (ret < 0) {
		count_dump_failure(r, r->sw.inode, ret);
	} else if (e) {
		e->swept_cycle = r->sw.cycle;
		e->sweep_t0 = r->sw.t0;
	}
	if (e && &r->ns[r->sw.pos] == e)
		r->sw.pos++;
}

/*
 * How a cycle sweeps each netns. inet_diag keeps one established hash for
 * every netns (unless tcp_child_ehash_entries gave it its own), and a dump
 * of one netns walks all of it: 100 namespaces of 1000 sockets cost 100
 * walks of the whole table per cycle (measured: 35 ms each with 100 000
 * sockets; 5 ms for a table of 69 sockets). A netns holding less than a
 * quarter of the sessions, or none, is swept by exact lookups of its
 * sessions instead (a hash lookup each): what a dump
 * would add — a socket the map lacks — the programs report when they lose
 * it (the `lost` map, repaired whole), and seeding and discovery dump every
 * netns once. The big ones are dumped.
 */
static void visit_plan(struct cb_map *m, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	struct cb_reconciler *r = ctx;
	struct ns_entry *e;
	struct cb_lookup l;

	(void)sh;
	if (cb_session_state(s) == CB_ST_CLOSED || (s->flags & CB_SF_REMNANT))
		return;
	e = ns_find(r, cb_session_netns(m, s));
	if (!e || !e->by_lookup)
		return;
	cb_lookup_of_session(m, s, &l);
	/* out of memory: it is not looked up now, and so (unseen and silent)
	 * looked up at the cycle's end, the same check later */
	cb_lookups_push(&r->sw.look, &l);
}

static void plan_cycle(struct cb_reconciler *r, uint64_t now)
{
	uint64_t live = cb_map_live(r->m), t0 = now > CB_RECONCILE_MARGIN_NS ?
							 now - CB_RECONCILE_MARGIN_NS : 0;
	struct cb_map_cursor cur = { 0 };
	bool any = false;

	r->sw.planned = true;
	r->sw.paced = true;
	r->sw.since_plan_ns = 0;
	r->sw.cycle_start_ns = now;
	r->sw.look.n = r->sw.look_pos = 0;
	for (size_t i = 0; i < r->nns; i++) {
		struct ns_entry *e = &r->ns[i];
		uint16_t id = cb_intern_find(cb_map_netns(r->m), e->info.inode);

		uint64_t refs = cb_intern_refs(cb_map_netns(r->m), id);

		/* (a netns with no session has nothing to look up: not even its
		 * table walk is paid) */
		e->by_lookup = !refs || 4 * refs < live;
		if (e->by_lookup) {
			/* swept as of now: what the lookups do not find and that
			 * stays silent is looked up again at the cycle's end */
			e->swept_cycle = r->sw.cycle;
			e->sweep_t0 = t0;
			any = true;
		}
	}
	if (!any)
		return;
	while (!cb_map_cursor_done(r->m, &cur))
		cb_map_visit(r->m, &cur, visit_plan, r);
	if (r->sw.look.n) /* (none: look.v may be NULL, which qsort must not get) */
		qsort(r->sw.look.v, r->sw.look.n, sizeof(*r->sw.look.v), by_netns);
}

struct look_ctx {
	struct cb_reconciler *r;
	uint32_t netns;
	uint64_t t0;
};

static int on_looked_up(const struct cb_diag_sock *d, void *ctx)
{
	struct look_ctx *lc = ctx;

	sweep_one(lc->r, d, lc->netns, lc->t0);
	return 0;
}

/* Up to `left` lookups of the plan, one netns run at a time; how many. */
static uint64_t sweep_lookups(struct cb_reconciler *r, uint64_t left)
{
	uint64_t done = 0;

	while (left > done && r->sw.look_pos < r->sw.look.n) {
		const struct cb_lookup *v = &r->sw.look.v[r->sw.look_pos];
		struct ns_entry *e = ns_find(r, v->netns);
		struct look_ctx lc = { .r = r, .netns = v->netns, .t0 = e ? e->sweep_t0 : 0 };
		size_t k = 0;
		uint8_t *unreached;
		int ret;

		while (k < left - done && r->sw.look_pos + k < r->sw.look.n && v[k].netns == v->netns)
			k++;
		/* a netns it cannot enter is a failure to count, as a dump's
		 * is, not a netns whose sockets were all looked up gone */
		unreached = calloc(k, 1);
		ret = lookup_items(r, v, k, on_looked_up, &lc, unreached);
		if (e && (ret < 0 || (unreached && unreached[0])))
			count_dump_failure(r, v->netns, ret < 0 ? -EIO : -ESRCH);
		free(unreached);
		r->sw.look_pos += k;
		done += k;
	}
	return done;
}

/*
 * The sessions that have a socket to sweep: not the CLOSED ones, which
 * only linger. Under churn at the cap those are nearly all of the map, and
 * counting them made the budget exceed the sockets there are: a whole
 * cycle, and so a walk of the kernel's whole TCP hash, every tick instead
 * of once per period (measured: 3 cycles in 20 s of churn, 5.3 s each,
 * with the default 300-s period).
 */
static uint64_t open_sessions(struct cb_map *m)
{
	struct cb_map_stats ms;
	uint64_t live = cb_map_live(m);

	cb_map_stats(m, &ms);
	return live > ms.live[CB_ST_CLOSED] ? live - ms.live[CB_ST_CLOSED] : 0;
}

/* One tick of the sweep: at most `budget` sockets. */
static int sweep_tick(struct cb_reconciler *r)
{
	uint64_t iv = atomic_load_explicit(&r->interval_ns, memory_order_relaxed);
	uint64_t period = r->o.sweep_period_ns, live = open_sessions(r->m), budget, left, now;
	int err = settle_suspects(r);

	r->sw.since_plan_ns += iv;
	/* every socket once per period: the map's open sessions, or what the
	 * last cycle read, spread over the ticks of one period */
	if (r->sw.last_cycle_sockets > live)
		live = r->sw.last_cycle_sockets;
	budget = period ? (live * iv + period - 1) / period : live;
	if (budget < CB_SWEEP_MIN_BUDGET)
		budget = CB_SWEEP_MIN_BUDGET;
	atomic_store_explicit(&r->sweep_budget, budget, memory_order_relaxed);
	left = budget;
	while (left) {
		struct sweep_ctx sc = { .r = r };
		struct ns_entry *e;
		int ret;

		now = mono_ns();
		if (!r->sw.planned) {
			/* Once per period, not more often: a cycle of few
			 * sockets ends within a tick or two, and each end
			 * walks the whole session map (so does each plan
			 * when a small netns is swept by lookups, and each
			 * dump the kernel's whole TCP hash), however few
			 * sockets there are to read. Under churn at the cap
			 * that was 262144 lingering sessions every tick. */
			if (r->sw.paced && period && r->sw.since_plan_ns < period)
				break;
			plan_cycle(r, now);
		}
		if (r->sw.look_pos < r->sw.look.n) {
			uint64_t k = sweep_lookups(r, left);

			left -= k;
			r->sw.cycle_sockets += k;
			add(&r->sweep_sockets, k);
			continue;
		}
		if (r->sw.held_pos < r->sw.nheld) {
			/* what the last read brought beyond the budget, first */
			uint64_t k = 0;

			for (; k < left && r->sw.held_pos < r->sw.nheld; k++)
				sweep_one(r, &r->sw.held[r->sw.held_pos++], r->sw.inode, r->sw.t0);
			left -= k;
			r->sw.cycle_sockets += k;
			add(&r->sweep_sockets, k);
			if (r->sw.held_pos < r->sw.nheld)
				break; /* the budget ran out */
			r->sw.nheld = r->sw.held_pos = 0;
			if (!r->sw.diag)
				sweep_dump_done(r, r->sw.held_end);
			continue;
		}
		if (!r->sw.diag) {
			if (r->sw.pos >= r->nns) {
				ret = end_cycle(r, now);
				err = err ? err : ret;
				break; /* one cycle end per tick at most */
			}
			e = &r->ns[r->sw.pos];
			if (e->by_lookup) {
				r->sw.pos++; /* swept by the lookups above */
				continue;
			}
			ret = cb_netns_run_in(&e->info, sweep_open_cb, &r->sw.diag);
			if (ret) {
				count_dump_failure(r, e->info.inode, ret);
				r->sw.pos++;
				continue;
			}
			r->sw.inode = e->info.inode;
			r->sw.t0 = now > CB_RECONCILE_MARGIN_NS ? now - CB_RECONCILE_MARGIN_NS : 0;
		}
		sc.netns = r->sw.inode;
		sc.t0 = r->sw.t0;
		sc.limit = left;
		ret = cb_diag_dump_more(r->sw.diag, left, on_sweep_socket, &sc);
		left -= sc.sockets; /* at most left: the rest is held */
		r->sw.cycle_sockets += sc.sockets;
		add(&r->sweep_sockets, sc.sockets);
		if (ret > 0)
			continue; /* the budget ran out (left is 0) */
		cb_diag_close(r->sw.diag);
		r->sw.diag = NULL;
		if (r->sw.held_pos < r->sw.nheld) {
			r->sw.held_end = ret; /* done when the held ones are */
			continue;
		}
		r->sw.nheld = r->sw.held_pos = 0;
		sweep_dump_done(r, ret);
	}
	if (budget - left > get(&r->sweep_tick_max))
		atomic_store_explicit(&r->sweep_tick_max, budget - left, memory_order_relaxed);
	return err;
}

/* ---- owners ---------------------------------------------------------------- */

struct owner_rec {
	uint64_t cookie;
	uint32_t pid;
	char comm[16];
};

struct owners_ctx {
	struct owner_rec *v;
	size_t n, cap;
	int err;
};

static int on_owner(const struct cb_owner *o, void *ctx)
{
	struct owners_ctx *oc = ctx;

	if (oc->n == oc->cap) {
		size_t cap = oc->cap ? 2 * oc->cap : 4096;
		struct owner_rec *v = realloc(oc->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		oc->v = v;
		oc->cap = cap;
	}
	oc->v[oc->n].cookie = o->cookie;
	oc->v[oc->n].pid = o->pid;
	memcpy(oc->v[oc->n].comm, o->comm, 16);
	oc->n++;
	return 0;
}

static int by_cookie_pid(const void *a, const void *b)
{
	const struct owner_rec *x = a, *y = b;

	if (x->cookie != y->cookie)
		return x->cookie < y->cookie ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Give every session the owner the kernel says holds it: keep one that is
 * among the holders, else take the first; a session nobody holds keeps its
 * last known owner (marked sought, so that it stops asking for passes). */
static void apply_owners(struct cb_reconciler *r, struct owner_rec *v, size_t n)
{
	struct cb_map *m = r->m;
	uint64_t set = 0;

	qsort(v, n, sizeof(*v), by_cookie_pid);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct cb_shard *sh = cb_map_shard(m, v[i].cookie);
		struct cb_session *s;

		while (j < n && v[j].cookie == v[i].cookie)
			j++;
		cb_shard_lock(sh);
		s = __cb_shard_lookup(sh, v[i].cookie);
		if (s && cb_session_state(s) != CB_ST_CLOSED) {
			size_t pick = i;

			for (size_t k = i; k < j; k++)
				if ((s->flags & CB_SF_OWNER_KNOWN) && v[k].pid == s->pid)
					pick = k;
			if (!(s->flags & CB_SF_OWNER_KNOWN) || s->pid != v[pick].pid ||
			    !s->comm_id) {
				__cb_session_set_owner(m, sh, s, v[pick].pid, v[pick].comm);
				set++;
			}
		}
		cb_shard_unlock(sh);
		i = j;
	}
	add(&r->owners_set, set);
}

/* Sessions no pass can give an owner: mark them sought. */
struct sought_ctx {
	const struct owner_rec *v;
	size_t n;
	uint64_t before; /* only sessions that existed when the pass began */
};

static bool owned_in(const struct sought_ctx *c, uint64_t cookie)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->v[mid].cookie < cookie)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n && c->v[lo].cookie == cookie;
}

static void visit_sought(struct cb_map *m, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	const struct sought_ctx *c = ctx;

	if (!(s->flags & (CB_SF_OWNER_KNOWN | CB_SF_OWNER_SOUGHT)) &&
	    s->first_seen_ns < c->before && !owned_in(c, s->cookie))
		__cb_session_owner_sought(sh, s);
}

static int owners_pass(struct cb_reconciler *r)
{
	struct owners_ctx oc = { 0 };
	struct cb_map_cursor cur = { 0 };
	uint64_t t0 = mono_ns();
	int n;

	n = cb_owners_pass(r->o.owners, on_owner, &oc);
	if (n < 0) {
		static struct cb_ratelimit rl = CB_RATELIMIT_INIT(60000, 3);

		cb_log_ratelimited(&rl, CB_LOG_WARN, "owners pass failed (%s): rows keep the "
				   "owners they have", strerror(-n));
		free(oc.v);
		return n;
	}
	apply_owners(r, oc.v, oc.n);
	if (cb_map_unowned(r->m)) {
		struct sought_ctx sc = { .v = oc.v, .n = oc.n, .before = t0 };

		while (!cb_map_cursor_done(r->m, &cur))
			cb_map_visit(r->m, &cur, visit_sought, &sc);
	}
	free(oc.v);
	add(&r->owners_passes, 1);
	atomic_store_explicit(&r->owners_last_ns, mono_ns() - t0, memory_order_relaxed);
	return 0;
}

int cb_reconcile_owners(struct cb_reconciler *r, uint64_t max_age_ns)
{
	uint64_t asked = mono_ns();
	int err = 0;

	if (!r->o.owners)
		return -ENOTSUP;
	pthread_mutex_lock(&r->owners_lock);
	/* a pass that completed after we asked (another thread ran it while
	 * we waited for the lock) serves us too */
	if (get(&r->owners_done_ns) + max_age_ns < asked || !get(&r->owners_done_ns)) {
		err = owners_pass(r);
		if (!err)
			atomic_store_explicit(&r->owners_done_ns, mono_ns(), memory_order_relaxed);
	}
	pthread_mutex_unlock(&r->owners_lock);
	return err;
}

/* The thread's owners pass: only when sessions of unknown owner exist, at
 * most every max(interval, 20 × the last pass's duration). */
static int maybe_owners(struct cb_reconciler *r, uint64_t now)
{
	uint64_t iv = atomic_load_explicit(&r->interval_ns, memory_order_relaxed), gap;
	int err;

	if (!r->o.owners || !cb_map_unowned(r->m) || now < r->owners_next_ns)
		return 0;
	err = cb_reconcile_owners(r, 0);
	gap = 20 * get(&r->owners_last_ns);
	r->owners_next_ns = mono_ns() + (gap > iv ? gap : iv);
	return err;
}

/* ---- start-up: the heartbeats map, once ------------------------------------ */

struct hb_seed {
	struct cb_reconciler *r;
	uint64_t entries;
};

static int on_heartbeat(uint64_t cookie, const struct cb_heartbeat *hb, void *ctx)
{
	struct hb_seed *hs = ctx;
	struct cb_reconciler *r = hs->r;
	struct cb_shard *sh = cb_map_shard(r->m, cookie);
	struct cb_session *s;
	struct cb_record rec;
	bool present;

	hs->entries++;
	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, cookie);
	present = s && cb_session_state(s) != CB_ST_CLOSED;
	cb_shard_unlock(sh);
	if (!present) {
		/* no netns has this socket: its close was never reported */
		if (bpf_map_delete_elem(r->o.heartbeats_fd, &(struct cb_hb_key){ cookie }) == 0)
			add(&r->corr[CB_CORR_ORPHAN_HEARTBEAT], 1);
		return 0;
	}
	/* the clocks and owner the programs kept for it while no daemon ran
	 * (a restart): a BEAT in CLOSE state creates nothing should the
	 * session vanish meanwhile */
	memset(&rec, 0, sizeof(rec));
	rec.kind = CB_REC_BEAT;
	rec.version = CB_ABI_VERSION;
	rec.size = sizeof(rec);
	rec.flags = CB_RF_SYNTH;
	rec.new_state = CB_TCP_CLOSE;
	rec.cookie = cookie;
	rec.ts_ns = mono_ns();
	rec.ctr.last_data_ns = hb->last_data_ns;
	rec.ctr.last_seen_ns = hb->last_seen_ns;
	if (hb->pid) {
		rec.flags |= CB_RF_OWNER_PID;
		rec.pid = hb->pid;
		cb_comm_cache_get(&r->comms, hb->pid, rec.ts_ns, rec.comm);
	}
	cb_apply_record(r->m, &rec, rec.ts_ns);
	return 0;
}

int cb_reconcile_seed(struct cb_reconciler *r)
{
	uint64_t start = mono_ns();
	int err;

	pthread_mutex_lock(&r->pass_lock);
	err = discover(r, true);
	if (r->o.heartbeats_fd >= 0) {
		struct hb_seed hs = { .r = r };
		int ret = cb_hbmap_scan(r->o.heartbeats_fd, on_heartbeat, &hs);

		if (ret)
			cb_warn("reconcile: reading the heartbeats map failed (%s)", strerror(-ret));
		atomic_store_explicit(&r->heartbeats, hs.entries, memory_order_relaxed);
		err = err ? err : ret;
	}
	take_loss_baseline(r);
	r->sw.cycle = 1;
	r->sw.cycle_start_ns = mono_ns();
	pthread_mutex_unlock(&r->pass_lock);
	if (r->o.owners)
		cb_reconcile_owners(r, 0);
	atomic_store_explicit(&r->last_pass_ns, mono_ns() - start, memory_order_relaxed);
	return err;
}

/* ---- a pass ----------------------------------------------------------------- */

int cb_reconcile_pass(struct cb_reconciler *r)
{
	uint64_t start = mono_ns();
	int err = 0, ret;

	pthread_mutex_lock(&r->pass_lock);
	if (!r->sw.cycle) {
		r->sw.cycle = 1;
		r->sw.cycle_start_ns = start;
	}
	ret = discover(r, false);
	err = err ? err : ret;
	ret = repair_losses(r);
	err = err ? err : ret;
	ret = check_remnants(r);
	err = err ? err : ret;
	ret = sweep_tick(r);
	err = err ? err : ret;
	pthread_mutex_unlock(&r->pass_lock);
	ret = maybe_owners(r, mono_ns());
	err = err ? err : ret;
	add(err ? &r->failures : &r->passes, 1);
	atomic_store_explicit(&r->last_pass_ns, mono_ns() - start, memory_order_relaxed);
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
		while (!r->stop && iv == atomic_load_explicit(&r->interval_ns, memory_order_relaxed) &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &deadline) != ETIMEDOUT)
			;
		if (r->stop)
			break;
		if (iv != atomic_load_explicit(&r->interval_ns, memory_order_relaxed))
			continue; /* reloaded (SIGHUP): wait the new interval, from now */
		pthread_mutex_unlock(&r->lock);
		cb_reconcile_pass(r);
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
	r->m = o->map;
	if (!r->o.sweep_period_ns)
		r->o.sweep_period_ns = CB_DEFAULT_SWEEP_PERIOD_NS;
	if (!r->o.miss_repair_passes)
		r->o.miss_repair_passes = CB_DEFAULT_MISS_REPAIR_PASSES;
	r->since_all = UINT32_MAX;
	atomic_store(&r->interval_ns, o->interval_ns ? o->interval_ns : 5000000000ull);
	err = cb_netns_init();
	if (err) {
		cb_err("cannot open this process's network namespace (%s): is /proc mounted?",
		       strerror(-err));
		free(r);
		return err;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->pass_lock, NULL);
	pthread_mutex_init(&r->ns_lock, NULL);
	pthread_mutex_init(&r->remnant_lock, NULL);
	pthread_mutex_init(&r->owners_lock, NULL);
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
	cb_diag_close(r->sw.diag);
	cb_lookups_free(&r->sw.suspects);
	cb_lookups_free(&r->sw.look);
	free(r->sw.held);
	free(r->ns);
	free(r->rem);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->pass_lock);
	pthread_mutex_destroy(&r->ns_lock);
	pthread_mutex_destroy(&r->remnant_lock);
	pthread_mutex_destroy(&r->owners_lock);
	free(r);
}

void cb_reconcile_stats(const struct cb_reconciler *r, struct cb_reconcile_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->passes = get(&r->passes);
	out->failures = get(&r->failures);
	out->seeded = get(&r->seeded);
	out->netns = get(&r->netns_now);
	out->repairs = get(&r->repairs);
	out->sweep_cycles = get(&r->sweep_cycles);
	out->sweep_sockets = get(&r->sweep_sockets);
	out->sweep_budget = get(&r->sweep_budget);
	out->sweep_tick_max = get(&r->sweep_tick_max);
	out->sweep_last_cycle_ns = get(&r->sweep_last_cycle_ns);
	out->remnants = get(&r->remnants_now);
	out->lookups = get(&r->lookups);
	out->owners_passes = get(&r->owners_passes);
	out->owners_last_ns = get(&r->owners_last_ns);
	out->owners_set = get(&r->owners_set);
	out->heartbeats = get(&r->heartbeats);
	out->last_pass_ns = get(&r->last_pass_ns);
	for (unsigned int k = 0; k < CB_CORR_COUNT; k++)
		out->corrections[k] = get(&r->corr[k]);
	for (unsigned int k = 0; k < CB_DUMPFAIL_COUNT; k++)
		out->dump_failures[k] = get(&r->dump_failures[k]);
}

uint32_t cb_reconcile_netns_count(const struct cb_reconciler *r)
{
	return (uint32_t)get(&r->netns_now);
}
