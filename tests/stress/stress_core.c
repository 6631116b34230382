// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * stress_core — the daemon's threads on the session map at once, for
 * ThreadSanitizer (make check builds it with SANITIZER=thread):
 *   ingest   cb_apply_batch(): opens, beats, state changes, closes
 *   tick     cb_map_tick() with a small budget
 *   dump     cb_map_dump() with a filter, checking each walk for duplicates
 *   drain    cb_map_drain() on a slice of the cookies
 *   stats    cb_map_stats() (what a scrape reads, lock-free)
 * Prints TAP.
 *
 * Deterministic by construction (nothing depends on how fast the machine is
 * or how the threads are scheduled):
 *  - The clock is simulated and driven by events: every ingested record
 *    moves it 50 µs. The concurrent phase ends when the clock has covered
 *    CLOCK_SPAN (many idle thresholds and lingers) *and* every thread has
 *    done some rounds; wall time is only a safety cap, reported as a
 *    failure of its own.
 *  - Cookies are what the kernel's are: every new session gets a fresh,
 *    increasing one, and a closed cookie never receives another record. So
 *    a dump that reports a cookie twice is a real bug, not a reused key.
 *  - The end phase runs on one thread: advance the clock past idle + linger,
 *    tick until nothing is due, and check the outcome exactly: no ACTIVE
 *    session is older than the idle threshold, no CLOSED one is left, the
 *    evictions grew by exactly the CLOSED sessions there were, and a data
 *    beat revives a STALE session.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/apply.h"
#include "core/session_map.h"

#define MS 1000000ULL
#define S 1000000000ULL
#define T0 (1000 * S)
#define STEP_NS (50 * 1000ULL)   /* simulated time per ingested record */
#define CLOCK_SPAN (30 * S)      /* the concurrent phase covers this much */
#define WALL_CAP_S 300           /* safety cap only: reaching it is a failure */
#define WINDOW 16000             /* open cookies at most (cap is COOKIES) */
#define COOKIES 20000
#define MAX_OPENS 2000000        /* cookie space: bitmap of closed cookies */
#define IDLE_NS (2 * S)
#define LINGER_NS (1 * S)
#define TICK_NS (100 * MS)

static struct cb_map *m;
static _Atomic uint64_t clock_ns = T0;
static _Atomic bool stop;
static _Atomic uint64_t dup_reports, walks, ticks, drains, events;

static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + ts.tv_nsec;
}

static void mk(struct cb_record *r, uint8_t kind, uint64_t cookie, uint8_t st, uint64_t ts)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->version = CB_ABI_VERSION;
	r->size = sizeof(*r);
	r->cookie = cookie;
	r->ts_ns = ts;
	r->new_state = st;
	r->tuple.family = 4;
	r->tuple.sport = (uint16_t)(1024 + cookie % 60000);
	r->tuple.dport = 443;
	r->ctr.last_seen_ns = r->ctr.last_data_ns = ts;
}

/* The ingest thread's view of the cookie space: [lo, hi) may be open; a
 * bit set in `closed` means that cookie got its CLOSE and is done. */
static uint8_t closed[MAX_OPENS / 8];

static bool is_closed(uint64_t c)
{
	return closed[c / 8] & (1u << (c % 8));
}

static void *ingest(void *arg)
{
	unsigned int seed = 1, n = 0;
	struct cb_record batch[16];
	uint64_t res[CB_APPLY_RESULTS] = { 0 };
	uint64_t lo = 1, hi = 1; /* cookie 0 is never valid */

	while (!atomic_load(&stop) && hi < MAX_OPENS) {
		struct cb_record *r = &batch[n];
		unsigned int op = rand_r(&seed) % 100;
		uint64_t ts = atomic_fetch_add(&clock_ns, STEP_NS) + STEP_NS, c;

		if (op < 5 || hi == lo) {
			/* a new connection: a fresh cookie, as the kernel's */
			c = hi++;
			mk(r, CB_REC_OPEN, c, CB_TCP_SYN_SENT, ts);
			if (hi - lo > WINDOW) { /* the oldest goes: its CLOSE */
				n++;
				if (n == 16) {
					cb_apply_batch(m, batch, n, ts, res);
					n = 0;
				}
				r = &batch[n];
				while (lo < hi && is_closed(lo))
					lo++;
				c = lo++;
				closed[c / 8] |= 1u << (c % 8);
				mk(r, CB_REC_CLOSE, c, CB_TCP_CLOSE, ts);
			}
		} else {
			c = lo + rand_r(&seed) % (hi - lo);
			if (is_closed(c))
				continue; /* the kernel never reports a closed socket again */
			if (op < 8) {
				mk(r, CB_REC_STATE, c, CB_TCP_CLOSE_WAIT, ts);
			} else if (op < 11) {
				closed[c / 8] |= 1u << (c % 8);
				mk(r, CB_REC_CLOSE, c, CB_TCP_CLOSE, ts);
			} else {
				mk(r, CB_REC_BEAT, c, CB_TCP_ESTABLISHED, ts);
				r->flags = op < 60 ? CB_RF_DATA : 0;
				if (!(r->flags & CB_RF_DATA))
					r->ctr.last_data_ns = 0;
				r->flags |= CB_RF_COUNTERS;
				r->ctr.bytes_acked = op;
			}
		}
		/* in batches, as the daemon applies them (prefetching peeks at
		 * buckets without the lock: TSan checks that it is a clean race) */
		if (++n == 16) {
			cb_apply_batch(m, batch, n, ts, res);
			n = 0;
		}
		atomic_fetch_add(&events, 1);
	}
	if (n)
		cb_apply_batch(m, batch, n, atomic_load(&clock_ns), res);
	return NULL;
}

static void *ticker(void *arg)
{
	while (!atomic_load(&stop)) {
		cb_map_tick(m, atomic_load(&clock_ns));
		atomic_fetch_add(&ticks, 1);
	}
	return NULL;
}

static bool odd_port(const struct cb_session *s, void *ctx)
{
	return s->sport & 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void *dumper(void *arg)
{
	static struct cb_session buf[128];
	uint64_t *seen = malloc(sizeof(uint64_t) * 2 * COOKIES);

	while (!atomic_load(&stop)) {
		struct cb_map_cursor cur = { 0 };
		size_t n, total = 0;

		while (!cb_map_cursor_done(m, &cur)) {
			n = cb_map_dump(m, &cur, odd_port, NULL, buf, 128);
			for (size_t i = 0; i < n && total < 2 * COOKIES; i++)
				seen[total++] = buf[i].cookie;
		}
		qsort(seen, total, sizeof(*seen), cmp_u64);
		for (size_t i = 1; i < total; i++)
			if (seen[i] == seen[i - 1])
				atomic_fetch_add(&dup_reports, 1);
		atomic_fetch_add(&walks, 1);
	}
	free(seen);
	return NULL;
}

static bool slice(const struct cb_session *s, void *ctx)
{
	return s->cookie % 97 == 0;
}

static void *drainer(void *arg)
{
	struct cb_map_stats st;

	while (!atomic_load(&stop)) {
		cb_map_drain(m, slice, NULL);
		cb_map_stats(m, &st); /* a scrape */
		atomic_fetch_add(&drains, 1);
	}
	return NULL;
}

struct recount {
	uint64_t live[CB_ST_COUNT];
	uint64_t total;
	uint64_t now;
	uint64_t active_overdue; /* ACTIVE although idle for at least the threshold */
	uint64_t a_stale;        /* some STALE session's cookie */
};

static void count_one(struct cb_map *mm, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	struct recount *rc = ctx;
	unsigned int st = cb_session_state(s);

	rc->live[st]++;
	rc->total++;
	if (st == CB_ST_ACTIVE && cb_session_idle_ns(s, rc->now, false) >= IDLE_NS)
		rc->active_overdue++;
	if (st == CB_ST_STALE && !rc->a_stale)
		rc->a_stale = s->cookie;
}

static void recount(struct recount *rc, uint64_t now)
{
	struct cb_map_cursor cur = { 0 };

	memset(rc, 0, sizeof(*rc));
	rc->now = now;
	while (!cb_map_cursor_done(m, &cur))
		cb_map_visit(m, &cur, count_one, rc);
}

static int n, failed;

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		n++;                                                              \
		if (cond) {                                                       \
			printf("ok %d - ", n);                                    \
		} else {                                                          \
			printf("not ok %d - ", n);                                \
			failed++;                                                 \
		}                                                                 \
		printf(__VA_ARGS__);                                              \
		printf("\n");                                                     \
	} while (0)

static bool phase_done(void)
{
	return atomic_load(&clock_ns) >= T0 + CLOCK_SPAN && atomic_load(&ticks) >= 10 &&
	       atomic_load(&walks) >= 2 && atomic_load(&drains) >= 2;
}

int main(void)
{
	struct cb_map_config cfg = { .max_sessions = COOKIES, .shards = 8, .tick_ns = TICK_NS,
				     .idle_ns = IDLE_NS, .drain_timeout_ns = 5 * S,
				     .linger_ns = LINGER_NS, .tick_budget = 64 };
	pthread_t th[4];
	void *(*fns[4])(void *) = { ingest, ticker, dumper, drainer };
	struct recount rc;
	struct cb_map_stats st, before;
	struct cb_record r;
	uint64_t wall_end, now, closed_before;
	bool capped = false;
	int rounds;

	m = cb_map_new(&cfg, atomic_load(&clock_ns));
	if (!m) {
		printf("not ok 1 - map created\n");
		return 1;
	}
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, fns[i], NULL);
	wall_end = mono() + WALL_CAP_S * S;
	while (!phase_done()) {
		if (mono() > wall_end) {
			capped = true;
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10 * MS }, NULL);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);

	CHECK(!capped, "the concurrent phase reached its clock target before the %d s safety cap "
		       "(simulated %.1f s of %.1f s, %llu events)",
	      WALL_CAP_S, (atomic_load(&clock_ns) - T0) / 1e9, CLOCK_SPAN / 1e9,
	      (unsigned long long)atomic_load(&events));
	CHECK(atomic_load(&walks) > 0 && atomic_load(&ticks) > 0 && atomic_load(&drains) > 0,
	      "all threads ran (walks %llu, ticks %llu, drains %llu)",
	      (unsigned long long)walks, (unsigned long long)ticks, (unsigned long long)drains);
	CHECK(atomic_load(&dup_reports) == 0, "no dump reported a session twice (%llu)",
	      (unsigned long long)atomic_load(&dup_reports));

	now = atomic_load(&clock_ns);
	recount(&rc, now);
	cb_map_stats(m, &st);
	for (int s = 0; s < CB_ST_COUNT; s++)
		CHECK(st.live[s] == rc.live[s], "gauge for state %d equals a recount (%llu vs %llu)",
		      s, (unsigned long long)st.live[s], (unsigned long long)rc.live[s]);
	CHECK(cb_map_live(m) == rc.total, "live count equals the sessions in the map (%llu)",
	      (unsigned long long)rc.total);
	CHECK(rc.total <= COOKIES, "never more sessions than the cap");

	/* ---- end phase: one thread, the clock past idle + linger ---- */
	cb_map_stats(m, &before);
	closed_before = rc.live[CB_ST_CLOSED];
	now += IDLE_NS + LINGER_NS + 2 * TICK_NS;
	for (rounds = 0; rounds < 1000000 && cb_map_tick(m, now); rounds++)
		;
	CHECK(rounds < 1000000, "the wheel finished its due work (%d budgeted rounds)", rounds);
	recount(&rc, now);
	cb_map_stats(m, &st);
	CHECK(rc.active_overdue == 0 && rc.live[CB_ST_ACTIVE] == 0,
	      "no ACTIVE session older than the idle threshold is left (%llu ACTIVE)",
	      (unsigned long long)rc.live[CB_ST_ACTIVE]);
	CHECK(rc.live[CB_ST_CLOSED] == 0, "no CLOSED session past its linger is left (%llu)",
	      (unsigned long long)rc.live[CB_ST_CLOSED]);
	CHECK(st.evicted - before.evicted == closed_before,
	      "evictions grew by exactly the CLOSED sessions there were (%llu of %llu)",
	      (unsigned long long)(st.evicted - before.evicted),
	      (unsigned long long)closed_before);
	CHECK(st.transitions[CB_ST_ACTIVE][CB_ST_STALE] > before.transitions[CB_ST_ACTIVE][CB_ST_STALE],
	      "idle sessions went STALE");
	for (int s = 0; s < CB_ST_COUNT; s++)
		CHECK(st.live[s] == rc.live[s], "after the end phase: gauge for state %d equals a "
						"recount (%llu vs %llu)",
		      s, (unsigned long long)st.live[s], (unsigned long long)rc.live[s]);
	CHECK(rc.a_stale != 0, "some session is STALE");
	if (rc.a_stale) {
		uint64_t revived = st.transitions[CB_ST_STALE][CB_ST_ACTIVE];

		mk(&r, CB_REC_BEAT, rc.a_stale, CB_TCP_ESTABLISHED, now);
		r.flags = CB_RF_DATA;
		cb_apply_record(m, &r, now);
		cb_map_stats(m, &st);
		CHECK(st.transitions[CB_ST_STALE][CB_ST_ACTIVE] == revived + 1 &&
			      st.live[CB_ST_ACTIVE] == 1,
		      "a data beat revives a STALE session");
	}
	cb_map_free(m);
	return failed ? 1 : 0;
}
