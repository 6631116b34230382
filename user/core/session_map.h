/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * session_map.h — the sharded session map: every live connection's record,
 * keyed by socket cookie, with a timing wheel per shard.
 *
 * Contract:
 *  - A power-of-two number of shards; shard = the cookie's low bits XOR a
 *    mixed hash of its 4096-block, bucket = the bits above the shard's.
 *    Each shard has its own lock, hash index, slab of records, wheel and
 *    counters. There is no global lock; the only shared write is a relaxed
 *    atomic count of live sessions, touched on insert and eviction only.
 *  - Insert, lookup, update and eviction are O(1). The table is sized once
 *    from max_sessions and never rehashes. At max_sessions, a CLOSED
 *    session (waiting out its linger) makes room for a new one; with none
 *    at hand, inserts are refused and counted.
 *  - A heartbeat writes times and counters only; the wheel is touched when
 *    a deadline must move *earlier* (a close) or a session re-enters it
 *    (STALE → ACTIVE). When a slot comes due each session there is looked at
 *    again: still idle → STALE, CLOSED past linger → evicted, otherwise it
 *    is re-slotted at its real deadline (lazily).
 *  - Background work is bounded: a tick handles at most `tick_budget`
 *    entries per shard per call and checks the clock every 16 entries; a
 *    dump or visit copies / visits at most a chunk per lock hold. Callers
 *    simply call again while there is more (cb_map_tick() says so).
 *  - Functions named __cb_* require the shard lock (cb_shard_lock()).
 *  - Times are CLOCK_MONOTONIC ns, passed in (an injected clock for tests).
 */
#ifndef CONNBEAT_SESSION_MAP_H
#define CONNBEAT_SESSION_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/comm.h"
#include "core/intern.h"
#include "core/session.h"
#include "core/state.h"

/* splitmix64's finalizer, for cookie-keyed tables that want consecutive
 * cookies scattered (reconcile.c, the refused cache, the benchmarks'
 * baselines). The session map mixes only a cookie's block number and keeps
 * consecutive cookies in consecutive buckets (session_map.c says why). */
static inline uint64_t cb_cookie_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* Default time budget of one cb_map_tick() call, all shards together. */
#define CB_TICK_CALL_NS 400000ull

struct cb_map_config {
	uint64_t max_sessions;
	uint32_t shards;       /* power of two; 0: from the number of CPUs */
	uint64_t tick_ns;      /* wheel slot width */
	uint64_t idle_ns;      /* ACTIVE → STALE */
	bool idle_basis_any;   /* judge idleness on last_seen instead of last_data */
	uint64_t drain_timeout_ns; /* DRAINING silent this long counts as stale */
	uint64_t linger_ns;    /* CLOSED kept this long */
	uint32_t tick_budget;  /* entries per shard per tick call; 0: 512 */
	uint64_t tick_max_ns;  /* time bound per shard per tick call; 0: CB_TICK_CALL_NS
				* shared by the shards (at least 20 µs each) */
};

/* Counters of the whole map (summed over shards on demand). */
struct cb_map_stats {
	uint64_t live[CB_ST_COUNT];
	uint64_t transitions[CB_ST_COUNT][CB_ST_COUNT];
	uint64_t illegal;
	uint64_t opened;    /* sessions created */
	uint64_t evicted;   /* CLOSED sessions freed after linger */
	uint64_t evicted_early; /* ... of which freed before it, to make room at the cap */
	uint64_t refused;   /* inserts refused at max_sessions */
	uint64_t unowned;   /* sessions with no owner known and none sought yet */
	uint64_t reopened;  /* an OPEN for a CLOSED session (reconnect on the same socket) */
	uint64_t tick_visited;     /* wheel entries looked at */
	uint64_t tick_reslotted;   /* ... of which not due yet: re-slotted */
	uint64_t tick_budget_hits; /* tick calls that stopped on their budget */
	uint64_t max_lock_hold_ns; /* longest shard-lock hold in ticks, dumps, visits */
};

struct cb_map;
struct cb_shard;

/* NULL with errno (EINVAL: bad config, ENOMEM). */
struct cb_map *cb_map_new(const struct cb_map_config *cfg, uint64_t now_ns);
void cb_map_free(struct cb_map *m);

/* The configuration in force (shards resolved). */
const struct cb_map_config *cb_map_config(const struct cb_map *m);
/* Change the timeouts at run time (SIGHUP). Longer timeouts take effect at
 * once (lazy re-slotting); when one gets shorter, every wheel entry is
 * re-slotted at its new deadline by a chunked walk of the map. */
void cb_map_set_timeouts(struct cb_map *m, uint64_t idle_ns, bool idle_basis_any,
			 uint64_t drain_timeout_ns, uint64_t linger_ns);
uint64_t cb_map_idle_ns(const struct cb_map *m);
bool cb_map_idle_basis_any(const struct cb_map *m);
uint64_t cb_map_drain_timeout_ns(const struct cb_map *m);

struct cb_comm_table *cb_map_comms(struct cb_map *m);
/* The map's interned network namespaces and cgroups (cb_session.netns_id,
 * cgroup_id): a session holds a reference to each of its ids, dropped when
 * it leaves the map (__cb_shard_remove) or gets a new life. */
struct cb_intern *cb_map_netns(struct cb_map *m);
struct cb_intern *cb_map_cgroups(struct cb_map *m);
/* The netns inode and cgroup id of a session (0 when unknown). */
uint32_t cb_session_netns(const struct cb_map *m, const struct cb_session *s);
uint64_t cb_session_cgroup(const struct cb_map *m, const struct cb_session *s);
/* Set them, moving the session's references. Under the shard lock. */
void __cb_session_set_netns(struct cb_map *m, struct cb_session *s, uint32_t inode);
void __cb_session_set_cgroup(struct cb_map *m, struct cb_session *s, uint64_t id);
uint64_t cb_map_live(const struct cb_map *m);
void cb_map_stats(const struct cb_map *m, struct cb_map_stats *out);

/* ---- one session, under its shard's lock ---------------------------------- */

struct cb_shard *cb_map_shard(struct cb_map *m, uint64_t cookie);
void cb_shard_lock(struct cb_shard *sh);
void cb_shard_unlock(struct cb_shard *sh);
struct cb_state_stats *__cb_shard_stats(struct cb_shard *sh);

struct cb_session *__cb_shard_lookup(struct cb_shard *sh, uint64_t cookie);
/* A new zeroed record with `cookie` set, in the hash but not yet in any
 * state or in the wheel (call cb_state_enter() and __cb_session_schedule()).
 * At max_sessions a CLOSED session of this shard due soonest is evicted
 * early to make room (bounded search); NULL when there is none (counted as
 * refused). */
struct cb_session *__cb_shard_insert(struct cb_map *m, struct cb_shard *sh, uint64_t cookie);
/* Give a session its owner (pid, and comm when not NULL or empty), keeping
 * the unowned gauge. Under the shard lock. */
void __cb_session_set_owner(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			    uint32_t pid, const char *comm);
/* An owners pass found nobody holding it: it keeps its last known owner (if
 * any) and leaves the unowned gauge. */
void __cb_session_owner_sought(struct cb_shard *sh, struct cb_session *s);
/* Sessions that have no owner and have not been sought (cheap: a sum of
 * per-shard gauges). */
uint64_t cb_map_unowned(const struct cb_map *m);

/* A refused insert: count it once per cookie (apply.h). */
bool __cb_map_refused_before(struct cb_map *m, uint64_t cookie);
void __cb_map_note_refused(struct cb_map *m, struct cb_shard *sh, uint64_t cookie);

/* Remove from hash and wheel, leave the state gauges, drop its interned
 * references, free. */
void __cb_shard_remove(struct cb_map *m, struct cb_shard *sh, struct cb_session *s);

/* Adjust the unowned gauge (apply.c's reopen). */
void __cb_shard_unowned_add(struct cb_shard *sh, int64_t n);

/* Count an OPEN that gave a CLOSED session a new life (apply.c). */
void __cb_shard_count_reopen(struct cb_shard *sh);

/* The time an ACTIVE or CLOSED session comes due; UINT64_MAX for the
 * states that are not in the wheel (STALE, DRAINING). */
uint64_t cb_session_deadline(const struct cb_map *m, const struct cb_session *s);
/* Put a session where its state says it belongs: ACTIVE/CLOSED at their
 * deadline (moved earlier if needed, left alone if later: lazy), others
 * out of the wheel. Call after every state change. */
void __cb_session_schedule(struct cb_map *m, struct cb_shard *sh, struct cb_session *s);
/* Move a session to `to` (state.h rules) and reschedule it. */
bool __cb_session_transition(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			     unsigned int from, unsigned int to);

/* Warm the caches for an upsert of `cookie` a little later: stage 0
 * fetches its hash bucket, stage 1 (some records later, once the bucket
 * is in cache) the first record of its chain. A hint only: no lock, no
 * effect on the map. The two dependent cache misses of a lookup in a map
 * of millions then overlap across a batch (apply.h: cb_apply_batch). */
void cb_map_prefetch(struct cb_map *m, uint64_t cookie, int stage);

/* Idleness of a session at `now` on the map's basis (or `basis_any`). */
uint64_t cb_session_idle_ns(const struct cb_session *s, uint64_t now_ns, bool basis_any);

/* ---- the wheel ---------------------------------------------------------------- */

/* One bounded pass over every shard: each handles what is due at now_ns,
 * up to its budget. Returns true when some shard left due work behind (call
 * again soon). */
bool cb_map_tick(struct cb_map *m, uint64_t now_ns);

/* ---- walking the map in bounded chunks ------------------------------------------ */

/* Where a dump or visit stands: shard, then slab index. Zero = the start. */
struct cb_map_cursor {
	uint32_t shard;
	uint32_t index;
};

static inline bool cb_map_cursor_done(const struct cb_map *m, const struct cb_map_cursor *c);

/* Predicate run under the shard lock, before anything is copied. */
typedef bool (*cb_session_pred)(const struct cb_session *s, void *ctx);

#define CB_MAP_CHUNK 256     /* records copied per lock hold */
#define CB_MAP_SCAN_MAX 4096 /* slab slots scanned per lock hold */

/*
 * Copy up to `max` sessions matching `pred` (NULL: all) from the cursor on
 * into out[], holding one shard lock at a time for at most CB_MAP_SCAN_MAX
 * slots and CB_MAP_CHUNK copies. Returns how many were copied (0 with the
 * cursor done at the end). Guarantees (redis dictScan-like, but stronger,
 * since records never move): a session is reported at most once per walk;
 * every session that exists for the whole walk is reported.
 */
size_t cb_map_dump(struct cb_map *m, struct cb_map_cursor *cur, cb_session_pred pred, void *ctx,
		   struct cb_session *out, size_t max);

/* Visit sessions under their shard lock, at most CB_MAP_SCAN_MAX slots per
 * call; fn may change or remove the session (via __cb_* helpers). Returns
 * how many were visited; the cursor says when the walk is done. */
typedef void (*cb_session_visit)(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
				 void *ctx);
size_t cb_map_visit(struct cb_map *m, struct cb_map_cursor *cur, cb_session_visit fn, void *ctx);

/* Mark matching ACTIVE/STALE sessions DRAINING (operator drain), walking
 * the whole map in bounded chunks. Returns how many were marked. */
uint64_t cb_map_drain(struct cb_map *m, cb_session_pred pred, void *ctx);

uint32_t cb_map_nshards(const struct cb_map *m);

static inline bool cb_map_cursor_done(const struct cb_map *m, const struct cb_map_cursor *c)
{
	return c->shard >= cb_map_nshards(m);
}

#endif /* CONNBEAT_SESSION_MAP_H */
