/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * apply.h — what one ring record does to the session map: the upsert the
 * daemon's ingest thread runs for every (validated) kernel record, and its
 * reconciliation for every record it builds itself (CB_RF_SYNTH, from
 * sock_diag).
 *
 *   OPEN     create the session (first seen = the record's time, owner
 *            from connect()'s process when the record names it, cgroup);
 *            for a CLOSED session: a new life of the same socket, counted
 *            as a reopen — the one way out of CLOSED besides eviction,
 *            which is not a drain-state transition but a re-insert
 *   STATE    the TCP state; FIN_WAIT1, FIN_WAIT2, CLOSING, CLOSE_WAIT,
 *            LAST_ACK, TIME_WAIT move ACTIVE/STALE to DRAINING
 *   CLOSE    CLOSED, with the final counters, lingering from the close;
 *            with CB_RF_REMNANT the connection lives on as a FIN_WAIT2
 *            remnant: it stays (or becomes) DRAINING in FIN_WAIT2, marked
 *            CB_SF_REMNANT, until a CLOSE without that flag; a
 *            CB_RF_SYNTH CLOSE of a CLOSED session that is not a remnant
 *            is ignored (the kernel's own CLOSE came first)
 *   RESET    resets + 1, and how (sent, received)
 *   BEAT     clocks and counters; a STALE session whose idleness (on the
 *            map's basis) dropped under the threshold is ACTIVE again
 *
 * Counters are the kernel's totals (CB_RF_COUNTERS): bytes keep the
 * maximum, the u32 segment and retransmit counters the newer value
 * (serial-number comparison, they wrap; a first reading is always taken),
 * the RTT the record's. A record without counters changes none. Clocks
 * keep the newest. Signs of life (last_seen): a BEAT's clocks, an OPEN's or
 * STATE's time; never our own RESETs (a blackholed peer must go STALE on
 * the `any` basis too). The tuple comes from the first record with a local
 * port. A record for an unknown cookie creates the session (marked
 * CB_SF_FIRST_UNKNOWN unless it is the OPEN) — except CLOSE and RESET, which
 * have nothing to close. A CLOSED session is never revived by STATE or BEAT
 * from the kernel.
 *
 * At max_sessions a new session is refused; refused_total counts each
 * refused cookie once (a small cache of recently refused cookies keeps its
 * later records from being counted again).
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
