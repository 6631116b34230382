/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * filter.h — what the FILTERS of design.md §5 select: the daemon applies
 * them inside the shard scan, before anything is copied out (style.md #21);
 * the CLI's --maps applies them to what it reads from the pinned maps. The
 * CLI turns its flags into a filter (cli/filter_flags.h); a filter from
 * the wire is validated by the protocol decoder (common/proto.h).
 *
 *   --state S       active|stale|draining|closed (repeatable: any of them)
 *   --tcp-state S   established, close-wait, ... (repeatable: any of them)
 *   --port N        either side        --sport N / --dport N   local / peer
 *   --addr IP       either side (an IPv4 address also matches its
 *                   v4-mapped IPv6 form ::ffff:a.b.c.d)
 *   --pid N         the first process seen using the connection
 *
 * All given criteria must hold. struct cb_filter is fixed-size plain
 * integers, so it travels inside a control request as it is (the daemon
 * validates it with cb_filter_check(), common/proto.h, before use). Matching costs a few
 * compares: it runs under the shard lock for every session of a dump.
 */
#ifndef CONNBEAT_FILTER_H
#define CONNBEAT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connbeat_proto.h"

struct cb_session;

/* struct cb_filter and enum cb_filter_field are wire types: connbeat_proto.h. */

/* Does the session match? Call with the session's shard lock held. */
bool cb_filter_match(const struct cb_filter *f, const struct cb_session *s);

#endif /* CONNBEAT_FILTER_H */
