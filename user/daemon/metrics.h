/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * metrics.h — counters out: one collector, two consumers.
 *
 * The daemon describes its metrics once, in a collect function that writes
 * families and samples into a struct cb_metrics_sink. Two sinks consume it:
 *  - the Prometheus text exposition format 0.0.4 (HELP and TYPE lines,
 *    histograms with _bucket/_sum/_count), served over HTTP on --metrics by
 *    libmicrohttpd;
 *  - the `connbeat stats` reply (name{labels} → value pairs; a histogram
 *    contributes its _count and _sum).
 *
 * Histograms (common/histogram.h) are lock-free, so a scrape reads them
 * without stopping anyone. A scrape never touches a shard lock: everything
 * it reads is a counter or a gauge maintained on the side.
 *
 * Labels stay low-cardinality (design.md §8): state names, ring names,
 * program names — never a connection.
 */
#ifndef CONNBEAT_METRICS_H
#define CONNBEAT_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/histogram.h"

/* ---- the sink the collector writes into ----------------------------------- */

enum cb_metric_type {
	CB_METRIC_COUNTER,
	CB_METRIC_GAUGE,
	CB_METRIC_HISTOGRAM,
};

struct cb_metrics_sink {
	/* Start a family: name without suffix, its type and help text. */
	void (*family)(struct cb_metrics_sink *s, const char *name, enum cb_metric_type type,
		       const char *help);
	/* One sample of the current family. `labels` is NULL or the text
	 * inside the braces, already escaped: state="stale",ring="events". */
	void (*sample)(struct cb_metrics_sink *s, const char *labels, double value);
	/* A histogram sample of the current family. */
	void (*histogram)(struct cb_metrics_sink *s, const char *labels,
			  const struct cb_histogram *h);
};

/* What the daemon provides: write every family into `sink`. */
typedef void (*cb_metrics_collect_fn)(struct cb_metrics_sink *sink, void *ctx);

/* Render a collection as Prometheus text into a malloc'ed buffer (*len
 * bytes, NUL-terminated). NULL on allocation failure. For tests and the
 * HTTP handler. */
char *cb_metrics_render(cb_metrics_collect_fn collect, void *ctx, size_t *len);

/* The same collection as (name{labels}, value) pairs for the `connbeat stats`
 * reply: values truncated to integers, a histogram as NAME_count and
 * NAME_sum_us. *out is malloc'ed (free() it). 0 or -ENOMEM. */
struct cb_stat_entry;
int cb_metrics_entries(cb_metrics_collect_fn collect, void *ctx, struct cb_stat_entry **out,
		       uint32_t *count);

/* ---- the HTTP endpoint ------------------------------------------------------- */

struct cb_metrics_server;
struct sockaddr_storage;

/* Parse "127.0.0.1:9477" / "[::1]:9477" (numeric addresses only). 0 or
 * -EINVAL. */
int cb_metrics_parse_addr(const char *addr, struct sockaddr_storage *ss, unsigned int *len);

/*
 * Serve GET /metrics on `addr` ("127.0.0.1:9477", "[::1]:9477",
 * "0.0.0.0:9477"). The socket is bound here, so a port in use or an address
 * that is not local fails now with a clear message: -EADDRINUSE,
 * -EADDRNOTAVAIL, ... (-EINVAL for a malformed address). The server runs
 * on libmicrohttpd's own thread; at most 16 connections, 10 s timeout.
 */
int cb_metrics_start(struct cb_metrics_server **out, const char *addr,
		     cb_metrics_collect_fn collect, void *ctx);
void cb_metrics_stop(struct cb_metrics_server *m);
/* The port actually bound (useful with port 0 in tests). */
uint16_t cb_metrics_port(const struct cb_metrics_server *m);
uint64_t cb_metrics_scrapes(const struct cb_metrics_server *m);

#endif /* CONNBEAT_METRICS_H */
