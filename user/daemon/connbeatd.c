// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connbeatd — the connbeat daemon.
 *
 * Settings come from one table (options.c) shared by the command line, the
 * --config file and SIGHUP reloads. With --trace it only loads, pins and
 * attaches the BPF programs and prints every kernel record as a line.
 *
 * The session daemon, in start-up order (each step's failure is logged with
 * what to do, and undoes the steps before it):
 *   1. load and pin the programs and maps (loader.c), then attach them:
 *      from here on every record waits in the rings;
 *   2. seed the map from sock_diag in every network namespace, the pinned
 *      heartbeats map and an owners pass (kernel/reconcile.c): connections
 *      older than the daemon, or every open one after a restart. Anything
 *      that changed meanwhile is in the rings, so no connection falls in a
 *      gap between the dump and the first read;
 *   3. start the ingest thread (ring_ingest.c) and the reconcile thread;
 *   4. serve the control socket (control.c + serve.c) and /metrics;
 *   5. keep only the capabilities the work in other namespaces needs
 *      (caps.h), say "ready:".
 * Then the main thread ticks the timing wheel every --tick and waits for
 * signals: SIGHUP reloads --config, SIGTERM/SIGINT stop: no new clients,
 * the programs detached, the rings drained to the last record.
 *
 * Exit codes (design.md §5): 0 after SIGTERM/SIGINT and draining the rings,
 * 1 on a runtime failure, 2 on a usage or configuration error.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/caps.h"
#include "kernel/cgroup.h"
#include "daemon/daemon.h"
#include "kernel/loader.h"
#include "common/log.h"
#include "daemon/options.h"
#include "daemon/trace.h"

/* Kernel-style typedefs must not leak into user code (style.md #10). */
#pragma GCC poison u8 u16 u32 u64

#define EXIT_USAGE 2
/* How long the reconciler waits for the ingest thread (sync_rings): a
 * pass over the rings takes milliseconds */
#define CB_SYNC_RINGS_MS 1000

static void loader_opts(const struct cb_options *o, struct cb_loader_opts *lo)
{
	*lo = (struct cb_loader_opts){
		.pin_dir = o->pin_dir,
		.max_sessions = (uint32_t)o->max_sessions,
		/* 0 in the loader means "default": 1 ns means every event */
		.beat_interval_ns = o->beat_interval_ns ? o->beat_interval_ns : 1,
		.events_ring_bytes = (uint32_t)o->events_ring_size,
		.beats_ring_bytes = (uint32_t)o->beats_ring_size,
		.verbose = o->verbose,
	};
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run_trace(const struct cb_options *o)
{
	struct cb_loader_opts lo;
	struct cb_loader *l = NULL;
	int err;

	/* stdout is flushed after each batch by the tracer. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	loader_opts(o, &lo);
	err = cb_loader_open(&lo, &l);
	if (err)
		return 1;
	err = cb_loader_attach(l);
	if (!err)
		err = cb_trace_run(l, stdout);
	cb_loader_close(l);
	return err ? 1 : 0;
}

/* One wheel period: budgeted ticks (each ≤ ~0.5 ms, carry-over between
 * them) until nothing due is left, for at most half the period, so that a
 * huge backlog is spread over several periods instead of starving the
 * signals. */
static void tick(struct cb_daemon *d)
{
	uint64_t t0 = mono_ns(), t = t0, until = t0 + d->opts.tick_ns / 2;
	bool more;

	do {
		more = cb_map_tick(d->map, t);
		cb_histogram_observe_ns(&d->tick_hist, mono_ns() - t);
		t = mono_ns();
	} while (more && t < until);
}

static void reload(struct cb_daemon *d, int argc, char **argv)
{
	struct cb_options next;

	cb_info("SIGHUP: reloading %s", d->opts.config);
	if (cb_options_resolve(&next, argc, argv)) {
		cb_err("reload failed (see above); keeping the current settings");
		return;
	}
	atomic_fetch_add_explicit(&d->reloads, 1, memory_order_relaxed);
	if (!cb_options_reload(&d->opts, &next))
		return;
	cb_log_set_level(d->opts.verbose ? CB_LOG_DEBUG : CB_LOG_INFO);
	cb_map_set_timeouts(d->map, d->opts.idle_ns, d->opts.idle_basis_any,
			    d->opts.drain_timeout_ns, d->opts.linger_ns);
	cb_reconcile_set_interval(d->reconcile, d->opts.reconcile_ns);
}

/* Tick until SIGTERM/SIGINT (blocked in every thread, taken here). */
static void main_loop(struct cb_daemon *d, const sigset_t *sigs, int argc, char **argv)
{
	uint64_t next = mono_ns() + d->opts.tick_ns, now;
	struct timespec ts;
	int sig;

	for (;;) {
		now = mono_ns();
		if (now >= next) {
			tick(d);
			next += d->opts.tick_ns;
			if (next <= now) /* fell behind (a stopped process): no burst */
				next = now + d->opts.tick_ns;
			continue;
		}
		ts.tv_sec = (time_t)((next - now) / 1000000000ull);
		ts.tv_nsec = (long)((next - now) % 1000000000ull);
		sig = sigtimedwait(sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			cb_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			return;
		}
		if (sig == SIGHUP)
			reload(d, argc, argv);
	}
}

/* The ingest thread's hook: remnants to watch, events to stream. */
static void after_apply(const struct cb_record *recs, unsigned int n, void *ctx)
{
	struct cb_daemon *d = ctx;

	for (unsigned int i = 0; i < n; i++) {
		if (recs[i].kind != CB_REC_CLOSE)
			continue;
		if (recs[i].flags & CB_RF_REMNANT)
			cb_reconcile_note_remnant(d->reconcile, &recs[i]);
		else if ((recs[i].flags & CB_RF_COUNTERS) && recs[i].ctr.srtt_us)
			cb_histogram_observe_ns(&d->rtt_hist, recs[i].ctr.srtt_us * 1000ull);
	}
	cb_events_publish(d->events, recs, n);
}

/* The reconciler's hook: the closes it applies (a remnant's end, a close
 * the rings lost) are streamed like the rings' own. */
static void after_reconcile_close(const struct cb_record *rec, void *ctx)
{
	struct cb_daemon *d = ctx;

	cb_events_publish(d->events, rec, 1);
}

/* The reconciler's wait before it closes sessions whose sockets are gone:
 * their own CLOSEs, in the rings still, are applied first. Seeding runs
 * before the ingest thread starts: then there is nothing to wait for. */
static void sync_rings(void *ctx)
{
	struct cb_daemon *d = ctx;
	int err = d->ingest ? cb_ingest_sync(d->ingest, CB_SYNC_RINGS_MS) : 0;

	if (err == -ETIMEDOUT)
		cb_dbg("the ingest thread did not answer within %d ms: closes still in the "
		       "rings are made by reconciliation instead (their counters follow)",
		       CB_SYNC_RINGS_MS);
}

/* The reconciler's loss signal the programs cannot count themselves: runs
 * of the lifecycle programs (the only ones whose records are the sessions'
 * opens and closes) the kernel skipped. */
static uint64_t lifecycle_recursion_misses(void *ctx)
{
	struct cb_daemon *d = ctx;
	struct cb_prog_stats ps[CB_LOADER_MAX_PROGS];
	int n = d->loader ? cb_loader_prog_stats(d->loader, ps, CB_LOADER_MAX_PROGS) : 0;
	uint64_t sum = 0;

	for (int i = 0; i < n; i++)
		if (!strcmp(ps[i].name, "cb_set_state") || !strcmp(ps[i].name, "cb_destroy"))
			sum += ps[i].recursion_misses;
	return sum;
}

static void describe_ready(struct cb_daemon *d, uint64_t seed_ns)
{
	struct cb_reconcile_stats rs;
	char metrics[80];

	cb_reconcile_stats(d->reconcile, &rs);
	if (d->metrics)
		snprintf(metrics, sizeof(metrics), "http://%s/metrics", d->opts.metrics);
	else
		snprintf(metrics, sizeof(metrics), "off");
	cb_info("ready: %llu sessions seeded from %llu network namespaces in %.1f ms; control "
		"socket %s; metrics %s; pin dir %s",
		(unsigned long long)rs.seeded, (unsigned long long)rs.netns, seed_ns / 1e6,
		d->opts.socket_path, metrics, cb_loader_pin_dir(d->loader));
}

static void report_stop(struct cb_daemon *d)
{
	struct cb_ingest_stats is;
	uint64_t st[CB_STAT_MAX];

	cb_ingest_stats(d->ingest, &is);
	if (cb_loader_stats(d->loader, st)) {
		cb_info("stopped: read events %llu beats %llu",
			(unsigned long long)is.read[CB_RING_EVENTS],
			(unsigned long long)is.read[CB_RING_BEATS]);
		return;
	}
	cb_info("stopped: read events %llu beats %llu; kernel emitted events %llu beats %llu "
		"(dropped events %llu beats %llu) while connbeatd ran",
		(unsigned long long)is.read[CB_RING_EVENTS],
		(unsigned long long)is.read[CB_RING_BEATS],
		(unsigned long long)(st[CB_STAT_EVENTS_EMITTED] - d->bpf_base[CB_STAT_EVENTS_EMITTED]),
		(unsigned long long)(st[CB_STAT_BEATS_EMITTED] - d->bpf_base[CB_STAT_BEATS_EMITTED]),
		(unsigned long long)(st[CB_STAT_EVENTS_DROPPED] - d->bpf_base[CB_STAT_EVENTS_DROPPED]),
		(unsigned long long)(st[CB_STAT_BEATS_DROPPED] - d->bpf_base[CB_STAT_BEATS_DROPPED]));
}

static int run_daemon(struct cb_daemon *d, int argc, char **argv)
{
	const struct cb_options *o = &d->opts;
	struct cb_map_config mc = {
		.max_sessions = o->max_sessions,
		.shards = o->shards,
		.tick_ns = o->tick_ns,
		.idle_ns = o->idle_ns,
		.idle_basis_any = o->idle_basis_any,
		.drain_timeout_ns = o->drain_timeout_ns,
		.linger_ns = o->linger_ns,
	};
	struct cb_reconcile_opts ro = {};
	struct cb_loader_opts lo;
	sigset_t sigs;
	uint64_t seed_start;
	int err, rc = 1;

	/* Signals are taken by the main thread only (sigtimedwait); every
	 * thread started below inherits this mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* a client that hangs up mid-reply is an EPIPE, not a death */
	signal(SIGPIPE, SIG_IGN);

	d->start_ns = mono_ns();
	d->start_unix = (double)time(NULL);
	cb_histogram_init(&d->tick_hist, cb_hist_bounds_latency, cb_hist_nbounds_latency);
	cb_histogram_init(&d->ingest_hist, cb_hist_bounds_latency, cb_hist_nbounds_latency);
	cb_histogram_init(&d->rtt_hist, cb_hist_bounds_latency, cb_hist_nbounds_latency);
	d->map = cb_map_new(&mc, d->start_ns);
	if (!d->map) {
		cb_err("cannot allocate the session map for --max-sessions %llu: %s",
		       (unsigned long long)o->max_sessions, strerror(errno));
		return 1;
	}
	loader_opts(o, &lo);
	if (cb_loader_open(&lo, &d->loader))
		return 1;
	cb_loader_stats(d->loader, d->bpf_base);
	if (cb_loader_attach(d->loader))
		return 1;

	/* cgroup ids to paths: a host without cgroup2 runs on with cgroup null */
	if (cb_cgroups_open(&d->cgroups) == -ENOENT)
		cb_info("no cgroup2 mount: rows have no cgroup");
	/* the owners pass needs the privileges of a loader: open it now; a
	 * kernel without task_file iterators runs on without it */
	if (cb_owners_open(&d->owners, o->verbose))
		cb_warn("owners: rows show the processes the programs saw only (connect(), "
			"send, receive); accepted sockets that never moved data have none");
	ro.map = d->map;
	ro.heartbeats_fd = cb_loader_map_fd(d->loader, CB_LMAP_HEARTBEATS);
	ro.lost_fd = cb_loader_map_fd(d->loader, CB_LMAP_LOST);
	ro.stats_fd = cb_loader_map_fd(d->loader, CB_LMAP_STATS);
	ro.interval_ns = o->reconcile_ns;
	ro.sweep_period_ns = o->sweep_period_ns;
	ro.owners = d->owners;
	ro.on_close = after_reconcile_close; /* d->events is made before its thread starts */
	ro.sync_rings = sync_rings;           /* d->ingest, likewise */
	ro.lifecycle_misses = lifecycle_recursion_misses;
	ro.ctx = d;
	if (cb_reconcile_new(&d->reconcile, &ro))
		return 1;
	seed_start = mono_ns();
	err = cb_reconcile_seed(d->reconcile);
	if (err)
		cb_warn("start-up seeding failed (%s): connections older than connbeatd appear "
			"only as they send data or as the background sweep finds them",
			strerror(-err));
	seed_start = mono_ns() - seed_start;

	if (cb_events_new(&d->events, d) ||
	    cb_ingest_start(&d->ingest, d->loader, d->map, &d->ingest_hist, after_apply, d))
		return 1;
	if (cb_reconcile_start(d->reconcile))
		goto stop;
	if (cb_control_start(&d->control, o->socket_path, cb_serve_client, d))
		goto stop;
	if (strcmp(o->metrics, "off") &&
	    cb_metrics_start(&d->metrics, o->metrics, cb_daemon_collect, d))
		goto stop;
	/* Everything privileged is done: the maps, programs and sockets are
	 * open. What is left needs no capability (ring reads, map lookups and
	 * deletes by fd, iterator reads, sock_diag in our own netns) but
	 * entering other network namespaces and destroying sockets there. */
	if (cb_caps_keep_only(CB_CAPS_KEPT))
		goto stop;
	describe_ready(d, seed_start);
	main_loop(d, &sigs, argc, argv);
	rc = cb_ingest_failed(d->ingest) ? 1 : 0;
stop:
	/* Stop taking work first, then the producers, then read what they
	 * left: after cb_ingest_stop() the rings are empty. */
	cb_control_stop(d->control);
	d->control = NULL;
	cb_metrics_stop(d->metrics);
	d->metrics = NULL;
	cb_reconcile_stop(d->reconcile);
	cb_ingest_stop(d->ingest);
	report_stop(d);
	return rc;
}

int main(int argc, char **argv)
{
	static struct cb_daemon d;
	int err, rc;

	cb_log_init("connbeatd", CB_LOG_INFO);
	err = cb_options_resolve(&d.opts, argc, argv);
	if (err > 0)
		return 0; /* --help */
	if (err)
		return EXIT_USAGE;
	cb_log_init("connbeatd", d.opts.verbose ? CB_LOG_DEBUG : CB_LOG_INFO);
	if (d.opts.trace)
		return run_trace(&d.opts);

	rc = run_daemon(&d, argc, argv);
	cb_ingest_free(d.ingest);
	cb_reconcile_free(d.reconcile);
	cb_owners_close(d.owners);
	cb_events_free(d.events);
	cb_cgroups_close(d.cgroups);
	cb_loader_close(d.loader);
	cb_map_free(d.map);
	return rc;
}
