/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * daemon.h — what the parts of connbeatd share: one struct cb_daemon,
 * built by connbeatd.c, read by the request handlers (serve.c) and the
 * metrics collector (daemon_metrics.c).
 *
 * Threads: main (signals, wheel ticks), ingest (ring_ingest.c), reconcile
 * (reconcile.c), one per control client (control.c), libmicrohttpd's.
 * Everything here is either set before the threads start and then only
 * read, or an atomic counter.
 */
#ifndef CONNBEAT_DAEMON_H
#define CONNBEAT_DAEMON_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/filter.h"
#include "common/version.h"
#include "daemon/control.h"
#include "daemon/events.h"
#include "kernel/loader.h"
#include "daemon/metrics.h"
#include "daemon/options.h"
#include "kernel/reconcile.h"
#include "kernel/ring_ingest.h"
#include "core/session_map.h"


struct cb_daemon {
	struct cb_options opts; /* in force; the timeouts change on SIGHUP (main thread) */
	struct cb_map *map;
	struct cb_loader *loader;
	struct cb_ingest *ingest;
	struct cb_reconciler *reconcile;
	struct cb_owners *owners;
	struct cb_cgroups *cgroups;  /* cgroup ids to paths; NULL without cgroup2 */
	struct cb_events *events;    /* the `connbeat events` streams */
	struct cb_control *control;
	struct cb_metrics_server *metrics;
	struct cb_histogram tick_hist;   /* one wheel tick (all its rounds) */
	struct cb_histogram ingest_hist; /* one ingest batch */
	struct cb_histogram rtt_hist;    /* srtt of connections as they close */
	uint64_t bpf_base[CB_STAT_MAX];  /* the programs' counters at start-up */
	uint64_t start_ns;
	double start_unix;
	_Atomic uint64_t requests[CB_MSG_REQ_MAX]; /* by request type; 0: bad */
	_Atomic uint64_t reloads;
	_Atomic uint64_t kills; /* sockets destroyed by `connbeat kill` */
};

/* Serve one control client (cb_control_serve_fn; ctx = struct cb_daemon). */
void cb_serve_client(int fd, const struct ucred *peer, void *ctx);

/* The handlers of serve.c that live in files of their own. */
int cb_serve_summary(struct cb_daemon *d, int fd, const struct cb_summary_req *req);
int cb_serve_events(struct cb_daemon *d, int fd, const struct cb_events_req *req);
/* What serve.c shares with them: a session as a row (under its shard
 * lock), a filter made ready for the map (free *bits afterwards). */
void cb_serve_to_row(struct cb_daemon *d, const struct cb_session *s, uint64_t now,
		     struct cb_row *r);
int cb_serve_prepare(struct cb_daemon *d, const struct cb_filter *f, struct cb_match *mt,
		     uint64_t **bits);

/* Every metric of the daemon (cb_metrics_collect_fn; ctx = struct cb_daemon). */
void cb_daemon_collect(struct cb_metrics_sink *sink, void *ctx);

#endif /* CONNBEAT_DAEMON_H */
