// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* state.c — see state.h. */
#include "core/state.h"

static const bool legal[CB_ST_COUNT][CB_ST_COUNT] = {
	[CB_ST_ACTIVE] = { [CB_ST_STALE] = true, [CB_ST_DRAINING] = true, [CB_ST_CLOSED] = true },
	[CB_ST_STALE] = { [CB_ST_ACTIVE] = true, [CB_ST_DRAINING] = true, [CB_ST_CLOSED] = true },
	[CB_ST_DRAINING] = { [CB_ST_CLOSED] = true },
	[CB_ST_CLOSED] = { 0 },
};

bool cb_state_legal(unsigned int from, unsigned int to)
{
	return from < CB_ST_COUNT && to < CB_ST_COUNT && legal[from][to];
}

bool cb_state_transition(struct cb_state_stats *st, struct cb_session *s, unsigned int from,
			 unsigned int to)
{
	uint8_t expected = (uint8_t)from;

	if (!cb_state_legal(from, to) ||
	    !atomic_compare_exchange_strong_explicit(&s->state, &expected, (uint8_t)to,
						     memory_order_acq_rel, memory_order_relaxed)) {
		cb_stat_add(&st->illegal, 1);
		return false;
	}
	cb_stat_add(&st->transitions[from][to], 1);
	cb_stat_add(&st->live[from], (uint64_t)-1);
	cb_stat_add(&st->live[to], 1);
	return true;
}

void cb_state_enter(struct cb_state_stats *st, struct cb_session *s, unsigned int state)
{
	atomic_store_explicit(&s->state, (uint8_t)state, memory_order_relaxed);
	cb_stat_add(&st->live[state], 1);
}

void cb_state_leave(struct cb_state_stats *st, const struct cb_session *s)
{
	cb_stat_add(&st->live[cb_session_state(s)], (uint64_t)-1);
}
