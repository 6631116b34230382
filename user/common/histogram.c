// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* histogram.c — see histogram.h. */
#include "common/histogram.h"

#include <string.h>

const double cb_hist_bounds_latency[] = { 0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
					  0.0025,  0.005,   0.01,   0.025,   0.05,   0.1,
					  0.25,    0.5,     1.0 };
const int cb_hist_nbounds_latency = sizeof(cb_hist_bounds_latency) / sizeof(double);

void cb_histogram_init(struct cb_histogram *h, const double *bounds, int nbounds)
{
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->nbounds = nbounds < CB_HIST_MAX_BUCKETS ? nbounds : CB_HIST_MAX_BUCKETS;
}

void cb_histogram_observe_ns(struct cb_histogram *h, uint64_t ns)
{
	double s = ns / 1e9;
	int i = 0;

	while (i < h->nbounds && s > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}
