/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * reconcile.h — keep the session map true to the kernel when records are
 * lost (a full ring, a daemon restart) and seed it at start-up.
 *
 * A pass, at start-up and then every --reconcile-interval on its own thread:
 *  1. sock_diag dump of this network namespace (IPv4 and IPv6, every
 *     session state). A socket the map lacks is added (`missing_open`); a
 *     session whose TCP state differs and that has had no record since the
 *     dump began is corrected (`state`); a CLOSED session whose socket is
 *     alive again is reopened (`missing_open`). The cookies seen go into a
 *     set.
 *  2. Batch read of the pinned `heartbeats` map: newer clocks and counters
 *     than the session has are merged (`last_seen` when that repaired a
 *     lost beat, i.e. moved the clock by more than a beat interval); an
 *     entry whose socket is gone everywhere is deleted (`orphan_heartbeat`).
 *  3. A walk of the map in bounded chunks: an open session of this
 *     namespace, silent since before the dump and absent from it, lost its
 *     close record: it is CLOSED (`missed_close`).
 * "Since before the dump" allows for the programs' per-jiffy clock (a
 * record's time may lag the truth by one tick): CB_RECONCILE_MARGIN_NS.
 *
 * Every step takes one shard lock per socket or per chunk (cb_map_visit),
 * never for long; nothing is buffered per session but one 8-byte cookie.
 * At start-up the same pass seeds the map: what it adds is counted as
 * seeded, not as a correction.
 */
#ifndef CONNBEAT_RECONCILE_H
#define CONNBEAT_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/session_map.h"

#define CB_RECONCILE_MARGIN_NS (50ull * 1000 * 1000)

enum cb_correction {
	CB_CORR_MISSING_OPEN = 0,
	CB_CORR_STATE = 1,
	CB_CORR_MISSED_CLOSE = 2,
	CB_CORR_LAST_SEEN = 3,
	CB_CORR_ORPHAN_HEARTBEAT = 4,
	CB_CORR_COUNT = 5,
};

struct cb_reconcile_stats {
	uint64_t passes;
	uint64_t failures;        /* passes that could not complete (logged) */
	uint64_t corrections[CB_CORR_COUNT];
	uint64_t seeded;          /* sessions added by the start-up pass */
	uint64_t diag_sockets;    /* sockets in the last dump */
	uint64_t heartbeats;      /* entries of the heartbeats map at the last pass */
	uint64_t last_pass_ns;    /* how long the last pass took */
};

struct cb_reconcile_opts {
	struct cb_map *map;
	int heartbeats_fd;     /* pinned map, -1: skip step 2 */
	uint64_t interval_ns;  /* between passes of the thread */
	uint64_t beat_interval_ns;
};

struct cb_reconciler;

/* "missing_open", "state", "missed_close", "last_seen", "orphan_heartbeat". */
const char *cb_correction_name(unsigned int kind);

int cb_reconcile_new(struct cb_reconciler **out, const struct cb_reconcile_opts *o);
/* One pass now, on the caller's thread (seed: count additions as seeded).
 * 0 or -errno (logged). */
int cb_reconcile_pass(struct cb_reconciler *r, bool seed);
/* Run a pass every interval on a thread until cb_reconcile_stop(). */
int cb_reconcile_start(struct cb_reconciler *r);
void cb_reconcile_set_interval(struct cb_reconciler *r, uint64_t interval_ns);
void cb_reconcile_stop(struct cb_reconciler *r);
void cb_reconcile_free(struct cb_reconciler *r);
void cb_reconcile_stats(const struct cb_reconciler *r, struct cb_reconcile_stats *out);
/* The network namespace the dumps cover. */
uint32_t cb_reconcile_netns(const struct cb_reconciler *r);

#endif /* CONNBEAT_RECONCILE_H */
