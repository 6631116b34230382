// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for the drain-state machine (state.h): every legal and every
 * illegal transition, the CAS race rule, the gauges and counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/state.h"

static const bool want_legal[CB_ST_COUNT][CB_ST_COUNT] = {
	[CB_ST_ACTIVE] = { [CB_ST_STALE] = 1, [CB_ST_DRAINING] = 1, [CB_ST_CLOSED] = 1 },
	[CB_ST_STALE] = { [CB_ST_ACTIVE] = 1, [CB_ST_DRAINING] = 1, [CB_ST_CLOSED] = 1 },
	[CB_ST_DRAINING] = { [CB_ST_CLOSED] = 1 },
};

static void test_every_pair(void **state)
{
	for (unsigned int from = 0; from < CB_ST_COUNT; from++) {
		for (unsigned int to = 0; to < CB_ST_COUNT; to++) {
			struct cb_state_stats st;
			struct cb_session s;
			bool ok;

			memset(&st, 0, sizeof(st));
			memset(&s, 0, sizeof(s));
			cb_state_enter(&st, &s, from);
			ok = cb_state_transition(&st, &s, from, to);
			assert_int_equal(ok, want_legal[from][to]);
			assert_int_equal(cb_state_legal(from, to), want_legal[from][to]);
			if (ok) {
				assert_int_equal(cb_session_state(&s), to);
				assert_int_equal(cb_stat_get(&st.transitions[from][to]), 1);
				assert_int_equal(cb_stat_get(&st.live[from]), from == to ? 1 : 0);
				assert_int_equal(cb_stat_get(&st.live[to]), 1);
				assert_int_equal(cb_stat_get(&st.illegal), 0);
			} else {
				/* refused: nothing moved, counted as illegal */
				assert_int_equal(cb_session_state(&s), from);
				assert_int_equal(cb_stat_get(&st.transitions[from][to]), 0);
				assert_int_equal(cb_stat_get(&st.live[from]), 1);
				assert_int_equal(cb_stat_get(&st.illegal), 1);
			}
		}
	}
}

static void test_cas_loser(void **state)
{
	struct cb_state_stats st;
	struct cb_session s;

	memset(&st, 0, sizeof(st));
	memset(&s, 0, sizeof(s));
	cb_state_enter(&st, &s, CB_ST_ACTIVE);
	/* the tick wins: ACTIVE -> STALE */
	assert_true(cb_state_transition(&st, &s, CB_ST_ACTIVE, CB_ST_STALE));
	/* ingest still believes ACTIVE and wants DRAINING: its CAS fails */
	assert_false(cb_state_transition(&st, &s, CB_ST_ACTIVE, CB_ST_DRAINING));
	assert_int_equal(cb_session_state(&s), CB_ST_STALE);
	assert_int_equal(cb_stat_get(&st.illegal), 1);
	/* with the state it actually sees, it succeeds */
	assert_true(cb_state_transition(&st, &s, CB_ST_STALE, CB_ST_DRAINING));
	assert_true(cb_state_transition(&st, &s, CB_ST_DRAINING, CB_ST_CLOSED));
	assert_false(cb_state_transition(&st, &s, CB_ST_CLOSED, CB_ST_ACTIVE));
	assert_int_equal(cb_stat_get(&st.live[CB_ST_CLOSED]), 1);
	assert_int_equal(cb_stat_get(&st.live[CB_ST_ACTIVE]) + cb_stat_get(&st.live[CB_ST_STALE]) +
				 cb_stat_get(&st.live[CB_ST_DRAINING]),
			 0);
	cb_state_leave(&st, &s);
	assert_int_equal(cb_stat_get(&st.live[CB_ST_CLOSED]), 0);
	/* out-of-range states are never legal */
	assert_false(cb_state_legal(CB_ST_COUNT, CB_ST_ACTIVE));
	assert_false(cb_state_legal(CB_ST_ACTIVE, 9));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_cas_loser),
	};

	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
