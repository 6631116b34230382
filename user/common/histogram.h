/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * histogram.h — latency histograms that hot paths observe into without
 * taking anything: fixed upper bounds, relaxed atomic counters (one
 * fetch-add per bucket, count and sum), read whole by a scrape at any time.
 * The daemon's metrics (daemon/metrics.h) render them as Prometheus
 * histograms; the ingest thread and the wheel tick observe into them.
 */
#ifndef CONNBEAT_HISTOGRAM_H
#define CONNBEAT_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define CB_HIST_MAX_BUCKETS 16

struct cb_histogram {
	const double *bounds; /* upper bounds in seconds, ascending */
	int nbounds;
	_Atomic uint64_t bucket[CB_HIST_MAX_BUCKETS + 1]; /* last: +Inf */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
};

/* Buckets from 10 µs to 1 s, for tick and ingest-batch durations. */
extern const double cb_hist_bounds_latency[];
extern const int cb_hist_nbounds_latency;

void cb_histogram_init(struct cb_histogram *h, const double *bounds, int nbounds);
void cb_histogram_observe_ns(struct cb_histogram *h, uint64_t ns);

#endif /* CONNBEAT_HISTOGRAM_H */
