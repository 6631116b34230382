/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * trace.h — `connbeatd --trace`: print every kernel record as one line.
 *
 * Contract: cb_trace_run() takes a loaded and attached loader, consumes both
 * rings (polling with a short timeout: the programs never wake the reader
 * per record), writes one line per record to `out` (cb_record_format()),
 * flushed after each batch, and counts records that fail cb_record_check()
 * (rate-limited warning each). It returns when SIGINT or SIGTERM arrives
 * (it installs the handlers) or `out` is closed by its reader: it then
 * detaches the programs, drains what is left in the rings, and prints the
 * per-ring totals to stderr. Returns 0, or -errno on a runtime failure.
 */
#ifndef CONNBEAT_TRACE_H
#define CONNBEAT_TRACE_H

#include <stdio.h>

#include "kernel/loader.h"

/* How long one ring_buffer__poll() waits when no wakeup comes. */
#define CB_TRACE_POLL_MS 20

int cb_trace_run(struct cb_loader *l, FILE *out);

#endif /* CONNBEAT_TRACE_H */
