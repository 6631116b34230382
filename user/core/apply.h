/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * apply.h — what one ring record does to the session map: the upsert the
 * daemon's ingest thread runs for every (validated) kernel record, and its
 * reconciliation for every record it builds itself (CB_RF_SYNTH, from
 * sock_diag).
 *
 *   OPEN     create the session (first seen = the record's time, owner from
 *            connect()'s process); for a CLOSED session: a new life of the
 *            same socket (a reconnect after a failed connect), counted as a
 *            reopen — the one way out of CLOSED besides eviction, which is
 *            not a drain-state transition but a re-insert
 *   STATE    the TCP state; FIN_WAIT1, FIN_WAIT2, CLOSING, CLOSE_WAIT,
 *            LAST_ACK, TIME_WAIT move ACTIVE/STALE to DRAINING
 *   CLOSE    CLOSED, with the final counters; evicted after the linger
 *   RESET    resets + 1
 *   BEAT, RETRANS   counters and clocks; a STALE session whose idleness
 *            (on the map's basis) dropped under the threshold is ACTIVE again
 *
 * Counters in records are totals: bytes keep the maximum, the kernel's u32
 * segment and retransmit counters the newer value (serial-number
 * comparison, they wrap), clocks the newest. Any kernel record is a sign
 * of life (last_seen). The tuple comes from the first record with a local
 * port (connect() enters SYN_SENT before it picks one). A record for an
 * unknown cookie creates the session (marked CB_SF_FIRST_UNKNOWN unless it
 * is the OPEN) — except CLOSE and RESET, which have nothing to close. A
 * CLOSED session is never revived by STATE or BEAT.
 */
#ifndef CONNBEAT_APPLY_H
#define CONNBEAT_APPLY_H

#include <stdint.h>

#include "connbeat_abi.h"
#include "core/session_map.h"

enum cb_apply_result {
	CB_APPLY_INSERTED = 0,
	CB_APPLY_UPDATED = 1,
	CB_APPLY_REFUSED = 2, /* a new session, but the map is at max_sessions */
	CB_APPLY_IGNORED = 3, /* nothing to do (e.g. CLOSE of an unknown session) */
	CB_APPLY_RESULTS = 4,
};

/* Apply one validated record (record.h: cb_record_check()). Takes and
 * releases the session's shard lock. */
enum cb_apply_result cb_apply_record(struct cb_map *m, const struct cb_record *r,
				     uint64_t now_ns);

/* Apply n validated records in order, exactly as n cb_apply_record()
 * calls would, but with the next records' buckets and sessions
 * prefetched while the current one is applied. Counts the results into
 * results[CB_APPLY_RESULTS] (added to, not reset). */
#define CB_APPLY_BATCH_MAX 64
void cb_apply_batch(struct cb_map *m, const struct cb_record *recs, unsigned int n,
		    uint64_t now_ns, uint64_t results[CB_APPLY_RESULTS]);

/* True for the TCP states that make a session DRAINING. */
int cb_tcp_state_draining(unsigned int tcp_state);

#endif /* CONNBEAT_APPLY_H */
