/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * state.h — the drain-state machine of design.md §3.
 *
 *   ACTIVE ──idle ≥ threshold──► STALE ──heartbeat──► ACTIVE
 *   ACTIVE|STALE ──FIN seen / operator drain──► DRAINING
 *   ACTIVE|STALE|DRAINING ──TCP_CLOSE / destroy──► CLOSED ──linger──► (evicted)
 *
 * A transition is one atomic compare-and-swap on cb_session.state, so two
 * parties racing to move the same session (an ingest update and a wheel
 * tick) cannot both win: the loser's CAS fails and it is counted as
 * illegal. Anything not in the table above is refused and counted too.
 * Every successful transition updates the per-state live gauges and the
 * (from, to) counter — gauges are kept, never recomputed by scanning.
 *
 * Counters live in struct cb_state_stats, one per shard; they are written
 * only under the shard lock (one writer) and read by scrapes without it, so
 * they are relaxed atomics: the scrape sees each value whole, possibly a
 * moment old.
 */
#ifndef CONNBEAT_STATE_H
#define CONNBEAT_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/session.h"

struct cb_state_stats {
	_Atomic uint64_t live[CB_ST_COUNT];
	_Atomic uint64_t transitions[CB_ST_COUNT][CB_ST_COUNT];
	_Atomic uint64_t illegal;
};

/* Is from → to in the table? (CLOSED → evicted is not a state change:
 * see cb_state_evicted().) */
bool cb_state_legal(unsigned int from, unsigned int to);

/* CAS s->state from → to and count it. False (and counted as illegal) when
 * the transition is not legal or the session is not in `from` any more. */
bool cb_state_transition(struct cb_state_stats *st, struct cb_session *s, unsigned int from,
			 unsigned int to);

/* A new session enters `state` (normally ACTIVE). */
void cb_state_enter(struct cb_state_stats *st, struct cb_session *s, unsigned int state);
/* A session leaves the map (eviction from CLOSED, or a reset of its life). */
void cb_state_leave(struct cb_state_stats *st, const struct cb_session *s);

/* Relaxed add for a counter that has one writer (the shard lock holder). */
static inline void cb_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t cb_stat_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static inline unsigned int cb_session_state(const struct cb_session *s)
{
	return atomic_load_explicit(&((struct cb_session *)s)->state, memory_order_relaxed);
}

#endif /* CONNBEAT_STATE_H */
