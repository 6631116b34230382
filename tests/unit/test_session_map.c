// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the session map, its wheel and the record upsert
 * (session_map.h, wheel.h, apply.h, comm.h), all against an injected clock:
 * time is whatever the test says it is.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/apply.h"
#include "core/comm.h"
#include "core/session_map.h"
#include "core/wheel.h"

#define MS 1000000ULL
#define S 1000000000ULL
#define T0 (1000 * S) /* the clock starts here */

static struct cb_map *mk_map(uint64_t max, uint64_t idle, uint64_t linger, uint32_t budget)
{
	struct cb_map_config c = {
		.max_sessions = max,
		.shards = 4,
		.tick_ns = 100 * MS,
		.idle_ns = idle,
		.drain_timeout_ns = 30 * S,
		.linger_ns = linger,
		.tick_budget = budget,
		.tick_max_ns = 1000 * S, /* no time bound in tests: budgets only */
	};
	struct cb_map *m = cb_map_new(&c, T0);

	assert_non_null(m);
	return m;
}

static struct cb_record rec(uint8_t kind, uint64_t cookie, uint64_t ts, uint8_t old_state,
			    uint8_t new_state)
{
	struct cb_record r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.version = CB_ABI_VERSION;
	r.size = sizeof(r);
	r.cookie = cookie;
	r.ts_ns = ts;
	r.old_state = old_state;
	r.new_state = new_state;
	r.tuple.family = 4;
	r.tuple.saddr[0] = 127;
	r.tuple.saddr[3] = 1;
	r.tuple.daddr[0] = 127;
	r.tuple.daddr[3] = 1;
	r.tuple.sport = (uint16_t)(10000 + cookie % 50000);
	r.tuple.dport = 80;
	r.tuple.netns = 4026531840u;
	return r;
}

static void open_at(struct cb_map *m, uint64_t cookie, uint64_t ts)
{
	struct cb_record r = rec(CB_REC_OPEN, cookie, ts, CB_TCP_CLOSE, CB_TCP_SYN_SENT);

	assert_int_equal(cb_apply_record(m, &r, ts), CB_APPLY_INSERTED);
	r = rec(CB_REC_STATE, cookie, ts, CB_TCP_SYN_SENT, CB_TCP_ESTABLISHED);
	assert_int_equal(cb_apply_record(m, &r, ts), CB_APPLY_UPDATED);
}

static void data_beat(struct cb_map *m, uint64_t cookie, uint64_t ts, uint64_t tx)
{
	struct cb_record r = rec(CB_REC_BEAT, cookie, ts, CB_TCP_ESTABLISHED, CB_TCP_ESTABLISHED);

	r.flags = CB_RF_DATA | CB_RF_COUNTERS;
	r.ctr.last_data_ns = r.ctr.last_seen_ns = ts;
	r.ctr.bytes_acked = tx;
	cb_apply_record(m, &r, ts);
}

/* A copy of one session (or cookie 0 when absent). */
static struct cb_session get(struct cb_map *m, uint64_t cookie)
{
	struct cb_shard *sh = cb_map_shard(m, cookie);
	struct cb_session out, *s;

	memset(&out, 0, sizeof(out));
	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, cookie);
	if (s)
		memcpy(&out, s, sizeof(out));
	cb_shard_unlock(sh);
	return out;
}

static unsigned int state_of(struct cb_map *m, uint64_t cookie)
{
	struct cb_session s = get(m, cookie);

	return s.cookie ? cb_session_state(&s) : CB_ST_COUNT; /* COUNT: gone */
}

/* Tick until no shard reports leftover work. */
static void tick_all(struct cb_map *m, uint64_t now)
{
	for (int i = 0; i < 100000 && cb_map_tick(m, now); i++)
		;
}

static void test_idle_to_stale_and_back(void **state)
{
	struct cb_map *m = mk_map(1000, 5 * S, 10 * S, 512);

	open_at(m, 1, T0);
	tick_all(m, T0 + 4900 * MS);
	assert_int_equal(state_of(m, 1), CB_ST_ACTIVE);
	tick_all(m, T0 + 5100 * MS);
	assert_int_equal(state_of(m, 1), CB_ST_STALE);
	/* a beat without data does not revive it on the data basis */
	{
		struct cb_record r = rec(CB_REC_BEAT, 1, T0 + 6 * S, 1, 1);

		r.ctr.last_seen_ns = T0 + 6 * S;
		cb_apply_record(m, &r, T0 + 6 * S);
	}
	assert_int_equal(state_of(m, 1), CB_ST_STALE);
	data_beat(m, 1, T0 + 7 * S, 100);
	assert_int_equal(state_of(m, 1), CB_ST_ACTIVE);
	/* back in the wheel: stale again 5 s after that data */
	tick_all(m, T0 + 11900 * MS);
	assert_int_equal(state_of(m, 1), CB_ST_ACTIVE);
	tick_all(m, T0 + 12100 * MS);
	assert_int_equal(state_of(m, 1), CB_ST_STALE);
	cb_map_free(m);
}

static void test_heartbeat_just_before_expiry(void **state)
{
	struct cb_map *m = mk_map(1000, 5 * S, 10 * S, 512);
	struct cb_map_stats st;

	open_at(m, 7, T0);
	data_beat(m, 7, T0 + 4999 * MS, 1);
	tick_all(m, T0 + 5200 * MS); /* its old slot comes due: re-slotted, not staled */
	assert_int_equal(state_of(m, 7), CB_ST_ACTIVE);
	cb_map_stats(m, &st);
	assert_true(st.tick_reslotted >= 1);
	assert_int_equal(st.transitions[CB_ST_ACTIVE][CB_ST_STALE], 0);
	tick_all(m, T0 + 10100 * MS);
	assert_int_equal(state_of(m, 7), CB_ST_STALE);
	cb_map_free(m);
}

static void test_timeout_beyond_horizon(void **state)
{
	/* 2 h idle: far beyond 4096 slots × 100 ms */
	struct cb_map *m = mk_map(1000, 7200 * S, 10 * S, 512);
	struct cb_map_stats st;

	open_at(m, 3, T0);
	for (uint64_t t = T0; t < T0 + 7199 * S; t += 60 * S)
		tick_all(m, t);
	assert_int_equal(state_of(m, 3), CB_ST_ACTIVE);
	cb_map_stats(m, &st);
	/* parked and re-slotted a handful of times, not every tick */
	assert_true(st.tick_reslotted >= 10 && st.tick_reslotted <= 40);
	tick_all(m, T0 + 7200 * S + 200 * MS);
	assert_int_equal(state_of(m, 3), CB_ST_STALE);
	cb_map_free(m);
}

static void test_clock_backwards_and_jump(void **state)
{
	struct cb_map *m = mk_map(1000, 5 * S, 10 * S, 512);

	open_at(m, 11, T0);
	tick_all(m, T0 + 1 * S);
	tick_all(m, T0 - 100 * S); /* backwards: nothing happens, nothing breaks */
	assert_int_equal(state_of(m, 11), CB_ST_ACTIVE);
	tick_all(m, T0 + 2 * S);
	assert_int_equal(state_of(m, 11), CB_ST_ACTIVE);
	/* a jump of a day: due at once */
	tick_all(m, T0 + 86400 * S);
	assert_int_equal(state_of(m, 11), CB_ST_STALE);
	/* and a new session after the jump behaves normally */
	open_at(m, 12, T0 + 86400 * S);
	tick_all(m, T0 + 86404 * S);
	assert_int_equal(state_of(m, 12), CB_ST_ACTIVE);
	tick_all(m, T0 + 86406 * S);
	assert_int_equal(state_of(m, 12), CB_ST_STALE);
	cb_map_free(m);
}

static void test_budget_carry_over(void **state)
{
	struct cb_map *m = mk_map(100000, 5 * S, 10 * S, 8); /* 8 per shard per call */
	struct cb_map_stats st;
	int calls = 0;

	for (uint64_t c = 1; c <= 1000; c++)
		open_at(m, c, T0);
	/* one call handles at most 4 shards × 8 */
	assert_true(cb_map_tick(m, T0 + 6 * S));
	cb_map_stats(m, &st);
	assert_int_equal(st.live[CB_ST_STALE], 32);
	assert_true(st.tick_budget_hits >= 4);
	while (cb_map_tick(m, T0 + 6 * S))
		calls++;
	cb_map_stats(m, &st);
	assert_int_equal(st.live[CB_ST_STALE], 1000); /* all carried over, none lost */
	assert_int_equal(st.live[CB_ST_ACTIVE], 0);
	assert_true(calls >= 1000 / 32 - 2);
	cb_map_free(m);
}

static void test_close_linger_evict(void **state)
{
	struct cb_map *m = mk_map(1000, 60 * S, 10 * S, 512);
	struct cb_record r;
	struct cb_map_stats st;

	open_at(m, 5, T0);
	r = rec(CB_REC_STATE, 5, T0 + S, CB_TCP_ESTABLISHED, CB_TCP_FIN_WAIT1);
	cb_apply_record(m, &r, T0 + S);
	assert_int_equal(state_of(m, 5), CB_ST_DRAINING);
	r = rec(CB_REC_CLOSE, 5, T0 + 2 * S, CB_TCP_FIN_WAIT2, CB_TCP_CLOSE);
	r.flags = CB_RF_COUNTERS;
	r.ctr.bytes_acked = 4242;
	assert_int_equal(cb_apply_record(m, &r, T0 + 2 * S), CB_APPLY_UPDATED);
	assert_int_equal(state_of(m, 5), CB_ST_CLOSED);
	assert_int_equal(get(m, 5).tx_bytes, 4242);
	/* linger (10 s) is earlier than the idle deadline (60 s): moved up */
	tick_all(m, T0 + 11900 * MS);
	assert_int_equal(state_of(m, 5), CB_ST_CLOSED);
	tick_all(m, T0 + 12100 * MS);
	assert_int_equal(state_of(m, 5), CB_ST_COUNT);
	cb_map_stats(m, &st);
	assert_int_equal(st.evicted, 1);
	assert_int_equal(cb_map_live(m), 0);
	assert_int_equal(st.live[CB_ST_CLOSED], 0);
	/* A beat written before the close but read after it (beats come on
	 * their own ring), once the CLOSED session is gone: no session — it
	 * would be one of a socket already gone, never closed. */
	data_beat(m, 5, T0 + 12200 * MS, 1);
	assert_int_equal(state_of(m, 5), CB_ST_COUNT);
	assert_int_equal(cb_map_live(m), 0);
	/* A beat of an entry the heartbeat path seeded (the OPEN was lost, or
	 * the socket predates the programs) creates a session, marked as first
	 * seen late. */
	r = rec(CB_REC_BEAT, 6, T0 + 12200 * MS, CB_TCP_ESTABLISHED, CB_TCP_ESTABLISHED);
	r.flags = CB_RF_SEEDED | CB_RF_DATA;
	r.ctr.last_data_ns = r.ctr.last_seen_ns = T0 + 12200 * MS;
	assert_int_equal(cb_apply_record(m, &r, T0 + 12200 * MS), CB_APPLY_INSERTED);
	assert_int_equal(state_of(m, 6), CB_ST_ACTIVE);
	assert_true(get(m, 6).flags & CB_SF_FIRST_UNKNOWN);
	assert_int_equal(cb_map_live(m), 1);
	cb_map_free(m);
}

static void test_apply_kinds(void **state)
{
	struct cb_map *m = mk_map(1000, 60 * S, 10 * S, 512);
	struct cb_record r;
	struct cb_session s;

	/* active OPEN without a port, then ESTABLISHED with it */
	r = rec(CB_REC_OPEN, 21, T0, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
	r.tuple.sport = 0;
	r.flags = CB_RF_PROCESS_CTX;
	r.pid = 4242;
	memcpy(r.comm, "curl", 5);
	assert_int_equal(cb_apply_record(m, &r, T0), CB_APPLY_INSERTED);
	assert_int_equal(get(m, 21).sport, 0);
	r = rec(CB_REC_STATE, 21, T0 + MS, CB_TCP_SYN_SENT, CB_TCP_ESTABLISHED);
	cb_apply_record(m, &r, T0 + MS);
	s = get(m, 21);
	assert_int_equal(s.sport, 10000 + 21);
	assert_int_equal(s.tcp_state, CB_TCP_ESTABLISHED);
	assert_int_equal(s.pid, 4242);
	assert_string_equal(cb_comm_name(cb_map_comms(m), s.comm_id), "curl");
	assert_false(s.flags & CB_SF_FIRST_UNKNOWN);
	assert_int_equal(s.first_seen_ns, T0);
	/* a later OPEN-less ESTABLISHED does not clobber the port with 0 */
	r = rec(CB_REC_BEAT, 21, T0 + 2 * MS, 1, 1);
	r.tuple.sport = 0;
	cb_apply_record(m, &r, T0 + 2 * MS);
	assert_int_equal(get(m, 21).sport, 10000 + 21);

	/* counters: totals keep the maximum; u32 counters survive a wrap */
	r = rec(CB_REC_BEAT, 21, T0 + 3 * MS, 1, 1);
	r.flags = CB_RF_COUNTERS;
	r.ctr.bytes_acked = 500;
	r.ctr.segs_in = 0xfffffff0u;
	cb_apply_record(m, &r, T0 + 3 * MS);
	r.ctr.bytes_acked = 400; /* an older beat, consumed late */
	r.ctr.segs_in = 0x10; /* wrapped: newer */
	cb_apply_record(m, &r, T0 + 4 * MS);
	s = get(m, 21);
	assert_int_equal(s.tx_bytes, 500);
	assert_int_equal(s.segs_in, 0x10);

	/* RESET counts, CLOSE closes, a second OPEN (reconnect) reopens */
	r = rec(CB_REC_RESET, 21, T0 + 5 * MS, 1, 1);
	r.flags = CB_RF_RST_RECEIVED;
	cb_apply_record(m, &r, T0 + 5 * MS);
	assert_int_equal(get(m, 21).resets & CB_RESETS_COUNT_MAX, 1);
	assert_true(get(m, 21).resets & CB_RESETS_RECEIVED);
	r = rec(CB_REC_CLOSE, 21, T0 + 6 * MS, 1, CB_TCP_CLOSE);
	cb_apply_record(m, &r, T0 + 6 * MS);
	assert_int_equal(state_of(m, 21), CB_ST_CLOSED);
	r = rec(CB_REC_STATE, 21, T0 + 7 * MS, 1, CB_TCP_ESTABLISHED); /* late: ignored */
	assert_int_equal(cb_apply_record(m, &r, T0 + 7 * MS), CB_APPLY_IGNORED);
	assert_int_equal(state_of(m, 21), CB_ST_CLOSED);
	r = rec(CB_REC_BEAT, 21, T0 + 7 * MS, 1, 1);
	assert_int_equal(cb_apply_record(m, &r, T0 + 7 * MS), CB_APPLY_IGNORED);
	r = rec(CB_REC_OPEN, 21, T0 + 8 * MS, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
	assert_int_equal(cb_apply_record(m, &r, T0 + 8 * MS), CB_APPLY_UPDATED);
	s = get(m, 21);
	assert_int_equal(cb_session_state(&s), CB_ST_ACTIVE);
	assert_int_equal(s.tx_bytes, 0); /* a new life */
	assert_int_equal(s.first_seen_ns, T0 + 8 * MS);
	{
		struct cb_map_stats st;

		cb_map_stats(m, &st);
		assert_int_equal(st.reopened, 1);
		assert_int_equal(st.live[CB_ST_ACTIVE], 1);
		assert_int_equal(st.live[CB_ST_CLOSED], 0);
	}

	/* unknown cookies: CLOSE/RESET ignored, STATE and BEAT create */
	r = rec(CB_REC_CLOSE, 99, T0, 1, CB_TCP_CLOSE);
	assert_int_equal(cb_apply_record(m, &r, T0), CB_APPLY_IGNORED);
	r = rec(CB_REC_RESET, 99, T0, 1, 1);
	assert_int_equal(cb_apply_record(m, &r, T0), CB_APPLY_IGNORED);
	r = rec(CB_REC_STATE, 98, T0, CB_TCP_ESTABLISHED, CB_TCP_CLOSE_WAIT);
	assert_int_equal(cb_apply_record(m, &r, T0), CB_APPLY_INSERTED);
	s = get(m, 98);
	assert_true(s.flags & CB_SF_FIRST_UNKNOWN);
	assert_int_equal(cb_session_state(&s), CB_ST_DRAINING); /* created draining */
	/* a beat stands for an OPEN only when the heartbeat path seeded the
	 * entry: any other may trail its CLOSE (another ring) after the
	 * CLOSED session was evicted, or outrun its OPEN */
	r = rec(CB_REC_BEAT, 95, T0, 1, CB_TCP_FIN_WAIT1);
	assert_int_equal(cb_apply_record(m, &r, T0), CB_APPLY_IGNORED);
	assert_int_equal(get(m, 95).cookie, 0);
	r = rec(CB_REC_BEAT, 97, T0, 1, CB_TCP_ESTABLISHED);
	r.flags = CB_RF_SEEDED;
	assert_int_equal(cb_apply_record(m, &r, T0), CB_APPLY_INSERTED);
	r = rec(CB_REC_BEAT, 96, T0, 1, CB_TCP_CLOSE);
	r.flags = CB_RF_SEEDED;
	assert_int_equal(cb_apply_record(m, &r, T0), CB_APPLY_IGNORED);

	/* sock_diag: a synthesised record for a known session corrects its
	 * TCP state and does not count as life by itself */
	r = rec(CB_REC_STATE, 97, T0 + 50 * S, 0, CB_TCP_CLOSE_WAIT);
	r.flags = CB_RF_SYNTH;
	r.ctr.last_seen_ns = r.ctr.last_data_ns = T0 + 1 * S;
	cb_apply_record(m, &r, T0 + 50 * S);
	s = get(m, 97);
	assert_int_equal(s.tcp_state, CB_TCP_CLOSE_WAIT);
	assert_int_equal(s.last_seen_ns, T0 + 1 * S);
	cb_map_free(m);
}

/* A connection we closed before the peer did lives on as a FIN_WAIT2
 * remnant: one session, DRAINING in FIN_WAIT2, until a CLOSE without the
 * remnant flag (the reconciler's, when the kernel drops it). */
static void test_remnant(void **state)
{
	struct cb_map *m = mk_map(1000, 60 * S, 10 * S, 512);
	struct cb_map_stats st;
	struct cb_record r;
	struct cb_session s;

	open_at(m, 31, T0);
	r = rec(CB_REC_STATE, 31, T0 + S, CB_TCP_ESTABLISHED, CB_TCP_FIN_WAIT1);
	cb_apply_record(m, &r, T0 + S);
	r = rec(CB_REC_CLOSE, 31, T0 + 2 * S, CB_TCP_FIN_WAIT2, CB_TCP_CLOSE);
	r.flags = CB_RF_REMNANT;
	cb_apply_record(m, &r, T0 + 2 * S);
	s = get(m, 31);
	assert_int_equal(cb_session_state(&s), CB_ST_DRAINING);
	assert_int_equal(s.tcp_state, CB_TCP_FIN_WAIT2);
	assert_true(s.flags & CB_SF_REMNANT);
	/* a sock_diag sighting of the remnant changes nothing, creates nothing */
	r = rec(CB_REC_STATE, 31, T0 + 3 * S, CB_TCP_FIN_WAIT2, CB_TCP_FIN_WAIT2);
	r.flags = CB_RF_SYNTH | CB_RF_REMNANT;
	cb_apply_record(m, &r, T0 + 3 * S);
	assert_int_equal(state_of(m, 31), CB_ST_DRAINING);
	/* the remnant goes: closed once */
	r = rec(CB_REC_CLOSE, 31, T0 + 60 * S, CB_TCP_CLOSE, CB_TCP_CLOSE);
	r.flags = CB_RF_SYNTH;
	cb_apply_record(m, &r, T0 + 60 * S);
	s = get(m, 31);
	assert_int_equal(cb_session_state(&s), CB_ST_CLOSED);
	assert_false(s.flags & CB_SF_REMNANT);
	cb_map_stats(m, &st);
	assert_int_equal(st.transitions[CB_ST_DRAINING][CB_ST_CLOSED], 1);
	assert_int_equal(st.opened, 1);
	assert_int_equal(st.reopened, 0);
	/* it lingers from that close, not from its last sign of life */
	tick_all(m, T0 + 69 * S);
	assert_int_equal(state_of(m, 31), CB_ST_CLOSED);
	tick_all(m, T0 + 71 * S);
	assert_int_equal(state_of(m, 31), CB_ST_COUNT);
	cb_map_free(m);
}

/* The reconciler closes a session whose socket is gone; the kernel's own
 * CLOSE may be read before or after it. Either way the session is closed
 * once: a synthetic CLOSE after the kernel's is ignored (nothing was
 * missed, the linger is not restarted), and the kernel's after a
 * synthetic one still brings its final counters. */
static void test_synth_close_and_kernel_close(void **state)
{
	struct cb_map *m = mk_map(1000, 60 * S, 10 * S, 512);
	struct cb_map_stats st;
	struct cb_record r;
	struct cb_session s;

	/* the kernel's first */
	open_at(m, 41, T0);
	r = rec(CB_REC_CLOSE, 41, T0 + S, CB_TCP_ESTABLISHED, CB_TCP_CLOSE);
	assert_int_equal(cb_apply_record(m, &r, T0 + S), CB_APPLY_UPDATED);
	r = rec(CB_REC_CLOSE, 41, T0 + 2 * S, CB_TCP_CLOSE, CB_TCP_CLOSE);
	r.flags = CB_RF_SYNTH;
	assert_int_equal(cb_apply_record(m, &r, T0 + 2 * S), CB_APPLY_IGNORED);
	s = get(m, 41);
	assert_int_equal(cb_session_state(&s), CB_ST_CLOSED);
	assert_int_equal(s.last_seen_ns, T0 + S); /* lingers from the kernel's close */

	/* the reconciler's first */
	open_at(m, 42, T0);
	r = rec(CB_REC_CLOSE, 42, T0 + 2 * S, CB_TCP_CLOSE, CB_TCP_CLOSE);
	r.flags = CB_RF_SYNTH;
	assert_int_equal(cb_apply_record(m, &r, T0 + 2 * S), CB_APPLY_UPDATED);
	r = rec(CB_REC_CLOSE, 42, T0 + S, CB_TCP_ESTABLISHED, CB_TCP_CLOSE);
	r.flags = CB_RF_COUNTERS;
	r.ctr.bytes_acked = 700;
	r.ctr.bytes_received = 300;
	assert_int_equal(cb_apply_record(m, &r, T0 + 2 * S), CB_APPLY_UPDATED);
	s = get(m, 42);
	assert_int_equal(cb_session_state(&s), CB_ST_CLOSED);
	assert_int_equal(s.tx_bytes, 700);
	assert_int_equal(s.rx_bytes, 300);

	cb_map_stats(m, &st);
	assert_int_equal(st.transitions[CB_ST_ACTIVE][CB_ST_CLOSED], 2);
	cb_map_free(m);
}

/* Counters change only with records that carry them; the u32 ones keep
 * the newer of two readings, and a first reading is always taken. */
static void test_counters(void **state)
{
	struct cb_map *m = mk_map(1000, 60 * S, 10 * S, 512);
	struct cb_record r;
	struct cb_session s;

	open_at(m, 41, T0);
	r = rec(CB_REC_BEAT, 41, T0 + S, 1, 1);
	r.flags = CB_RF_COUNTERS;
	r.ctr.segs_in = 0x90000000u; /* above 2^31: a first reading */
	r.ctr.segs_out = 0x90000001u;
	r.ctr.total_retrans = 0x90000002u;
	r.ctr.srtt_us = 123456;
	cb_apply_record(m, &r, T0 + S);
	s = get(m, 41);
	assert_int_equal(s.segs_in, 0x90000000u);
	assert_int_equal(s.segs_out, 0x90000001u);
	assert_int_equal(s.retrans, 0x90000002u);
	assert_true(cb_rtt_decode(s.rtt) <= 123456 && cb_rtt_decode(s.rtt) > 123456 - 64);
	/* a record without counters keeps them */
	r = rec(CB_REC_STATE, 41, T0 + 2 * S, CB_TCP_ESTABLISHED, CB_TCP_CLOSE_WAIT);
	cb_apply_record(m, &r, T0 + 2 * S);
	s = get(m, 41);
	assert_int_equal(s.segs_in, 0x90000000u);
	assert_int_equal(s.retrans, 0x90000002u);
	cb_map_free(m);
}

/* Our own RST is no sign of the peer's life: a blackholed peer must go
 * STALE on the `any` basis too. */
static void test_reset_is_not_life(void **state)
{
	struct cb_map *m = mk_map(1000, 60 * S, 10 * S, 512);
	struct cb_record r;

	open_at(m, 51, T0);
	r = rec(CB_REC_RESET, 51, T0 + 30 * S, 1, 1);
	r.flags = CB_RF_RST_SENT;
	cb_apply_record(m, &r, T0 + 30 * S);
	assert_int_equal(get(m, 51).last_seen_ns, T0);
	assert_true(get(m, 51).resets & CB_RESETS_SENT);
	cb_map_free(m);
}

/* A refused connection is counted once, however many records it sends. */
static void test_refused_once(void **state)
{
	struct cb_map *m = mk_map(1024, 60 * S, 10 * S, 512);
	struct cb_map_stats st;

	for (uint64_t c = 1; c <= 1024; c++)
		open_at(m, c, T0);
	for (int i = 0; i < 5; i++) {
		struct cb_record r = rec(CB_REC_BEAT, 5000, T0 + i * S, 1, 1);

		r.flags = CB_RF_SEEDED;
		assert_int_equal(cb_apply_record(m, &r, T0 + i * S), CB_APPLY_REFUSED);
	}
	cb_map_stats(m, &st);
	assert_int_equal(st.refused, 1);
	cb_map_free(m);
}

/* The owner: unknown until a record or an owners pass names it; the gauge
 * of unowned sessions follows. An accepted connection is marked. */
static void test_owner_and_passive(void **state)
{
	struct cb_map *m = mk_map(1000, 60 * S, 10 * S, 512);
	struct cb_map_stats st;
	struct cb_record r;

	r = rec(CB_REC_OPEN, 61, T0, CB_TCP_SYN_RECV, CB_TCP_ESTABLISHED);
	cb_apply_record(m, &r, T0);
	assert_int_equal(cb_map_unowned(m), 1);
	assert_true(get(m, 61).resets & CB_RESETS_PASSIVE);
	r = rec(CB_REC_OPEN, 62, T0, CB_TCP_SYN_SENT, CB_TCP_ESTABLISHED);
	r.flags = CB_RF_OWNER_PID;
	r.pid = 77;
	memcpy(r.comm, "client", 7);
	cb_apply_record(m, &r, T0);
	assert_int_equal(get(m, 62).pid, 77);
	assert_false(get(m, 62).resets & CB_RESETS_PASSIVE);
	assert_int_equal(cb_map_unowned(m), 1);
	r = rec(CB_REC_BEAT, 61, T0 + S, 1, 1);
	r.flags = CB_RF_PROCESS_CTX;
	r.pid = 88;
	memcpy(r.comm, "server", 7);
	cb_apply_record(m, &r, T0 + S);
	assert_int_equal(get(m, 61).pid, 88);
	assert_string_equal(cb_comm_name(cb_map_comms(m), get(m, 61).comm_id), "server");
	cb_map_stats(m, &st);
	assert_int_equal(st.unowned, 0);
	cb_map_free(m);
}

static void test_cap(void **state)
{
	struct cb_map *m = mk_map(1024, 60 * S, 10 * S, 512);
	struct cb_map_stats st;
	int inserted = 0, refused = 0;

	for (uint64_t c = 1; c <= 3000; c++) {
		struct cb_record r = rec(CB_REC_OPEN, c, T0, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
		enum cb_apply_result res = cb_apply_record(m, &r, T0);

		inserted += res == CB_APPLY_INSERTED;
		refused += res == CB_APPLY_REFUSED;
	}
	assert_int_equal(inserted, 1024);
	assert_int_equal(refused, 3000 - 1024);
	cb_map_stats(m, &st);
	assert_int_equal(st.refused, 3000 - 1024);
	assert_int_equal(cb_map_live(m), 1024);
	/* closing and evicting makes room again */
	for (uint64_t c = 1; c <= 3000; c++) {
		struct cb_record r = rec(CB_REC_CLOSE, c, T0 + S, 1, CB_TCP_CLOSE);

		cb_apply_record(m, &r, T0 + S);
	}
	tick_all(m, T0 + 20 * S);
	assert_int_equal(cb_map_live(m), 0);
	{
		struct cb_record r = rec(CB_REC_OPEN, 5000, T0 + 21 * S, CB_TCP_CLOSE, 2);

		assert_int_equal(cb_apply_record(m, &r, T0 + 21 * S), CB_APPLY_INSERTED);
	}
	cb_map_free(m);
}

/* A shorter idle threshold (SIGHUP) applies to sessions already in the
 * wheel at their old, far deadline. */
static void test_shorter_timeout(void **state)
{
	struct cb_map *m = mk_map(1024, 3600 * S, 10 * S, 512);
	struct cb_map_stats st;

	(void)state;
	for (uint64_t c = 1; c <= 100; c++)
		open_at(m, c, T0);
	tick_all(m, T0 + 2 * S);
	cb_map_stats(m, &st);
	assert_int_equal(st.live[CB_ST_ACTIVE], 100);
	cb_map_set_timeouts(m, 1 * S, false, 30 * S, 10 * S);
	tick_all(m, T0 + 3 * S);
	cb_map_stats(m, &st);
	assert_int_equal(st.live[CB_ST_STALE], 100);
	cb_map_free(m);
}

/* Cookie 0 marks free slab slots: it can never become a session. */
static void test_zero_cookie(void **state)
{
	struct cb_map *m = mk_map(1024, 60 * S, 10 * S, 512);
	struct cb_record r = rec(CB_REC_OPEN, 0, T0, CB_TCP_CLOSE, CB_TCP_SYN_SENT);

	(void)state;
	assert_int_equal(cb_apply_record(m, &r, T0), CB_APPLY_REFUSED);
	assert_int_equal(cb_map_live(m), 0);
	cb_map_free(m);
}

/* At the cap, CLOSED sessions lingering make room for new ones. */
static void test_cap_evicts_closed(void **state)
{
	struct cb_map *m = mk_map(1024, 60 * S, 10 * S, 512);
	struct cb_map_stats st;
	int inserted = 0, refused = 0;

	(void)state;
	for (uint64_t c = 1; c <= 1024; c++)
		open_at(m, c, T0);
	for (uint64_t c = 1; c <= 500; c++) {
		struct cb_record r = rec(CB_REC_CLOSE, c, T0 + S, 1, CB_TCP_CLOSE);

		cb_apply_record(m, &r, T0 + S);
	}
	for (uint64_t c = 2001; c <= 2600; c++) {
		struct cb_record r = rec(CB_REC_OPEN, c, T0 + 2 * S, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
		enum cb_apply_result res = cb_apply_record(m, &r, T0 + 2 * S);

		inserted += res == CB_APPLY_INSERTED;
		refused += res == CB_APPLY_REFUSED;
	}
	assert_int_equal(inserted, 500);
	assert_int_equal(refused, 100);
	cb_map_stats(m, &st);
	assert_int_equal(st.evicted_early, 500);
	assert_int_equal(st.live[CB_ST_CLOSED], 0);
	assert_int_equal(st.live[CB_ST_ACTIVE], 1024);
	assert_int_equal(cb_map_live(m), 1024);
	cb_map_free(m);
}

/* The search for a CLOSED session to evict starts where the last one was
 * found; a session closed since with an earlier deadline (a shorter linger,
 * an older close time) is still found, and the soonest due goes first. */
static void test_cap_evicts_soonest(void **state)
{
	struct cb_map *m = mk_map(1024, 60 * S, 10 * S, 512);
	struct cb_shard *sh;
	struct cb_record r;
	uint64_t a = 0, b = 0;

	(void)state;
	for (uint64_t c = 1; c <= 1024; c++)
		open_at(m, c, T0);
	r = rec(CB_REC_CLOSE, 10, T0 + S, 1, CB_TCP_CLOSE); /* due at T0 + 11 s */
	cb_apply_record(m, &r, T0 + S);
	r = rec(CB_REC_OPEN, 5001, T0 + 2 * S, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
	assert_int_equal(cb_apply_record(m, &r, T0 + 2 * S), CB_APPLY_INSERTED);
	assert_int_equal(get(m, 10).cookie, 0);

	/* "soonest" is within the inserting shard first (session_map.h):
	 * two open sessions of 5002's shard close, the later-due one first */
	sh = cb_map_shard(m, 5002);
	for (uint64_t c = 11; c <= 1024 && !(a && b); c++)
		if (cb_map_shard(m, c) == sh)
			*(a ? &b : &a) = c;
	assert_true(a && b);
	cb_map_set_timeouts(m, 60 * S, false, 30 * S, 1 * S);
	r = rec(CB_REC_CLOSE, a, T0 + 3 * S, 1, CB_TCP_CLOSE); /* due at T0 + 4 s */
	cb_apply_record(m, &r, T0 + 3 * S);
	r = rec(CB_REC_CLOSE, b, T0 + 2 * S, 1, CB_TCP_CLOSE); /* due at T0 + 3 s */
	cb_apply_record(m, &r, T0 + 3 * S);
	r = rec(CB_REC_OPEN, 5002, T0 + 3 * S, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
	assert_int_equal(cb_apply_record(m, &r, T0 + 3 * S), CB_APPLY_INSERTED);
	assert_int_equal(get(m, b).cookie, 0);
	assert_int_equal(state_of(m, a), CB_ST_CLOSED);
	r = rec(CB_REC_OPEN, 5003, T0 + 3 * S, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
	assert_int_equal(cb_apply_record(m, &r, T0 + 3 * S), CB_APPLY_INSERTED);
	assert_int_equal(get(m, a).cookie, 0);
	r = rec(CB_REC_OPEN, 5004, T0 + 3 * S, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
	assert_int_equal(cb_apply_record(m, &r, T0 + 3 * S), CB_APPLY_REFUSED);
	cb_map_free(m);
}

static void test_drain(void **state)
{
	struct cb_map *m = mk_map(1000, 5 * S, 10 * S, 512);
	struct cb_map_stats st;

	for (uint64_t c = 1; c <= 10; c++)
		open_at(m, c, T0);
	tick_all(m, T0 + 6 * S); /* all stale */
	data_beat(m, 2, T0 + 6 * S, 1);
	assert_int_equal(cb_map_drain(m, NULL, NULL), 10); /* 9 stale + 1 active */
	assert_int_equal(cb_map_drain(m, NULL, NULL), 0);  /* nothing left to drain */
	cb_map_stats(m, &st);
	assert_int_equal(st.live[CB_ST_DRAINING], 10);
	assert_int_equal(st.transitions[CB_ST_STALE][CB_ST_DRAINING], 9);
	assert_int_equal(st.transitions[CB_ST_ACTIVE][CB_ST_DRAINING], 1);
	assert_true(get(m, 3).flags & CB_SF_OPERATOR_DRAIN);
	/* DRAINING is out of the wheel: ticks leave it alone */
	tick_all(m, T0 + 100 * S);
	assert_int_equal(state_of(m, 3), CB_ST_DRAINING);
	cb_map_free(m);
}

static void test_comm(void **state)
{
	struct cb_comm_table *t = cb_comm_new();
	uint16_t a = cb_comm_intern(t, "nginx"), b = cb_comm_intern(t, "postgres"), full;
	char name[16];

	assert_true(a && b && a != b);
	assert_int_equal(cb_comm_intern(t, "nginx"), a);
	assert_string_equal(cb_comm_name(t, b), "postgres");
	assert_string_equal(cb_comm_name(t, 0), "");
	assert_string_equal(cb_comm_name(t, 9999), "");
	assert_int_equal(cb_comm_intern(t, ""), 0);
	memcpy(name, "0123456789abcdef", 16); /* 16 bytes, no NUL */
	full = cb_comm_intern(t, name);
	assert_string_equal(cb_comm_name(t, full), "0123456789abcdef");
	for (unsigned int i = 0; i < CB_COMM_MAX + 10; i++) {
		char n[16];

		snprintf(n, sizeof(n), "p%u", i);
		cb_comm_intern(t, n);
	}
	assert_int_equal(cb_comm_count(t), CB_COMM_MAX);
	assert_true(cb_comm_full_misses(t) > 0);
	assert_int_equal(cb_comm_intern(t, "a-new-name"), 0);
	assert_int_equal(cb_comm_intern(t, "nginx"), a); /* known names still resolve */
	cb_comm_free(t);
	/* a new table (possibly at the same address) is not fooled by the
	 * per-thread cache of the old one */
	t = cb_comm_new();
	assert_int_equal(cb_comm_intern(t, "zeta"), 1);
	assert_int_equal(cb_comm_intern(t, "nginx"), 2);
	assert_string_equal(cb_comm_name(t, 2), "nginx");
	cb_comm_free(t);
}

/* ---- a dump racing with inserts and deletes (like lib/test_rhashtable.c) ---- */

struct race {
	struct cb_map *m;
	volatile int stop;
};

/* Cookies 1..1000 live for the whole dump; 100001.. come and go. */
static void *churn(void *arg)
{
	struct race *r = arg;
	uint64_t c = 100001, t = T0;

	while (!r->stop) {
		struct cb_record o = rec(CB_REC_OPEN, c, t, CB_TCP_CLOSE, CB_TCP_SYN_SENT);
		struct cb_record x = rec(CB_REC_CLOSE, c - 50, t, 1, CB_TCP_CLOSE);

		cb_apply_record(r->m, &o, t);
		cb_apply_record(r->m, &x, t);
		c++;
		t += MS;
		if (!(c & 63))
			cb_map_tick(r->m, t + 20 * S); /* evicts the closed ones */
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_dump_races(void **state)
{
	struct cb_map *m = mk_map(1 << 20, 3600 * S, 1 * S, 512);
	struct race r = { .m = m };
	static struct cb_session buf[97];
	uint64_t *seen = malloc(sizeof(uint64_t) * (1 << 20));
	size_t nseen = 0, stable = 0;
	pthread_t th;

	for (uint64_t c = 1; c <= 1000; c++)
		open_at(m, c, T0);
	assert_int_equal(pthread_create(&th, NULL, churn, &r), 0);
	for (int round = 0; round < 20; round++) {
		struct cb_map_cursor cur = { 0 };
		size_t n;

		nseen = 0;
		while ((n = cb_map_dump(m, &cur, NULL, NULL, buf, 97)) > 0 ||
		       !cb_map_cursor_done(m, &cur))
			for (size_t i = 0; i < n; i++)
				seen[nseen++] = buf[i].cookie;
		qsort(seen, nseen, sizeof(seen[0]), cmp_u64);
		stable = 0;
		for (size_t i = 0; i < nseen; i++) {
			if (i)
				assert_true(seen[i] != seen[i - 1]); /* never twice */
			stable += seen[i] <= 1000;
		}
		assert_int_equal(stable, 1000); /* every one that lived throughout */
	}
	r.stop = 1;
	pthread_join(th, NULL);
	free(seen);
	cb_map_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_to_stale_and_back),
		cmocka_unit_test(test_heartbeat_just_before_expiry),
		cmocka_unit_test(test_timeout_beyond_horizon),
		cmocka_unit_test(test_clock_backwards_and_jump),
		cmocka_unit_test(test_budget_carry_over),
		cmocka_unit_test(test_close_linger_evict),
		cmocka_unit_test(test_apply_kinds),
		cmocka_unit_test(test_remnant),
		cmocka_unit_test(test_synth_close_and_kernel_close),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_reset_is_not_life),
		cmocka_unit_test(test_refused_once),
		cmocka_unit_test(test_owner_and_passive),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_cap_evicts_closed),
		cmocka_unit_test(test_cap_evicts_soonest),
		cmocka_unit_test(test_zero_cookie),
		cmocka_unit_test(test_shorter_timeout),
		cmocka_unit_test(test_drain),
		cmocka_unit_test(test_comm),
		cmocka_unit_test(test_dump_races),
	};

	return cmocka_run_group_tests_name("session_map", tests, NULL, NULL);
}
