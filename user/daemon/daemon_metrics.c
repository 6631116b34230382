// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * daemon_metrics.c — every metric connbeatd exports, described once: the
 * same collection feeds GET /metrics and the `connbeat stats` reply
 * (metrics.h).
 *
 * Everything read here is a counter or a gauge kept on the side (map
 * counters, ingest and reconcile counters, histograms, the programs' per-CPU
 * stats array, bpf_prog_info): a scrape takes no shard lock and its cost
 * does not depend on the number of sessions. Parts not running (start-up,
 * a benchmark with a map only) are skipped or read as zero.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/daemon.h"
#include "common/log.h"
#include "common/names.h"
#include "core/state.h"

#pragma GCC poison u8 u16 u32 u64

static void one(struct cb_metrics_sink *k, const char *name, enum cb_metric_type type,
		const char *help, double v)
{
	k->family(k, name, type, help);
	k->sample(k, NULL, v);
}

static void sessions(struct cb_metrics_sink *k, struct cb_daemon *d)
{
	struct cb_map_stats ms;
	char l[96];
	uint64_t closed = 0;

	cb_map_stats(d->map, &ms);
	k->family(k, "connbeat_sessions", CB_METRIC_GAUGE,
		  "Sessions in the map by drain state (active, stale, draining, closed)");
	for (unsigned int st = 0; st < CB_ST_COUNT; st++) {
		snprintf(l, sizeof(l), "state=\"%s\"", cb_drain_state_name(st));
		k->sample(k, l, (double)ms.live[st]);
	}
	one(k, "connbeat_sessions_max", CB_METRIC_GAUGE,
	    "The session cap (--max-sessions); at the cap new sessions are refused",
	    (double)d->opts.max_sessions);
	one(k, "connbeat_sessions_opened_total", CB_METRIC_COUNTER,
	    "Sessions created (opened, seeded or found by reconciliation)", (double)ms.opened);
	for (unsigned int from = 0; from < CB_ST_COUNT; from++)
		closed += ms.transitions[from][CB_ST_CLOSED];
	one(k, "connbeat_sessions_closed_total", CB_METRIC_COUNTER, "Sessions that reached CLOSED",
	    (double)closed);
	one(k, "connbeat_sessions_reopened_total", CB_METRIC_COUNTER,
	    "CLOSED sessions given a new life by a reconnect on the same socket",
	    (double)ms.reopened);
	one(k, "connbeat_sessions_refused_total", CB_METRIC_COUNTER,
	    "New connections refused because the map was at --max-sessions (each once)",
	    (double)ms.refused);
	one(k, "connbeat_sessions_unowned", CB_METRIC_GAUGE,
	    "Sessions whose owner is not known yet (an owners pass will look)",
	    (double)ms.unowned);
	one(k, "connbeat_evictions_total", CB_METRIC_COUNTER,
	    "CLOSED sessions evicted (after --linger, or earlier to make room at the cap)",
	    (double)ms.evicted);
	one(k, "connbeat_evictions_early_total", CB_METRIC_COUNTER,
	    "CLOSED sessions evicted before their --linger ended, to make room at --max-sessions",
	    (double)ms.evicted_early);
	k->family(k, "connbeat_transitions_total", CB_METRIC_COUNTER,
		  "Drain-state transitions by (from, to)");
	for (unsigned int from = 0; from < CB_ST_COUNT; from++)
		for (unsigned int to = 0; to < CB_ST_COUNT; to++) {
			if (!cb_state_legal(from, to))
				continue;
			snprintf(l, sizeof(l), "from=\"%s\",to=\"%s\"", cb_drain_state_name(from),
				 cb_drain_state_name(to));
			k->sample(k, l, (double)ms.transitions[from][to]);
		}
	one(k, "connbeat_illegal_transitions_total", CB_METRIC_COUNTER,
	    "Drain-state transitions refused as illegal (a bug if it grows)", (double)ms.illegal);
	one(k, "connbeat_tick_entries_total", CB_METRIC_COUNTER,
	    "Timing-wheel entries looked at by ticks", (double)ms.tick_visited);
	one(k, "connbeat_tick_reslotted_total", CB_METRIC_COUNTER,
	    "Timing-wheel entries not due yet, re-slotted at their real deadline",
	    (double)ms.tick_reslotted);
	one(k, "connbeat_tick_budget_exhausted_total", CB_METRIC_COUNTER,
	    "Tick rounds that stopped on their work budget and carried work over",
	    (double)ms.tick_budget_hits);
	one(k, "connbeat_shard_lock_max_hold_seconds", CB_METRIC_GAUGE,
	    "Longest shard-lock hold seen in ticks, dumps and walks",
	    (double)ms.max_lock_hold_ns / 1e9);
}

static void rings(struct cb_metrics_sink *k, struct cb_daemon *d)
{
	static const unsigned int emitted[CB_RINGS] = { CB_STAT_EVENTS_EMITTED,
							CB_STAT_BEATS_EMITTED };
	static const unsigned int dropped[CB_RINGS] = { CB_STAT_EVENTS_DROPPED,
							CB_STAT_BEATS_DROPPED };
	struct cb_ingest_stats is = {};
	uint64_t bpf[CB_STAT_MAX] = {};
	bool have_bpf = d->loader && cb_loader_stats(d->loader, bpf) == 0;
	char l[64];

	if (d->ingest)
		cb_ingest_stats(d->ingest, &is);
	k->family(k, "connbeat_events_total", CB_METRIC_COUNTER,
		  "Records read from each BPF ring by connbeatd");
	for (unsigned int r = 0; r < CB_RINGS; r++) {
		snprintf(l, sizeof(l), "ring=\"%s\"", cb_ring_name(r));
		k->sample(k, l, (double)is.read[r]);
	}
	k->family(k, "connbeat_events_invalid_total", CB_METRIC_COUNTER,
		  "Records rejected by validation (size, version, fields) and dropped");
	for (unsigned int r = 0; r < CB_RINGS; r++) {
		snprintf(l, sizeof(l), "ring=\"%s\"", cb_ring_name(r));
		k->sample(k, l, (double)is.invalid[r]);
	}
	if (have_bpf) {
		k->family(k, "connbeat_ringbuf_emitted_total", CB_METRIC_COUNTER,
			  "Records the BPF programs submitted to each ring (since the pinned "
			  "maps were created)");
		for (unsigned int r = 0; r < CB_RINGS; r++) {
			snprintf(l, sizeof(l), "ring=\"%s\"", cb_ring_name(r));
			k->sample(k, l, (double)bpf[emitted[r]]);
		}
		k->family(k, "connbeat_ringbuf_dropped_total", CB_METRIC_COUNTER,
			  "Records the BPF programs could not reserve because the ring was "
			  "full (since the pinned maps were created); events drops are "
			  "repaired by reconciliation");
		for (unsigned int r = 0; r < CB_RINGS; r++) {
			snprintf(l, sizeof(l), "ring=\"%s\"", cb_ring_name(r));
			k->sample(k, l, (double)bpf[dropped[r]]);
		}
		one(k, "connbeat_heartbeats_update_failed_total", CB_METRIC_COUNTER,
		    "Inserts into the heartbeats map that failed",
		    (double)bpf[CB_STAT_MAP_UPDATE_FAILED]);
		one(k, "connbeat_heartbeats_seeded_total", CB_METRIC_COUNTER,
		    "Heartbeats entries created by the data path (socket older than the "
		    "programs, or its open was missed)",
		    (double)bpf[CB_STAT_MAP_SEEDED]);
		one(k, "connbeat_close_records_lost_total", CB_METRIC_COUNTER,
		    "CLOSE records the programs could not reserve (the close is reported at "
		    "socket destruction, and its netns repaired)",
		    (double)bpf[CB_STAT_CLOSE_LOST]);
	}
	k->family(k, "connbeat_ringbuf_pending_bytes", CB_METRIC_GAUGE,
		  "Bytes waiting in each ring right now");
	for (unsigned int r = 0; r < CB_RINGS; r++) {
		snprintf(l, sizeof(l), "ring=\"%s\"", cb_ring_name(r));
		k->sample(k, l, d->ingest ? (double)cb_ingest_ring_pending(d->ingest, r) : 0);
	}
	k->family(k, "connbeat_ringbuf_size_bytes", CB_METRIC_GAUGE, "Size of each ring");
	for (unsigned int r = 0; r < CB_RINGS; r++) {
		snprintf(l, sizeof(l), "ring=\"%s\"", cb_ring_name(r));
		k->sample(k, l, d->ingest ? (double)cb_ingest_ring_size(d->ingest, r) : 0);
	}
	k->family(k, "connbeat_ingest_batch_seconds", CB_METRIC_HISTOGRAM,
		  "Time to apply one batch of ring records");
	k->histogram(k, NULL, &d->ingest_hist);
	k->family(k, "connbeat_tick_seconds", CB_METRIC_HISTOGRAM,
		  "Time of one timing-wheel tick: one budgeted pass over the shards (a "
		  "period with more due sessions than one budget takes several)");
	k->histogram(k, NULL, &d->tick_hist);
}

static void reconcile(struct cb_metrics_sink *k, struct cb_daemon *d)
{
	struct cb_reconcile_stats rs = {};
	char l[64];

	if (d->reconcile)
		cb_reconcile_stats(d->reconcile, &rs);
	k->family(k, "connbeat_reconcile_corrections_total", CB_METRIC_COUNTER,
		  "What the kernel failed to report and reconciliation repaired, by kind");
	for (unsigned int c = 0; c < CB_CORR_COUNT; c++) {
		snprintf(l, sizeof(l), "kind=\"%s\"", cb_correction_name(c));
		k->sample(k, l, (double)rs.corrections[c]);
	}
	one(k, "connbeat_reconcile_passes_total", CB_METRIC_COUNTER,
	    "Completed reconciliation passes", (double)rs.passes);
	one(k, "connbeat_reconcile_failures_total", CB_METRIC_COUNTER,
	    "Reconciliation passes in which a step failed (see the log)", (double)rs.failures);
	one(k, "connbeat_reconcile_last_duration_seconds", CB_METRIC_GAUGE,
	    "Duration of the last reconciliation pass", (double)rs.last_pass_ns / 1e9);
	one(k, "connbeat_reconcile_repairs_total", CB_METRIC_COUNTER,
	    "Network namespaces dumped whole and repaired because records were lost there",
	    (double)rs.repairs);
	one(k, "connbeat_reconcile_lookups_total", CB_METRIC_COUNTER,
	    "Sockets looked up one by one in the kernel (verifications, remnants, queries)",
	    (double)rs.lookups);
	one(k, "connbeat_sessions_seeded_total", CB_METRIC_COUNTER,
	    "Sessions found at start-up (opened before connbeatd)", (double)rs.seeded);
	one(k, "connbeat_netns", CB_METRIC_GAUGE,
	    "Network namespaces tracked (the daemon's own, every process's, /run/netns)",
	    (double)rs.netns);
	k->family(k, "connbeat_netns_dump_failures_total", CB_METRIC_COUNTER,
		  "Network namespaces that could not be read, by reason (nothing is changed there)");
	for (unsigned int c = 0; c < CB_DUMPFAIL_COUNT; c++) {
		snprintf(l, sizeof(l), "reason=\"%s\"", cb_dump_failure_name(c));
		k->sample(k, l, (double)rs.dump_failures[c]);
	}
	one(k, "connbeat_sweep_cycles_total", CB_METRIC_COUNTER,
	    "Complete background sweeps (every socket of every netns read once)",
	    (double)rs.sweep_cycles);
	one(k, "connbeat_sweep_sockets_total", CB_METRIC_COUNTER, "Sockets read by the sweep",
	    (double)rs.sweep_sockets);
	one(k, "connbeat_sweep_budget_sockets", CB_METRIC_GAUGE,
	    "Sockets one sweep tick may read now (sessions x interval / --sweep-period)",
	    (double)rs.sweep_budget);
	one(k, "connbeat_sweep_tick_max_sockets", CB_METRIC_GAUGE,
	    "Most sockets one sweep tick has read", (double)rs.sweep_tick_max);
	one(k, "connbeat_sweep_last_cycle_seconds", CB_METRIC_GAUGE,
	    "Duration of the last complete sweep", (double)rs.sweep_last_cycle_ns / 1e9);
	one(k, "connbeat_remnants", CB_METRIC_GAUGE,
	    "FIN_WAIT2 timewait remnants watched (sessions DRAINING until the kernel drops them)",
	    (double)rs.remnants);
	one(k, "connbeat_owners_passes_total", CB_METRIC_COUNTER,
	    "Owners passes (which process holds each socket)", (double)rs.owners_passes);
	one(k, "connbeat_owners_last_pass_seconds", CB_METRIC_GAUGE,
	    "Duration of the last owners pass", (double)rs.owners_last_ns / 1e9);
	one(k, "connbeat_owners_set_total", CB_METRIC_COUNTER,
	    "Sessions given (or corrected to) the owner an owners pass found",
	    (double)rs.owners_set);
	one(k, "connbeat_heartbeats_entries", CB_METRIC_GAUGE,
	    "Entries of the pinned heartbeats map read at start-up", (double)rs.heartbeats);
	one(k, "connbeat_heartbeats_capacity", CB_METRIC_GAUGE,
	    "Capacity of the heartbeats map (LRU: the oldest entries go when it is full)",
	    (double)d->opts.max_sessions);
}

static void actions(struct cb_metrics_sink *k, struct cb_daemon *d)
{
	struct cb_events_stats es;

	cb_events_stats(d->events, &es);
	one(k, "connbeat_kills_total", CB_METRIC_COUNTER,
	    "Connections destroyed by connbeat kill (and drain --kill-after)",
	    (double)atomic_load_explicit(&d->kills, memory_order_relaxed));
	one(k, "connbeat_events_subscribers", CB_METRIC_GAUGE,
	    "Clients streaming connbeat events now", (double)es.subscribers);
	one(k, "connbeat_events_delivered_total", CB_METRIC_COUNTER,
	    "Lifecycle events sent to connbeat events clients", (double)es.delivered);
	one(k, "connbeat_events_missed_total", CB_METRIC_COUNTER,
	    "Lifecycle events a slow connbeat events client missed (it was told)",
	    (double)es.missed);
	k->family(k, "connbeat_close_rtt_seconds", CB_METRIC_HISTOGRAM,
		  "Smoothed RTT of connections as they close (the kernel's srtt)");
	k->histogram(k, NULL, &d->rtt_hist);
}

static void programs(struct cb_metrics_sink *k, struct cb_daemon *d)
{
	struct cb_prog_stats ps[CB_LOADER_MAX_PROGS];
	int n = d->loader ? cb_loader_prog_stats(d->loader, ps, CB_LOADER_MAX_PROGS) : 0;
	char l[64];

	if (n <= 0)
		return;
	k->family(k, "connbeat_bpf_prog_runs_total", CB_METRIC_COUNTER,
		  "Runs of each BPF program (counts only while sysctl kernel.bpf_stats_enabled=1)");
	for (int i = 0; i < n; i++) {
		snprintf(l, sizeof(l), "prog=\"%.16s\"", ps[i].name);
		k->sample(k, l, (double)ps[i].run_cnt);
	}
	k->family(k, "connbeat_bpf_prog_run_seconds_total", CB_METRIC_COUNTER,
		  "Time spent in each BPF program (counts only while sysctl "
		  "kernel.bpf_stats_enabled=1)");
	for (int i = 0; i < n; i++) {
		snprintf(l, sizeof(l), "prog=\"%.16s\"", ps[i].name);
		k->sample(k, l, (double)ps[i].run_time_ns / 1e9);
	}
	k->family(k, "connbeat_bpf_prog_recursion_misses_total", CB_METRIC_COUNTER,
		  "Runs of each BPF program the kernel skipped because it was already running "
		  "on that CPU");
	for (int i = 0; i < n; i++) {
		snprintf(l, sizeof(l), "prog=\"%.16s\"", ps[i].name);
		k->sample(k, l, (double)ps[i].recursion_misses);
	}
}

void cb_daemon_collect(struct cb_metrics_sink *k, void *ctx)
{
	struct cb_daemon *d = ctx;
	char l[128];

	sessions(k, d);
	rings(k, d);
	reconcile(k, d);
	actions(k, d);
	programs(k, d);
	one(k, "connbeat_control_clients", CB_METRIC_GAUGE,
	    "Clients connected to the control socket now",
	    d->control ? (double)cb_control_clients(d->control) : 0);
	one(k, "connbeat_control_clients_total", CB_METRIC_COUNTER,
	    "Clients accepted on the control socket",
	    d->control ? (double)cb_control_accepted(d->control) : 0);
	one(k, "connbeat_control_rejected_total", CB_METRIC_COUNTER,
	    "Clients turned away (too many connected)",
	    d->control ? (double)cb_control_rejected(d->control) : 0);
	one(k, "connbeat_control_bad_requests_total", CB_METRIC_COUNTER,
	    "Malformed or refused control requests",
	    (double)atomic_load_explicit(&d->requests[0], memory_order_relaxed));
	one(k, "connbeat_config_reloads_total", CB_METRIC_COUNTER, "SIGHUP reloads",
	    (double)atomic_load_explicit(&d->reloads, memory_order_relaxed));
	one(k, "connbeat_start_time_seconds", CB_METRIC_GAUGE,
	    "When connbeatd started (Unix time)", d->start_unix);
	k->family(k, "connbeat_build_info", CB_METRIC_GAUGE, "connbeat's version; always 1");
	snprintf(l, sizeof(l), "version=\"%s\"", CONNBEAT_VERSION);
	k->sample(k, l, 1);
}
