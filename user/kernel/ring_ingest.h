/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ring_ingest.h — the daemon's ingest thread: drain the kernel's `events`
 * and `beats` rings into the session map.
 *
 * Contract:
 *  - One thread, one struct ring_buffer holding both rings (one epoll fd).
 *    It wakes when the programs wake it (a ring a quarter full), when
 *    cb_ingest_sync() asks, or every CB_INGEST_POLL_MS, and then consumes
 *    every ring in one batch.
 *  - Every record passes cb_record_check() first; a bad one is counted per
 *    ring, logged (rate-limited) and dropped, never applied.
 *  - A record that names its connection's owner by pid only (connect()'s
 *    process, known in softirq only by pid) gets the name from a small
 *    pid -> comm cache (kernel/proc.h): one /proc read per process.
 *  - Valid records are applied in batches of up to CB_APPLY_BATCH_MAX with
 *    cb_apply_batch() (their cache misses overlap): one shard lock and O(1)
 *    work each; a batch is applied when full and after every poll.
 *    Nothing on this path walks the map or blocks on a client.
 *  - cb_ingest_stop() ends the thread, then detaches the programs (no new
 *    records) and consumes what is left, so that after it returns the rings
 *    are empty and every record emitted was read.
 *  - Counters are single-writer relaxed atomics: any thread may read them.
 */
#ifndef CONNBEAT_RING_INGEST_H
#define CONNBEAT_RING_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "core/apply.h"
#include "kernel/loader.h"
#include "common/histogram.h"
#include "core/session_map.h"

/* How long a record may wait when the programs do not wake the thread (a
 * ring less than a quarter full): each timed wakeup costs ~50 us of CPU on
 * a VM, so 50 a second were 0.27% of a core on an idle host; 10 are 0.05%. */
#define CB_INGEST_POLL_MS 100

enum cb_ring_id {
	CB_RING_EVENTS = 0,
	CB_RING_BEATS = 1,
	CB_RINGS = 2,
};

struct cb_ingest_stats {
	uint64_t read[CB_RINGS];    /* records consumed (valid or not) */
	uint64_t invalid[CB_RINGS]; /* ... of which rejected by cb_record_check() */
	uint64_t applied[CB_APPLY_RESULTS];
	uint64_t batches;
};

struct cb_ingest;

/* "events", "beats". */
const char *cb_ring_name(unsigned int ring);

/* Called on the ingest thread with every batch of records once it is
 * applied (what needs follow-up outside the map: remnants to watch, events
 * to stream). It must not block. */
typedef void (*cb_ingest_hook)(const struct cb_record *recs, unsigned int n, void *ctx);

/* Open the rings and start the thread. `batch_hist` (may be NULL) observes
 * the time each non-empty batch took; `after` (may be NULL) sees every
 * applied batch. 0 or -errno (logged). */
int cb_ingest_start(struct cb_ingest **out, struct cb_loader *l, struct cb_map *m,
		    struct cb_histogram *batch_hist, cb_ingest_hook after, void *hook_ctx);
/* Stop the thread, detach the programs, drain the rings. */
void cb_ingest_stop(struct cb_ingest *in);
void cb_ingest_free(struct cb_ingest *in);

/* Wait until every record the rings hold now has been applied and handed
 * to the hook: the thread is woken and runs a pass over the rings begun
 * after this call. For the reconciler, before it closes a session whose
 * socket the kernel no longer has: the kernel wrote that socket's CLOSE
 * before unhashing it, so after this it is applied, unless it was lost.
 * 0, -ETIMEDOUT, or -ESRCH when the thread is not running. Any thread but
 * the ingest thread (and never from the hook). */
int cb_ingest_sync(struct cb_ingest *in, int timeout_ms);

void cb_ingest_stats(const struct cb_ingest *in, struct cb_ingest_stats *out);
/* True when the thread stopped on an error reading the rings (it then
 * sent the process SIGTERM: the daemon exits 1). */
bool cb_ingest_failed(const struct cb_ingest *in);
/* Bytes waiting in a ring right now and the ring's size (0 when unknown). */
uint64_t cb_ingest_ring_pending(const struct cb_ingest *in, unsigned int ring);
uint64_t cb_ingest_ring_size(const struct cb_ingest *in, unsigned int ring);

#endif /* CONNBEAT_RING_INGEST_H */
