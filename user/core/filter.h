/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * filter.h — what the FILTERS of design.md §5 select: the daemon applies
 * them inside the shard scan, before anything is copied out (style.md #21),
 * and again, exactly, to the rows it has just read from the kernel; the
 * CLI's --maps applies them to what it reads from the pinned maps. The CLI
 * turns its flags into a filter (cli/filter_flags.h); a filter from the
 * wire is validated by the protocol decoder (common/proto.h).
 *
 *   --state S       active|stale|draining|closed (repeatable: any of them)
 *   --tcp-state S   established, close-wait, ... (repeatable: any of them)
 *   --port N        either side        --sport N / --dport N   local / peer
 *   --addr IP       either side (an IPv4 address also matches its
 *                   v4-mapped IPv6 form ::ffff:a.b.c.d)
 *   --pid N         the owner: a process holding the socket
 *   --netns NS      the socket's network namespace (an inode on the wire)
 *   --cgroup PATH   the socket's cgroup v2 and its descendants
 *
 * All given criteria must hold. Matching a session costs a few compares:
 * it runs under the shard lock for every session of a dump. A session's
 * TCP state is what the last record said; the later steps of a close are
 * not reported by the programs (FIN_WAIT1 -> FIN_WAIT2, CLOSE_WAIT ->
 * LAST_ACK), so the scan widens --tcp-state to the states a session may
 * still be recorded in, and the exact state is checked on the row once it
 * has been read from the kernel.
 */
#ifndef CONNBEAT_FILTER_H
#define CONNBEAT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connbeat_proto.h"

struct cb_session;
struct cb_map;

/* A filter made ready for one map: the netns and cgroups resolved to the
 * map's interned ids. */
struct cb_match {
	struct cb_filter f;
	uint16_t netns_id;          /* CB_FLT_NETNS: 0 when no session has it */
	uint32_t scan_tcp_states;   /* --tcp-state, widened (see above) */
	const uint64_t *cgroup_ids; /* CB_FLT_CGROUP: a bitmap over cgroup ids */
	bool rows_checked;          /* the caller reads each candidate from the
				     * kernel and checks its row exactly
				     * (cb_filter_match_row): a session of unknown
				     * owner passes --pid, and ACTIVE and STALE
				     * pass for each other (a row may be due, or
				     * revived by a heartbeat not yet applied) */
};

#define CB_CGROUP_BITMAP_WORDS ((65536 + 63) / 64)

/* `cgroup_ids` (CB_CGROUP_BITMAP_WORDS words) is the caller's: for
 * CB_FLT_CGROUP it marks the ids of the cgroups under the filter's path. */
void cb_match_init(struct cb_match *mt, const struct cb_filter *f, struct cb_map *m,
		   const uint64_t *cgroup_ids);

/* Could the session match? Call with the session's shard lock held. */
bool cb_filter_match(const struct cb_match *mt, const struct cb_session *s);

/* Does a row (as read from the kernel) match, exactly? The cgroup is not
 * checked here (the scan did). */
struct cb_row;
bool cb_filter_match_row(const struct cb_filter *f, const struct cb_row *r);

#endif /* CONNBEAT_FILTER_H */
