/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * reconcile.h — keep the session map true to the kernel, in every network
 * namespace, at a cost that grows with what changes, not with how many
 * connections there are.
 *
 * The programs see every connection of every netns and say so in lossless
 * records; what they cannot report (a full ring, a failed insert, a run the
 * kernel skipped, connections older than the daemon) is repaired here, with
 * sock_diag in each netns (kernel/netns.h enters it: a sock_diag socket
 * answers for the netns it was made in — why not iter/tcp: it is
 * per-netns too, and sock_diag also gives exact lookups by cookie):
 *
 *  - Start-up (cb_reconcile_seed): every netns reachable now is dumped
 *    whole, the pinned heartbeats map read once (clocks and owners of the
 *    connections the programs saw before a restart), and the owners pass run.
 *  - Every --reconcile-interval (cb_reconcile_pass, on its own thread):
 *    1. discovery (kernel/netns.h, O(processes + namespaces)): a netns seen
 *       for the first time is dumped whole now; one gone for two discoveries
 *       in a row is forgotten and its open sessions closed once;
 *    2. loss: the programs count every lifecycle record they could not
 *       deliver under its netns (the pinned `lost` map); a netns whose count
 *       grew is dumped whole now and repaired; every netns is, when the
 *       loss has no netns to name (the map was full: now; a recursion
 *       miss: at most once per miss_repair_passes);
 *    3. remnants: FIN_WAIT2 timewait remnants (design.md §3) are looked up
 *       one by one; a remnant that is gone (or became TIME_WAIT) closes its
 *       session — the end of a remnant is not a correction;
 *    4. the sweep: drift nobody reported (a skipped run, a socket the
 *       programs never saw) is found by one budgeted step of a background
 *       sweep that reads every socket of every netns once per
 *       --sweep-period, like nf_conntrack's gc_worker: a tick reads at most
 *       `budget` sockets (sessions × interval / period, at least 64), the
 *       kernel keeps the dump's place between ticks, and a cycle starts at
 *       most once per period (counted in ticks × interval: a cycle of few
 *       sockets waits for the rest of its period). When a cycle is
 *       complete, the open sessions its dumps did not meet and that were
 *       silent since their netns was dumped are looked up exactly, by cookie
 *       and tuple, and closed only if the kernel has no such socket (one
 *       dump alone is never trusted: inet_diag can skip a live socket whose
 *       hash chain changes mid-dump). Worst case, a close nobody reported
 *       stays listed for two sweep periods plus an interval. Sessions of a
 *       netns no discovery reaches (gone before one saw it) that were
 *       silent all the cycle and whose heartbeats entry is gone (the
 *       programs delete it at destroy, even when the CLOSE is lost) are
 *       closed the same way;
 *    5. owners: when sessions of unknown owner exist, an owners pass
 *       (kernel/owners.h), at most every max(interval, 20 × its last
 *       duration).
 *  - What the sweep finds that contradicts the map (a socket it lacks, a
 *    connection it has as open that the kernel has as closing) is looked
 *    up again at the next tick before it is applied: a record in flight on
 *    the rings is not a correction. Corrections count only what the kernel
 *    really failed to report.
 *  - A repair acts only on sessions of a netns it has just dumped
 *    completely; a failed dump is counted (by reason) and changes nothing.
 *
 * Every step takes one shard lock per socket or per chunk (cb_map_visit),
 * never for long, and holds no lock across a system call.
 */
#ifndef CONNBEAT_RECONCILE_H
#define CONNBEAT_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/session_map.h"
#include "kernel/owners.h"
#include "kernel/sock_diag.h"

/* A record's time may lag the truth by one tick of the programs' clock. */
#define CB_RECONCILE_MARGIN_NS (50ull * 1000 * 1000)
/* 5 minutes: at 1M sockets in one netns each sweep step (every 5 s) reads
 * 17 000 of them, ~0.5% of a core here; what it finds is only what the
 * kernel failed to report and the programs could not count. */
#define CB_DEFAULT_SWEEP_PERIOD_NS (300ull * 1000 * 1000 * 1000)
/* Passes between two repairs of every netns for skipped program runs
 * (recursion misses): a minute at the default interval. */
#define CB_DEFAULT_MISS_REPAIR_PASSES 12u
#define CB_SWEEP_MIN_BUDGET 64

enum cb_correction {
	CB_CORR_MISSING_OPEN = 0,     /* a socket the map lacked (its OPEN was lost) */
	CB_CORR_STATE = 1,            /* a close that began unreported (its STATE was lost) */
	CB_CORR_MISSED_CLOSE = 2,     /* a session whose socket is gone (its CLOSE was lost) */
	CB_CORR_ORPHAN_HEARTBEAT = 3, /* a heartbeats entry of a socket that is gone */
	CB_CORR_COUNT = 4,
};

/* Why a netns could not be dumped (a low-cardinality metric label). */
enum cb_dump_failure {
	CB_DUMPFAIL_GONE = 0,   /* it vanished before we got in */
	CB_DUMPFAIL_DENIED = 1, /* not allowed in (EPERM/EACCES) */
	CB_DUMPFAIL_ERROR = 2,  /* sock_diag failed */
	CB_DUMPFAIL_COUNT = 3,
};

struct cb_reconcile_stats {
	uint64_t passes;
	uint64_t failures; /* passes in which some step failed (logged) */
	uint64_t corrections[CB_CORR_COUNT];
	uint64_t seeded;                 /* sessions added by the start-up seeding */
	uint64_t netns;                  /* namespaces tracked now */
	uint64_t dump_failures[CB_DUMPFAIL_COUNT];
	uint64_t repairs;                /* whole-netns repairs after reported loss */
	uint64_t sweep_cycles;           /* complete sweep cycles */
	uint64_t sweep_sockets;          /* sockets the sweep read, in all */
	uint64_t sweep_budget;           /* sockets per tick, now */
	uint64_t sweep_tick_max;         /* most sockets one tick read */
	uint64_t sweep_last_cycle_ns;    /* duration of the last complete cycle */
	uint64_t remnants;               /* FIN_WAIT2 remnants watched now */
	uint64_t lookups;                /* exact lookups (verification, remnants, queries) */
	uint64_t owners_passes;
	uint64_t owners_last_ns;
	uint64_t owners_set;             /* sessions given (or corrected to) an owner */
	uint64_t heartbeats;             /* heartbeats entries read at start-up */
	uint64_t last_pass_ns;
};

struct cb_reconcile_opts {
	struct cb_map *map;
	int heartbeats_fd;        /* the pinned heartbeats map; -1: none */
	int lost_fd;              /* the pinned lost map; -1: none */
	int stats_fd;             /* the pinned stats array; -1: none */
	uint64_t interval_ns;     /* between passes of the thread */
	uint64_t sweep_period_ns; /* every socket once per period */
	struct cb_owners *owners; /* NULL: no owners pass */
	/* each close applied here (a remnant's end, a close the rings lost),
	 * on the applying thread, after the map has it: NULL, or the daemon's
	 * events stream (the ingest thread hands it the rings' records) */
	void (*on_close)(const struct cb_record *rec, void *ctx);
	/* wait until the rings' records written so far are applied (the
	 * daemon's cb_ingest_sync): called before sessions whose sockets are
	 * gone are closed, since each one's own CLOSE, written before the
	 * kernel unhashed it, may still wait in a ring; then only the closes
	 * the rings lost are made here. NULL: nothing to wait for */
	void (*sync_rings)(void *ctx);
	/* runs of the lifecycle programs the kernel skipped (recursion
	 * misses, in all): records lost with no netns to blame, so when the
	 * count grows every netns is repaired. NULL: none can be known */
	uint64_t (*lifecycle_misses)(void *ctx);
	/* at most one such repair of every netns per this many passes (the
	 * first at once); 0: CB_DEFAULT_MISS_REPAIR_PASSES */
	uint32_t miss_repair_passes;
	void *ctx;
	/* tests only (NULL in the daemon): called when a batch of exact
	 * lookups has answered and before its sightings are applied — the
	 * window in which a socket may close and its CLOSE be read first */
	void (*on_sighted)(void *ctx);
};

struct cb_reconciler;

/* "missing_open", "state", "missed_close", "orphan_heartbeat". */
const char *cb_correction_name(unsigned int kind);
/* "gone", "denied", "error". */
const char *cb_dump_failure_name(unsigned int reason);

int cb_reconcile_new(struct cb_reconciler **out, const struct cb_reconcile_opts *o);
/* Start-up: seed the map from every netns, the heartbeats map and the
 * owners pass, on the caller's thread. 0 or -errno (logged); a netns that
 * cannot be dumped is counted and skipped. */
int cb_reconcile_seed(struct cb_reconciler *r);
/* One pass now, on the caller's thread (the thread runs one every
 * interval). 0, or -errno when a step failed (logged, counted). */
int cb_reconcile_pass(struct cb_reconciler *r);
int cb_reconcile_start(struct cb_reconciler *r);
void cb_reconcile_set_interval(struct cb_reconciler *r, uint64_t interval_ns);
void cb_reconcile_stop(struct cb_reconciler *r);
void cb_reconcile_free(struct cb_reconciler *r);
void cb_reconcile_stats(const struct cb_reconciler *r, struct cb_reconcile_stats *out);

/* The ingest thread saw a CLOSE with CB_RF_REMNANT (applied already). */
void cb_reconcile_note_remnant(struct cb_reconciler *r, const struct cb_record *rec);

/* ---- for queries (any thread) ---- */

/* A socket to look up: the netns it lives in and its key. */
struct cb_lookup {
	uint32_t netns;
	struct cb_diag_key key;
};

/* A growable array of them: push 0 or -ENOMEM; free empties it. */
struct cb_lookups {
	struct cb_lookup *v;
	size_t n, cap;
};
int cb_lookups_push(struct cb_lookups *l, const struct cb_lookup *x);
/* The lookup key of a session (call with its shard lock held). */
void cb_lookup_of_session(const struct cb_map *m, const struct cb_session *s, struct cb_lookup *l);
void cb_lookups_free(struct cb_lookups *l);

/* Exact lookups, grouped by netns, each netns entered once: fn once per
 * socket found (match by cookie). A netns not tracked yet (born since the
 * last discovery) is looked for by a discovery now; one that cannot be
 * reached or entered reports nothing for its sockets. Returns how many were
 * found, or -errno. Holds no lock across the lookups. */
int cb_reconcile_lookup(struct cb_reconciler *r, const struct cb_lookup *items, size_t n,
			cb_diag_fn fn, void *ctx);

/* Destroy sockets (sock_diag SOCK_DESTROY in each one's netns): res[i] 0
 * when item i was killed, else -errno. 0, -EOPNOTSUPP (the kernel cannot),
 * or -errno. */
int cb_reconcile_destroy(struct cb_reconciler *r, struct cb_lookup *items, size_t n, int *res);

/* Make sure an owners pass has completed within max_age_ns (run one now if
 * not, or wait for the one running). 0, -ENOTSUP without owners, -errno. */
int cb_reconcile_owners(struct cb_reconciler *r, uint64_t max_age_ns);

/* The netns inodes tracked now, for the CLI's --netns and names. */
uint32_t cb_reconcile_netns_count(const struct cb_reconciler *r);

#endif /* CONNBEAT_RECONCILE_H */
