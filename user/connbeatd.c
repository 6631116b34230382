// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connbeatd — the connbeat daemon.
 *
 * Settings come from one table (options.c) shared by the command line, the
 * --config file and SIGHUP reloads. With --trace it only loads, pins and
 * attaches the BPF programs and prints every kernel record as a line.
 *
 * Exit codes (design.md §5): 0 after SIGTERM/SIGINT and draining the rings,
 * 1 on a runtime failure, 2 on a usage or configuration error.
 */
#include <stdio.h>

#include "loader.h"
#include "log.h"
#include "options.h"
#include "trace.h"

/* Kernel-style typedefs must not leak into user code (style.md #10). */
#pragma GCC poison u8 u16 u32 u64

#define EXIT_USAGE 2

static void loader_opts(const struct cb_options *o, struct cb_loader_opts *lo)
{
	*lo = (struct cb_loader_opts){
		.pin_dir = o->pin_dir,
		.max_sessions = (uint32_t)o->max_sessions,
		/* 0 in the loader means "default": 1 ns means every event */
		.beat_interval_ns = o->beat_interval_ns ? o->beat_interval_ns : 1,
		.events_ring_bytes = (uint32_t)o->events_ring_size,
		.beats_ring_bytes = (uint32_t)o->beats_ring_size,
		.verbose = o->verbose,
	};
}

int main(int argc, char **argv)
{
	struct cb_options o;
	struct cb_loader_opts lo;
	struct cb_loader *l = NULL;
	int err;

	cb_log_init("connbeatd", CB_LOG_INFO);
	err = cb_options_resolve(&o, argc, argv);
	if (err > 0)
		return 0; /* --help */
	if (err)
		return EXIT_USAGE;
	cb_log_init("connbeatd", o.verbose ? CB_LOG_DEBUG : CB_LOG_INFO);
	if (!o.trace) {
		fprintf(stderr, "connbeatd: the session daemon is not built yet; use --trace\n");
		return EXIT_USAGE;
	}

	/* stdout is flushed after each batch by the tracer. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	loader_opts(&o, &lo);
	err = cb_loader_open(&lo, &l);
	if (err)
		return 1;
	err = cb_loader_attach(l);
	if (!err)
		err = cb_trace_run(l, stdout);
	cb_loader_close(l);
	return err ? 1 : 0;
}
