// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench_scrape — what a Prometheus scrape every 100 ms costs ingestion.
 *
 * One thread upserts records into a session map holding 1M sessions (the
 * ingest path: cb_apply_record); in alternating rounds a second thread
 * renders the daemon's whole /metrics page (cb_daemon_collect through
 * cb_metrics_render) every 100 ms, or sleeps. Prints
 *   bench: ingest_with_scrapes_ratio R x     (median of rounds; target ≥ 0.95)
 *   bench: scrape_render_us U us             (median render time)
 * A scrape reads counters kept on the side and takes no shard lock, so
 * the ratio measures only cache and CPU interference.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/apply.h"
#include "daemon/daemon.h"
#include "daemon/metrics.h"
#include "core/session_map.h"

#pragma GCC poison u8 u16 u32 u64

#define LIVE (1u << 20)
#define ROUNDS 5
#define ROUND_NS (1500ull * 1000 * 1000)
#define NREC (1u << 22)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void mkrec(struct cb_record *r, unsigned int kind, uint64_t cookie, uint64_t ts)
{
	memset(r, 0, sizeof(*r));
	r->kind = (uint8_t)kind;
	r->version = CB_ABI_VERSION;
	r->size = sizeof(*r);
	r->cookie = cookie;
	r->ts_ns = ts;
	r->new_state = CB_TCP_ESTABLISHED;
	r->tuple.family = 4;
	r->tuple.sport = (uint16_t)(1024 + cookie % 60000);
	r->tuple.dport = 443;
	r->ctr.last_seen_ns = r->ctr.last_data_ns = ts;
	r->flags = CB_RF_COUNTERS;
	r->ctr.bytes_acked = cookie & 0xffff;
}

struct scraper {
	struct cb_daemon *d;
	_Atomic bool on, stop;
	uint64_t render_ns[4096];
	unsigned int renders;
};

static void *scrape_main(void *arg)
{
	struct scraper *s = arg;
	struct timespec pause = { 0, 100 * 1000 * 1000 };

	while (!atomic_load(&s->stop)) {
		if (atomic_load(&s->on)) {
			uint64_t t0 = now_ns();
			size_t len;
			char *page = cb_metrics_render(cb_daemon_collect, s->d, &len);

			if (s->renders < 4096)
				s->render_ns[s->renders++] = now_ns() - t0;
			free(page);
		}
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Upsert records for ROUND_NS; returns records per second. */
static double ingest_round(struct cb_map *m, const struct cb_record *recs)
{
	uint64_t t0 = now_ns(), t, n = 0;

	do {
		for (unsigned int i = 0; i < 4096; i++, n++)
			cb_apply_record(m, &recs[n % NREC], t0);
		t = now_ns();
	} while (t - t0 < ROUND_NS);
	return n * 1e9 / (double)(t - t0);
}

int main(void)
{
	struct cb_map_config cfg = {
		.max_sessions = 2 * LIVE,
		.tick_ns = 100 * 1000 * 1000,
		.idle_ns = 60ull * 1000 * 1000 * 1000,
		.drain_timeout_ns = 60ull * 1000 * 1000 * 1000,
		.linger_ns = 10ull * 1000 * 1000 * 1000,
	};
	static struct cb_daemon d;
	struct scraper s = { .d = &d };
	struct cb_record *recs = malloc(NREC * sizeof(*recs));
	double with[ROUNDS], without[ROUNDS], ratio[ROUNDS];
	uint64_t t0 = now_ns();
	pthread_t th;

	d.map = cb_map_new(&cfg, t0);
	if (!d.map || !recs) {
		fprintf(stderr, "bench_scrape: out of memory\n");
		return 1;
	}
	d.opts.max_sessions = cfg.max_sessions;
	cb_histogram_init(&d.tick_hist, cb_hist_bounds_latency, cb_hist_nbounds_latency);
	cb_histogram_init(&d.ingest_hist, cb_hist_bounds_latency, cb_hist_nbounds_latency);
	for (uint64_t c = 1; c <= LIVE; c++) {
		struct cb_record r;

		mkrec(&r, CB_REC_OPEN, c, t0);
		cb_apply_record(d.map, &r, t0);
	}
	/* mostly heartbeats of existing sessions */
	for (unsigned int i = 0; i < NREC; i++)
		mkrec(&recs[i], CB_REC_BEAT, 1 + next_rand() % LIVE, t0 + i);

	pthread_create(&th, NULL, scrape_main, &s);
	for (int r = 0; r < ROUNDS; r++) {
		atomic_store(&s.on, false);
		without[r] = ingest_round(d.map, recs);
		atomic_store(&s.on, true);
		with[r] = ingest_round(d.map, recs);
		ratio[r] = with[r] / without[r];
	}
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);

	qsort(with, ROUNDS, sizeof(double), cmp_double);
	qsort(without, ROUNDS, sizeof(double), cmp_double);
	qsort(ratio, ROUNDS, sizeof(double), cmp_double);
	qsort(s.render_ns, s.renders, sizeof(uint64_t), cmp_u64);
	printf("# 1M sessions; ingest %.2f M records/s without scrapes, %.2f M/s with a scrape "
	       "every 100 ms (medians of %d alternating rounds); %u scrapes\n",
	       without[ROUNDS / 2] / 1e6, with[ROUNDS / 2] / 1e6, ROUNDS, s.renders);
	printf("bench: ingest_with_scrapes_ratio %.3f x\n", ratio[ROUNDS / 2]);
	printf("bench: scrape_render_us %.1f us\n",
	       s.renders ? s.render_ns[s.renders / 2] / 1e3 : 0.0);
	cb_map_free(d.map);
	free(recs);
	return 0;
}
