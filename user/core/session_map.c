// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * session_map.c — see session_map.h.
 *
 * Why our own table and not liburcu's lfht or Concurrency Kit: a session
 * must stay within 128 bytes with its hash and wheel links (design.md §3),
 * which rules out per-node allocations (malloc's header alone is 16 B,
 * lfht's node 16 B more) and pointer-sized links. Records live in one
 * mmap'ed slab per shard and link by 32-bit index, their links in a dense
 * array beside it (session.h says why); the hash index is a bucket array of
 * 32-bit heads. Every operation that changes a shard holds its lock for a
 * handful of cache misses, so a reader-side RCU would buy little: the
 * writers (one ingest thread, the tick) dominate, and dumps copy out in
 * bounded chunks under the lock instead of traversing lock-free.
 *
 * Sizing (style.md #13, the "presize" form): each shard's slab, links and
 * bucket arrays are reserved once from max_sessions / shards (plus slack
 * for uneven hashing) with MAP_NORESERVE: untouched pages cost nothing, so
 * RSS follows the sessions actually held and nothing ever rehashes.
 * Buckets: the power of two at or below the shard capacity, so at the cap a
 * chain averages 1–2 records and the index costs 2–4 bytes per session.
 *
 * Placement: the cookie's low bits pick the shard (XORed with a mixed hash
 * of its 4096-block) and the next bits the bucket. Socket cookies are a
 * kernel counter handed out in per-CPU blocks of 4096, so the sessions of
 * one burst of connections get consecutive cookies: their buckets share
 * cache lines, and the evictions and closes that follow them in nearly
 * the same order find those lines warm. A mixed hash of the whole cookie
 * scattered them over the whole array: under churn at the cap every
 * eviction's bucket and chain was a cache miss (bench_core's churn_at_cap:
 * 610–720 ns per connection mixed, 310–390 unmixed; with the drain state
 * moved beside the cookie (session.h), the daemon's CPU under full churn
 * about halved). Spread is no worse: within a block the low
 * bits of a counter are exactly uniform, and the block's hash keeps a
 * stride that happened to match the shard count (sockets of some other
 * kind taking every other cookie, say) from piling into a few shards for
 * longer than one block.
 */
#include "core/session_map.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/wheel.h"

#define CB_REFUSED_CACHE 4096
/* The kernel hands socket cookies out in per-CPU blocks of 4096
 * (COOKIE_LOCAL_BATCH in net/core/sock_diag.c). */
#define CB_COOKIE_BLOCK_BITS 12

struct cb_shard {
	pthread_mutex_t lock;
	struct cb_session *slab; /* cap + 1 records; [0] unused (nil) */
	struct cb_session_links *links; /* the same indices */
	cb_sidx_t *buckets;
	uint32_t bmask;
	uint32_t bshift;   /* log2(nshards): the cookie bits that chose the shard */
	uint32_t cap;      /* highest usable index */
	uint32_t hwm;      /* next never-used index */
	cb_sidx_t free_head;
	size_t slab_bytes, links_bytes, bucket_bytes;
	struct cb_state_stats st;
	_Atomic uint64_t opened, evicted, evicted_early, refused, reopened;
	_Atomic uint64_t unowned; /* no OWNER_KNOWN, no OWNER_SOUGHT */
	_Atomic uint64_t tick_visited, tick_reslotted, tick_budget_hits, max_hold_ns;
	/* No CLOSED session sits in a wheel slot before this tick: where the
	 * search for one to evict at the cap starts. Lowered by every link of
	 * a CLOSED session, raised by the search itself. */
	uint64_t closed_from;
	struct cb_wheel wheel;
} __attribute__((aligned(64)));

struct cb_map {
	struct cb_map_config cfg;
	uint32_t nshards;
	struct cb_shard *shards;
	struct cb_comm_table *comms;
	struct cb_intern *netns, *cgroups;
	_Atomic uint64_t live; /* for the cap: touched on insert and free only */
	/* timeouts, changeable at run time (SIGHUP) */
	_Atomic uint64_t idle_ns, drain_timeout_ns, linger_ns;
	_Atomic bool basis_any;
	_Atomic uint64_t refused_cache[CB_REFUSED_CACHE];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint32_t pow2_floor(uint64_t v)
{
	uint32_t p = 1;

	while ((uint64_t)p * 2 <= v && p < (1u << 30))
		p *= 2;
	return p;
}

static void *reserve(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

struct cb_map *cb_map_new(const struct cb_map_config *cfg, uint64_t now_ns)
{
	struct cb_map *m;
	uint64_t per;

	if (!cfg->max_sessions || cfg->max_sessions > (1ULL << 30) || !cfg->tick_ns ||
	    (cfg->shards & (cfg->shards - 1))) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cfg = *cfg;
	if (!m->cfg.shards) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		uint64_t want = (cpus > 0 ? (uint64_t)cpus : 1) * 8;

		m->cfg.shards = pow2_floor(want * 2 - 1); /* next power of two */
		if (m->cfg.shards < 4)
			m->cfg.shards = 4;
		if (m->cfg.shards > 256)
			m->cfg.shards = 256;
	}
	while (m->cfg.shards > 1 && m->cfg.max_sessions / m->cfg.shards < 64)
		m->cfg.shards /= 2; /* tiny caps (tests): keep shards useful */
	if (!m->cfg.tick_budget)
		m->cfg.tick_budget = 512;
	/* One cb_map_tick() call visits every shard: share a 400 µs budget
	 * between them (at least 20 µs each), so that a tick stays well
	 * under a millisecond and no lock is held for long. */
	if (!m->cfg.tick_max_ns) {
		m->cfg.tick_max_ns = CB_TICK_CALL_NS / m->cfg.shards;
		if (m->cfg.tick_max_ns < 20000)
			m->cfg.tick_max_ns = 20000;
	}
	m->nshards = m->cfg.shards;
	atomic_store(&m->idle_ns, cfg->idle_ns);
	atomic_store(&m->drain_timeout_ns, cfg->drain_timeout_ns);
	atomic_store(&m->linger_ns, cfg->linger_ns);
	atomic_store(&m->basis_any, cfg->idle_basis_any);
	m->comms = cb_comm_new();
	m->netns = cb_intern_new();
	m->cgroups = cb_intern_new();
	m->shards = aligned_alloc(64, sizeof(*m->shards) * m->nshards);
	if (!m->comms || !m->netns || !m->cgroups || !m->shards)
		goto fail;
	memset(m->shards, 0, sizeof(*m->shards) * m->nshards);

	/* Per shard: an even share plus slack for hashing imbalance (a few
	 * standard deviations); the global count enforces the exact cap. */
	per = m->cfg.max_sessions / m->nshards;
	per += per / 8 + 64;
	for (uint32_t i = 0; i < m->nshards; i++) {
		struct cb_shard *sh = &m->shards[i];
		uint32_t nb = pow2_floor(m->cfg.max_sessions / m->nshards + 1);

		pthread_mutex_init(&sh->lock, NULL);
		sh->cap = (uint32_t)per;
		sh->hwm = 1;
		sh->slab_bytes = (per + 1) * sizeof(struct cb_session);
		sh->links_bytes = (per + 1) * sizeof(struct cb_session_links);
		sh->bucket_bytes = (size_t)nb * sizeof(cb_sidx_t);
		sh->slab = reserve(sh->slab_bytes);
		sh->links = reserve(sh->links_bytes);
		sh->buckets = reserve(sh->bucket_bytes);
		sh->bmask = nb - 1;
		sh->bshift = (uint32_t)__builtin_ctz(m->nshards);
		if (!sh->slab || !sh->links || !sh->buckets)
			goto fail;
		cb_wheel_init(&sh->wheel, now_ns / m->cfg.tick_ns);
	}
	return m;
fail:
	cb_map_free(m);
	errno = ENOMEM;
	return NULL;
}

void cb_map_free(struct cb_map *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; m->shards && i < m->nshards; i++) {
		struct cb_shard *sh = &m->shards[i];

		if (sh->slab)
			munmap(sh->slab, sh->slab_bytes);
		if (sh->links)
			munmap(sh->links, sh->links_bytes);
		if (sh->buckets)
			munmap(sh->buckets, sh->bucket_bytes);
		pthread_mutex_destroy(&sh->lock);
	}
	free(m->shards);
	cb_comm_free(m->comms);
	cb_intern_free(m->netns);
	cb_intern_free(m->cgroups);
	free(m);
}

const struct cb_map_config *cb_map_config(const struct cb_map *m)
{
	return &m->cfg;
}

uint32_t cb_map_nshards(const struct cb_map *m)
{
	return m->nshards;
}

static void visit_reschedule(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			     void *ctx)
{
	(void)ctx;
	if (cb_wheel_linked(&sh->links[s - sh->slab]))
		__cb_session_schedule(m, sh, s);
}

void cb_map_set_timeouts(struct cb_map *m, uint64_t idle_ns, bool idle_basis_any,
			 uint64_t drain_timeout_ns, uint64_t linger_ns)
{
	bool earlier = idle_ns < atomic_load(&m->idle_ns) ||
		       linger_ns < atomic_load(&m->linger_ns) ||
		       idle_basis_any != atomic_load(&m->basis_any);
	struct cb_map_cursor cur = { 0 };

	atomic_store(&m->idle_ns, idle_ns);
	atomic_store(&m->basis_any, idle_basis_any);
	atomic_store(&m->drain_timeout_ns, drain_timeout_ns);
	atomic_store(&m->linger_ns, linger_ns);
	/* Longer timeouts need nothing: a session that comes due early is
	 * re-slotted lazily. Shorter ones would wait for the old deadlines,
	 * up to the wheel's horizon: move every wheel entry now, in the usual
	 * bounded chunks (a reload is rare, and not on any hot path). */
	if (earlier)
		while (!cb_map_cursor_done(m, &cur))
			cb_map_visit(m, &cur, visit_reschedule, NULL);
}

uint64_t cb_map_idle_ns(const struct cb_map *m)
{
	return atomic_load_explicit(&((struct cb_map *)m)->idle_ns, memory_order_relaxed);
}

bool cb_map_idle_basis_any(const struct cb_map *m)
{
	return atomic_load_explicit(&((struct cb_map *)m)->basis_any, memory_order_relaxed);
}

uint64_t cb_map_drain_timeout_ns(const struct cb_map *m)
{
	return atomic_load_explicit(&((struct cb_map *)m)->drain_timeout_ns, memory_order_relaxed);
}

struct cb_comm_table *cb_map_comms(struct cb_map *m)
{
	return m->comms;
}

struct cb_intern *cb_map_netns(struct cb_map *m)
{
	return m->netns;
}

struct cb_intern *cb_map_cgroups(struct cb_map *m)
{
	return m->cgroups;
}

uint32_t cb_session_netns(const struct cb_map *m, const struct cb_session *s)
{
	return (uint32_t)cb_intern_key(m->netns, s->netns_id);
}

uint64_t cb_session_cgroup(const struct cb_map *m, const struct cb_session *s)
{
	return cb_intern_key(m->cgroups, s->cgroup_id);
}

void __cb_session_set_netns(struct cb_map *m, struct cb_session *s, uint32_t inode)
{
	if (cb_intern_key(m->netns, s->netns_id) == inode)
		return;
	cb_intern_put(m->netns, s->netns_id);
	s->netns_id = cb_intern_get(m->netns, inode);
}

void __cb_session_set_cgroup(struct cb_map *m, struct cb_session *s, uint64_t id)
{
	if (cb_intern_key(m->cgroups, s->cgroup_id) == id)
		return;
	cb_intern_put(m->cgroups, s->cgroup_id);
	s->cgroup_id = cb_intern_get(m->cgroups, id);
}

uint64_t cb_map_live(const struct cb_map *m)
{
	return atomic_load_explicit(&((struct cb_map *)m)->live, memory_order_relaxed);
}

/* ---- one session -------------------------------------------------------------- */

struct cb_shard *cb_map_shard(struct cb_map *m, uint64_t cookie)
{
	return &m->shards[(cookie ^ cb_cookie_mix(cookie >> CB_COOKIE_BLOCK_BITS)) &
			  (m->nshards - 1)];
}

void cb_shard_lock(struct cb_shard *sh)
{
	pthread_mutex_lock(&sh->lock);
}

void cb_shard_unlock(struct cb_shard *sh)
{
	pthread_mutex_unlock(&sh->lock);
}

struct cb_state_stats *__cb_shard_stats(struct cb_shard *sh)
{
	return &sh->st;
}

static inline cb_sidx_t *bucket_of(struct cb_shard *sh, uint64_t cookie)
{
	return &sh->buckets[(cookie >> sh->bshift) & sh->bmask];
}

void cb_map_prefetch(struct cb_map *m, uint64_t cookie, int stage)
{
	struct cb_shard *sh = cb_map_shard(m, cookie);
	cb_sidx_t *b = bucket_of(sh, cookie);

	if (stage == 0) {
		__builtin_prefetch(b);
		return;
	}
	/* A racy peek (no lock): at worst it warms the wrong line. Indices
	 * are always within the slab, which never moves. */
	__builtin_prefetch(&sh->slab[__atomic_load_n(b, __ATOMIC_RELAXED)]);
}

struct cb_session *__cb_shard_lookup(struct cb_shard *sh, uint64_t cookie)
{
	for (cb_sidx_t i = *bucket_of(sh, cookie); i; i = sh->links[i].hnext)
		if (sh->slab[i].cookie == cookie)
			return &sh->slab[i];
	return NULL;
}

/*
 * At the cap, a CLOSED session is worth less than a new open one: it only
 * waits out its linger. CLOSED sessions sit in the wheel at close + linger
 * (a long --linger parks them in the farthest slot), so look through the
 * whole wheel of a shard — its 4096 slot heads are one sequential 16 KiB
 * read — but at most EVICT_SCAN entries, and only in a shard whose gauge
 * says it holds any. Bounded, so an insert stays O(1).
 */
#define EVICT_SCAN 256

static bool __shard_evict_closed(struct cb_map *m, struct cb_shard *sh)
{
	struct cb_wheel *w = &sh->wheel;
	uint64_t t = sh->closed_from > w->cursor ? sh->closed_from : w->cursor;
	uint32_t seen = 0;

	if (!cb_stat_get(&sh->st.live[CB_ST_CLOSED]))
		return false;
	/* Under churn at the cap every insert comes here: without the hint,
	 * each would first skip the empty slots between now and now + linger
	 * (~100 of them by default). */
	for (; t < w->cursor + CB_WHEEL_SLOTS && seen < EVICT_SCAN; t++) {
		cb_sidx_t idx = w->head[t % CB_WHEEL_SLOTS];

		for (; idx && seen < EVICT_SCAN; idx = sh->links[idx].wnext, seen++) {
			if (cb_session_state(&sh->slab[idx]) != CB_ST_CLOSED)
				continue;
			sh->closed_from = t;
			__cb_shard_remove(m, sh, &sh->slab[idx]);
			cb_stat_add(&sh->evicted, 1);
			cb_stat_add(&sh->evicted_early, 1);
			return true;
		}
		if (seen >= EVICT_SCAN)
			break; /* slot t may hold more: start there next time */
	}
	sh->closed_from = t;
	return false;
}

/* Link a session into the wheel at `tick`, keeping closed_from. */
static void link_at(struct cb_shard *sh, struct cb_session *s, cb_sidx_t idx, uint64_t tick)
{
	tick = __cb_wheel_link(&sh->wheel, sh->links, idx, tick);
	if (cb_session_state(s) == CB_ST_CLOSED && tick < sh->closed_from)
		sh->closed_from = tick;
}

/* The same in the other shards, which a caller holding its own shard's
 * lock may only try to lock (never wait: two inserts would deadlock). */
static bool __evict_closed_elsewhere(struct cb_map *m, struct cb_shard *mine)
{
	uint32_t start = (uint32_t)(mine - m->shards);

	for (uint32_t i = 1; i < m->nshards; i++) {
		struct cb_shard *sh = &m->shards[(start + i) & (m->nshards - 1)];
		bool done;

		if (!cb_stat_get(&sh->st.live[CB_ST_CLOSED]) || pthread_mutex_trylock(&sh->lock))
			continue;
		done = __shard_evict_closed(m, sh);
		pthread_mutex_unlock(&sh->lock);
		if (done)
			return true;
	}
	return false;
}

static bool __shard_reserve(struct cb_map *m, struct cb_shard *sh)
{
	if (atomic_fetch_add_explicit(&m->live, 1, memory_order_relaxed) < m->cfg.max_sessions)
		return true;
	atomic_fetch_sub_explicit(&m->live, 1, memory_order_relaxed);
	if (!__shard_evict_closed(m, sh) && !__evict_closed_elsewhere(m, sh))
		return false;
	return atomic_fetch_add_explicit(&m->live, 1, memory_order_relaxed) < m->cfg.max_sessions ||
	       (atomic_fetch_sub_explicit(&m->live, 1, memory_order_relaxed), false);
}

struct cb_session *__cb_shard_insert(struct cb_map *m, struct cb_shard *sh, uint64_t cookie)
{
	cb_sidx_t idx, *b;
	struct cb_session *s;

	if (!cookie)
		return NULL; /* 0 marks a free slab slot: the kernel never hands it out */
	if (!__shard_reserve(m, sh))
		return NULL;
	if (!sh->free_head && sh->hwm > sh->cap)
		__shard_evict_closed(m, sh); /* this shard's share is full: same remedy */
	if (sh->free_head) {
		idx = sh->free_head;
		sh->free_head = sh->links[idx].hnext;
	} else if (sh->hwm <= sh->cap) {
		idx = sh->hwm++;
	} else {
		/* this shard's share is exhausted (extreme imbalance) */
		atomic_fetch_sub_explicit(&m->live, 1, memory_order_relaxed);
		return NULL;
	}
	s = &sh->slab[idx];
	memset(s, 0, sizeof(*s));
	s->cookie = cookie;
	b = bucket_of(sh, cookie);
	sh->links[idx].hnext = *b;
	/* atomic only for cb_map_prefetch(), which peeks without the lock */
	__atomic_store_n(b, idx, __ATOMIC_RELAXED);
	cb_stat_add(&sh->opened, 1);
	cb_stat_add(&sh->unowned, 1); /* a new session has no owner yet */
	return s;
}

void __cb_session_set_owner(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			    uint32_t pid, const char *comm)
{
	if (!(s->flags & (CB_SF_OWNER_KNOWN | CB_SF_OWNER_SOUGHT)))
		cb_stat_add(&sh->unowned, (uint64_t)-1);
	if (s->pid != pid)
		s->comm_id = 0;
	s->pid = pid;
	s->flags |= CB_SF_OWNER_KNOWN;
	if (comm && comm[0])
		s->comm_id = cb_comm_intern(m->comms, comm);
}

void __cb_session_owner_sought(struct cb_shard *sh, struct cb_session *s)
{
	if (!(s->flags & (CB_SF_OWNER_KNOWN | CB_SF_OWNER_SOUGHT)))
		cb_stat_add(&sh->unowned, (uint64_t)-1);
	s->flags |= CB_SF_OWNER_SOUGHT;
}

uint64_t cb_map_unowned(const struct cb_map *m)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < m->nshards; i++)
		n += cb_stat_get(&m->shards[i].unowned);
	return n;
}

/* Recently refused cookies, direct-mapped: a refused connection's later
 * records (beats, state changes) try to create it again and must not be
 * counted again. Slots are written by whichever shard's holder refuses:
 * relaxed atomics, a lost race only costs a second count. */
static _Atomic uint64_t *refused_slot(struct cb_map *m, uint64_t cookie)
{
	return &m->refused_cache[(cb_cookie_mix(cookie) >> 20) % CB_REFUSED_CACHE];
}

bool __cb_map_refused_before(struct cb_map *m, uint64_t cookie)
{
	return atomic_load_explicit(refused_slot(m, cookie), memory_order_relaxed) == cookie;
}

void __cb_map_note_refused(struct cb_map *m, struct cb_shard *sh, uint64_t cookie)
{
	atomic_store_explicit(refused_slot(m, cookie), cookie, memory_order_relaxed);
	cb_stat_add(&sh->refused, 1);
}

void __cb_shard_remove(struct cb_map *m, struct cb_shard *sh, struct cb_session *s)
{
	cb_sidx_t idx = (cb_sidx_t)(s - sh->slab), *p = bucket_of(sh, s->cookie);

	while (*p != idx)
		p = &sh->links[*p].hnext;
	__atomic_store_n(p, sh->links[idx].hnext, __ATOMIC_RELAXED); /* see the insert */
	if (cb_wheel_linked(&sh->links[idx]))
		__cb_wheel_unlink(&sh->wheel, sh->links, idx);
	cb_state_leave(&sh->st, s);
	cb_intern_put(m->netns, s->netns_id);
	cb_intern_put(m->cgroups, s->cgroup_id);
	if (!(s->flags & (CB_SF_OWNER_KNOWN | CB_SF_OWNER_SOUGHT)))
		cb_stat_add(&sh->unowned, (uint64_t)-1);
	/* cookie 0: free, for dumps and lookups. Only the cookie: the insert
	 * that reuses the slot zeroes the rest, and writing the whole record
	 * here would fetch its cold lines just to clear them. */
	s->cookie = 0;
	sh->links[idx].hnext = sh->free_head;
	sh->free_head = idx;
	atomic_fetch_sub_explicit(&m->live, 1, memory_order_relaxed);
}

static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t cb_session_idle_ns(const struct cb_session *s, uint64_t now_ns, bool basis_any)
{
	uint64_t basis = basis_any ? s->last_seen_ns : s->last_data_ns;

	return now_ns > basis ? now_ns - basis : 0;
}

uint64_t cb_session_deadline(const struct cb_map *m, const struct cb_session *s)
{
	switch (cb_session_state(s)) {
	case CB_ST_ACTIVE:
		return sat_add(cb_map_idle_basis_any(m) ? s->last_seen_ns : s->last_data_ns,
			       cb_map_idle_ns(m));
	case CB_ST_CLOSED:
		return sat_add(s->last_seen_ns, atomic_load_explicit(&((struct cb_map *)m)->linger_ns,
								     memory_order_relaxed));
	default:
		return UINT64_MAX;
	}
}

void __cb_session_schedule(struct cb_map *m, struct cb_shard *sh, struct cb_session *s)
{
	cb_sidx_t idx = (cb_sidx_t)(s - sh->slab);
	uint64_t d = cb_session_deadline(m, s);

	/* O(1) either way; only state changes get here, never heartbeats */
	if (cb_wheel_linked(&sh->links[idx]))
		__cb_wheel_unlink(&sh->wheel, sh->links, idx);
	if (d != UINT64_MAX)
		link_at(sh, s, idx, d / m->cfg.tick_ns + !!(d % m->cfg.tick_ns));
}

bool __cb_session_transition(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			     unsigned int from, unsigned int to)
{
	if (!cb_state_transition(&sh->st, s, from, to))
		return false;
	__cb_session_schedule(m, sh, s);
	return true;
}

/* ---- ticks -------------------------------------------------------------------- */

static void note_hold(struct cb_shard *sh, uint64_t t0)
{
	uint64_t held = mono_ns() - t0;

	if (held > cb_stat_get(&sh->max_hold_ns))
		atomic_store_explicit(&sh->max_hold_ns, held, memory_order_relaxed);
}

/* One shard's due work, bounded; true if it stopped with due work left. */
static bool shard_tick(struct cb_map *m, struct cb_shard *sh, uint64_t now_ns)
{
	uint64_t now_tick = now_ns / m->cfg.tick_ns, t0, reslotted = 0;
	uint32_t visited = 0;
	bool more = false;

	cb_shard_lock(sh);
	t0 = mono_ns();
	for (;;) {
		cb_sidx_t idx;
		struct cb_session *s;
		uint64_t d;

		if (visited >= m->cfg.tick_budget ||
		    (!(visited & 15) && visited && mono_ns() - t0 > m->cfg.tick_max_ns)) {
			more = sh->wheel.cursor <= now_tick;
			break;
		}
		idx = __cb_wheel_pop_due(&sh->wheel, sh->links, now_tick);
		if (!idx)
			break;
		visited++;
		s = &sh->slab[idx];
		d = cb_session_deadline(m, s);
		if (d == UINT64_MAX)
			continue; /* not a wheel state any more: already unlinked */
		if (d > now_ns) { /* lazily re-slotted: a heartbeat moved it */
			link_at(sh, s, idx, d / m->cfg.tick_ns + !!(d % m->cfg.tick_ns));
			reslotted++;
		} else if (cb_session_state(s) == CB_ST_ACTIVE) {
			cb_state_transition(&sh->st, s, CB_ST_ACTIVE, CB_ST_STALE);
		} else {
			__cb_shard_remove(m, sh, s); /* CLOSED past its linger */
			cb_stat_add(&sh->evicted, 1);
		}
	}
	cb_stat_add(&sh->tick_visited, visited);
	cb_stat_add(&sh->tick_reslotted, reslotted);
	if (more)
		cb_stat_add(&sh->tick_budget_hits, 1);
	note_hold(sh, t0);
	cb_shard_unlock(sh);
	return more;
}

bool cb_map_tick(struct cb_map *m, uint64_t now_ns)
{
	bool more = false;

	for (uint32_t i = 0; i < m->nshards; i++)
		more |= shard_tick(m, &m->shards[i], now_ns);
	return more;
}

/* ---- walks -------------------------------------------------------------------- */

size_t cb_map_dump(struct cb_map *m, struct cb_map_cursor *cur, cb_session_pred pred, void *ctx,
		   struct cb_session *out, size_t max)
{
	size_t n = 0;

	while (n < max && cur->shard < m->nshards) {
		struct cb_shard *sh = &m->shards[cur->shard];
		uint32_t scanned = 0, copied = 0;
		bool shard_done;
		uint64_t t0;

		if (!cur->index)
			cur->index = 1;
		cb_shard_lock(sh);
		t0 = mono_ns();
		while (cur->index < sh->hwm && scanned < CB_MAP_SCAN_MAX && copied < CB_MAP_CHUNK &&
		       n < max) {
			const struct cb_session *s = &sh->slab[cur->index++];

			scanned++;
			if (!s->cookie || (pred && !pred(s, ctx)))
				continue;
			memcpy(&out[n++], s, sizeof(*s));
			copied++;
		}
		shard_done = cur->index >= sh->hwm;
		note_hold(sh, t0);
		cb_shard_unlock(sh);
		if (shard_done) {
			cur->shard++;
			cur->index = 0;
		}
		if (copied)
			break; /* let the caller write before taking the next lock */
	}
	return n;
}

size_t cb_map_visit(struct cb_map *m, struct cb_map_cursor *cur, cb_session_visit fn, void *ctx)
{
	size_t visited = 0;
	struct cb_shard *sh;
	uint64_t t0;

	if (cur->shard >= m->nshards)
		return 0;
	sh = &m->shards[cur->shard];
	if (!cur->index)
		cur->index = 1;
	cb_shard_lock(sh);
	t0 = mono_ns();
	for (uint32_t scanned = 0; cur->index < sh->hwm && scanned < CB_MAP_SCAN_MAX; scanned++) {
		struct cb_session *s = &sh->slab[cur->index++];

		if (!s->cookie)
			continue;
		fn(m, sh, s, ctx);
		visited++;
	}
	if (cur->index >= sh->hwm) {
		cur->shard++;
		cur->index = 0;
	}
	note_hold(sh, t0);
	cb_shard_unlock(sh);
	return visited;
}

struct drain_ctx {
	cb_session_pred pred;
	void *ctx;
	uint64_t marked;
};

static void drain_one(struct cb_map *m, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	struct drain_ctx *d = ctx;
	unsigned int st = cb_session_state(s);

	if ((st != CB_ST_ACTIVE && st != CB_ST_STALE) || (d->pred && !d->pred(s, d->ctx)))
		return;
	if (__cb_session_transition(m, sh, s, st, CB_ST_DRAINING)) {
		s->flags |= CB_SF_OPERATOR_DRAIN;
		d->marked++;
	}
}

uint64_t cb_map_drain(struct cb_map *m, cb_session_pred pred, void *ctx)
{
	struct drain_ctx d = { .pred = pred, .ctx = ctx };
	struct cb_map_cursor cur = { 0 };

	while (!cb_map_cursor_done(m, &cur))
		cb_map_visit(m, &cur, drain_one, &d);
	return d.marked;
}

void cb_map_stats(const struct cb_map *m, struct cb_map_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < m->nshards; i++) {
		struct cb_shard *sh = &m->shards[i];

		for (int a = 0; a < CB_ST_COUNT; a++) {
			out->live[a] += cb_stat_get(&sh->st.live[a]);
			for (int b = 0; b < CB_ST_COUNT; b++)
				out->transitions[a][b] += cb_stat_get(&sh->st.transitions[a][b]);
		}
		out->illegal += cb_stat_get(&sh->st.illegal);
		out->opened += cb_stat_get(&sh->opened);
		out->evicted += cb_stat_get(&sh->evicted);
		out->evicted_early += cb_stat_get(&sh->evicted_early);
		out->refused += cb_stat_get(&sh->refused);
		out->unowned += cb_stat_get(&sh->unowned);
		out->reopened += cb_stat_get(&sh->reopened);
		out->tick_visited += cb_stat_get(&sh->tick_visited);
		out->tick_reslotted += cb_stat_get(&sh->tick_reslotted);
		out->tick_budget_hits += cb_stat_get(&sh->tick_budget_hits);
		if (cb_stat_get(&sh->max_hold_ns) > out->max_lock_hold_ns)
			out->max_lock_hold_ns = cb_stat_get(&sh->max_hold_ns);
	}
}

void __cb_shard_unowned_add(struct cb_shard *sh, int64_t n)
{
	cb_stat_add(&sh->unowned, (uint64_t)n);
}

void __cb_shard_count_reopen(struct cb_shard *sh)
{
	cb_stat_add(&sh->reopened, 1);
}
