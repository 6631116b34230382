// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * stress_core — the daemon's threads on the session map at once, for
 * ThreadSanitizer (make check builds it with SANITIZER=thread):
 *   ingest   cb_apply_batch(): opens, beats, state changes, closes
 *   tick     cb_map_tick() with a small budget
 *   dump     cb_map_dump() with a filter, checking each walk for duplicates
 *   drain    cb_map_drain() on a slice of the cookies
 *   stats    cb_map_stats() (what a scrape reads, lock-free)
 * on a shared clock that runs fast. Bounded in iterations and time. At the
 * end, with everything stopped, the per-state gauges must equal a recount
 * of the map and the live count its size. Prints TAP.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "session_map.h"

#define MS 1000000ULL
#define S 1000000000ULL
#define RUN_NS (3 * S)
#define COOKIES 20000

static struct cb_map *m;
static _Atomic uint64_t clock_ns = 1000 * S;
static _Atomic bool stop;
static _Atomic uint64_t dup_reports, walks, ticks, drains;

static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + ts.tv_nsec;
}

static void mk(struct cb_record *r, uint8_t kind, uint64_t cookie, uint8_t st)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->version = CB_ABI_VERSION;
	r->size = sizeof(*r);
	r->cookie = cookie;
	r->ts_ns = atomic_load(&clock_ns);
	r->new_state = st;
	r->tuple.family = 4;
	r->tuple.sport = (uint16_t)(1024 + cookie % 60000);
	r->tuple.dport = 443;
	r->ctr.last_seen_ns = r->ctr.last_data_ns = r->ts_ns;
}

static void *ingest(void *arg)
{
	unsigned int seed = 1, n = 0;
	struct cb_record batch[16];
	uint64_t res[CB_APPLY_RESULTS] = { 0 };

	while (!atomic_load(&stop)) {
		struct cb_record r;
		uint64_t c = 1 + rand_r(&seed) % COOKIES;
		unsigned int op = rand_r(&seed) % 100;

		if (op < 5)
			mk(&r, CB_REC_OPEN, c, CB_TCP_SYN_SENT);
		else if (op < 8)
			mk(&r, CB_REC_STATE, c, CB_TCP_CLOSE_WAIT);
		else if (op < 11)
			mk(&r, CB_REC_CLOSE, c, CB_TCP_CLOSE);
		else {
			mk(&r, CB_REC_BEAT, c, CB_TCP_ESTABLISHED);
			r.flags = op < 60 ? CB_RF_DATA : 0;
			r.ctr.tx_bytes = op;
		}
		/* in batches, as the daemon applies them (prefetching peeks at
		 * buckets without the lock: TSan checks that it is a clean race) */
		batch[n++] = r;
		if (n == 16) {
			cb_apply_batch(m, batch, n, batch[0].ts_ns, res);
			n = 0;
		}
		atomic_fetch_add(&clock_ns, 50000); /* 50 µs per event */
	}
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
};

static void count_one(struct cb_map *mm, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	struct recount *rc = ctx;

	rc->live[cb_session_state(s)]++;
	rc->total++;
}

int main(void)
{
	struct cb_map_config cfg = { .max_sessions = COOKIES, .shards = 8, .tick_ns = 100 * MS,
				     .idle_ns = 2 * S, .drain_timeout_ns = 5 * S,
				     .linger_ns = 1 * S, .tick_budget = 64 };
	pthread_t th[4];
	void *(*fns[4])(void *) = { ingest, ticker, dumper, drainer };
	struct cb_map_cursor cur = { 0 };
	struct recount rc;
	struct cb_map_stats st;
	uint64_t end;
	int n = 0, failed = 0;

	memset(&rc, 0, sizeof(rc));
	m = cb_map_new(&cfg, atomic_load(&clock_ns));
	if (!m) {
		printf("not ok 1 - map created\n");
		return 1;
	}
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, fns[i], NULL);
	end = mono() + RUN_NS;
	while (mono() < end)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * MS }, NULL);
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);

	while (!cb_map_cursor_done(m, &cur))
		cb_map_visit(m, &cur, count_one, &rc);
	cb_map_stats(m, &st);

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

	CHECK(atomic_load(&walks) > 0 && atomic_load(&ticks) > 0 && atomic_load(&drains) > 0,
	      "all threads ran (walks %llu, ticks %llu, drains %llu)",
	      (unsigned long long)walks, (unsigned long long)ticks, (unsigned long long)drains);
	CHECK(atomic_load(&dup_reports) == 0, "no dump reported a session twice");
	for (int s = 0; s < CB_ST_COUNT; s++)
		CHECK(st.live[s] == rc.live[s], "gauge for state %d equals a recount (%llu vs %llu)",
		      s, (unsigned long long)st.live[s], (unsigned long long)rc.live[s]);
	CHECK(cb_map_live(m) == rc.total, "live count equals the sessions in the map (%llu)",
	      (unsigned long long)rc.total);
	CHECK(rc.total <= COOKIES, "never more sessions than the cap");
	CHECK(st.transitions[CB_ST_ACTIVE][CB_ST_STALE] > 0 &&
		      st.transitions[CB_ST_STALE][CB_ST_ACTIVE] > 0 && st.evicted > 0,
	      "the wheel staled, revived and evicted sessions meanwhile");
	cb_map_free(m);
	return failed ? 1 : 0;
}
