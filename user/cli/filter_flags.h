/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * filter_flags.h — the CLI's FILTERS flags into a struct cb_filter (the
 * wire type of include/connbeat_proto.h; what a filter selects is
 * core/filter.h):
 *
 *   --state S       active|stale|draining|closed (repeatable: any of them)
 *   --tcp-state S   established, close-wait, ... (repeatable: any of them)
 *   --port N        either side        --sport N / --dport N   local / peer
 *   --addr IP       either side        --pid N                 owning process
 *
 * Every other flag may be given once; a bad value is refused with a
 * message naming it.
 */
#ifndef CONNBEAT_FILTER_FLAGS_H
#define CONNBEAT_FILTER_FLAGS_H

#include <stddef.h>

#include "connbeat_proto.h"

/* The flag names cb_filter_set() understands, NULL-terminated (for getopt). */
extern const char *const cb_filter_options[];

/* Apply one flag ("state", "tcp-state", "port", "sport", "dport", "addr",
 * "pid") with its value. 0, -ENOENT for a name that is not a filter, or
 * -EINVAL with a message naming the bad value in `err`. */
int cb_filter_set(struct cb_filter *f, const char *name, const char *value, char *err,
		  size_t errlen);

#endif /* CONNBEAT_FILTER_FLAGS_H */
