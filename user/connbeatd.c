// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connbeatd — the connbeat daemon. For now only its --trace mode: load,
 * pin and attach the BPF programs, print every kernel record as a line.
 *
 * Options live in one table, options[], from which getopt_long's
 * long_opts[] and the --help text are both built: to add a flag, add a row
 * and a case in parse_args() (style.md #18).
 *
 * Exit codes (design.md §5): 0 after SIGTERM/SIGINT and draining the rings,
 * 1 on a runtime failure, 2 on a usage or configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "log.h"
#include "parse.h"
#include "trace.h"

/* Kernel-style typedefs must not leak into user code (style.md #10). */
#pragma GCC poison u8 u16 u32 u64

#define EXIT_USAGE 2

/* getopt_long codes of the options without a short form. */
enum {
	OPT_PIN_DIR = 256,
	OPT_MAX_SESSIONS,
	OPT_BEAT_INTERVAL,
	OPT_EVENTS_RING_SIZE,
	OPT_BEATS_RING_SIZE,
};

struct cb_option {
	const char *name;
	int has_arg; /* no_argument / required_argument */
	int val;     /* short letter or OPT_* */
	const char *arg; /* metavariable for --help */
	const char *help;
};

static const struct cb_option options[] = {
	{ "trace", no_argument, 't', NULL,
	  "print each kernel record as one line on stdout (debugging)" },
	{ "pin-dir", required_argument, OPT_PIN_DIR, "DIR",
	  "where the BPF maps are pinned (default " CB_DEFAULT_PIN_DIR ")" },
	{ "max-sessions", required_argument, OPT_MAX_SESSIONS, "N",
	  "size of the kernel heartbeats map (default 262144)" },
	{ "beat-interval", required_argument, OPT_BEAT_INTERVAL, "DUR",
	  "at most one heartbeat record per connection per CPU per DUR (default 1s; 0: every event)" },
	{ "events-ring-size", required_argument, OPT_EVENTS_RING_SIZE, "BYTES",
	  "lifecycle ring size, a power of two (default 8M)" },
	{ "beats-ring-size", required_argument, OPT_BEATS_RING_SIZE, "BYTES",
	  "heartbeat ring size, a power of two (default 4M)" },
	{ "verbose", no_argument, 'v', NULL, "debug messages, including libbpf's" },
	{ "help", no_argument, 'h', NULL, "show this help and exit" },
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

struct config {
	bool trace;
	bool verbose;
	struct cb_loader_opts loader;
};

static void print_usage(FILE *f)
{
	char left[64];

	fprintf(f, "Usage: connbeatd [OPTION]...\n"
		   "Track every TCP connection on this host from eBPF tracepoints.\n\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct cb_option *o = &options[i];
		int n = 0;

		if (o->val < 256)
			n = snprintf(left, sizeof(left), "-%c, ", o->val);
		else
			n = snprintf(left, sizeof(left), "    ");
		snprintf(left + n, sizeof(left) - n, "--%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		fprintf(f, "  %-30s %s\n", left, o->help);
	}
	fprintf(f, "\nDUR: 500ms, 30s, 5m...; BYTES: 4096, 64K, 8M...\n"
		   "Exit status: 0 stopped by SIGTERM/SIGINT, 1 runtime failure, 2 usage error.\n");
}

static void __attribute__((noreturn)) help(void)
{
	print_usage(stdout);
	exit(0);
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "connbeatd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n");
	print_usage(stderr);
	exit(EXIT_USAGE);
}

static uint32_t parse_ring_size(const char *flag, const char *s)
{
	const char *why;
	uint64_t v;

	if (cb_parse_size(s, &v))
		usage_error("--%s %s: not a size (e.g. 4096, 64K, 8M)", flag, s);
	if (cb_loader_check_ring_size(v, &why))
		usage_error("--%s %s: %s (a ring is a power of two of at least one page, at most 1G)",
			    flag, s, why);
	return (uint32_t)v;
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
	struct option long_opts[N_OPTIONS + 1];
	char short_opts[2 * N_OPTIONS + 2];
	size_t ns = 0;
	uint64_t v;
	int c;

	/* Build getopt's tables from options[]; ':' first: we report
	 * missing arguments ourselves. */
	short_opts[ns++] = ':';
	for (size_t i = 0; i < N_OPTIONS; i++) {
		long_opts[i] = (struct option){ options[i].name, options[i].has_arg, NULL,
						options[i].val };
		if (options[i].val < 256) {
			short_opts[ns++] = (char)options[i].val;
			if (options[i].has_arg == required_argument)
				short_opts[ns++] = ':';
		}
	}
	long_opts[N_OPTIONS] = (struct option){ 0 };
	short_opts[ns] = '\0';

	opterr = 0;
	while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
		switch (c) {
		case 't':
			cfg->trace = true;
			break;
		case 'v':
			cfg->verbose = true;
			break;
		case 'h':
			help();
		case OPT_PIN_DIR:
			if (optarg[0] != '/')
				usage_error("--pin-dir %s: must be an absolute path", optarg);
			cfg->loader.pin_dir = optarg;
			break;
		case OPT_MAX_SESSIONS:
			if (cb_parse_u64(optarg, 1, CB_MAX_SESSIONS_LIMIT, &v))
				usage_error("--max-sessions %s: not a number between 1 and %u", optarg,
					    CB_MAX_SESSIONS_LIMIT);
			cfg->loader.max_sessions = (uint32_t)v;
			break;
		case OPT_BEAT_INTERVAL:
			if (cb_parse_duration(optarg, &v) || v > 3600 * CB_NSEC_PER_SEC)
				usage_error("--beat-interval %s: not a duration between 0 and 1h "
					    "(e.g. 500ms, 1s)",
					    optarg);
			/* 0 in the loader means "default": 1 ns means every event. */
			cfg->loader.beat_interval_ns = v ? v : 1;
			break;
		case OPT_EVENTS_RING_SIZE:
			cfg->loader.events_ring_bytes = parse_ring_size("events-ring-size", optarg);
			break;
		case OPT_BEATS_RING_SIZE:
			cfg->loader.beats_ring_bytes = parse_ring_size("beats-ring-size", optarg);
			break;
		case ':':
			usage_error("option '%s' needs an argument", argv[optind - 1]);
		case '?':
		default:
			if (optopt && optopt < 256)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
}

int main(int argc, char **argv)
{
	struct config cfg = { 0 };
	struct cb_loader *l = NULL;
	int err;

	parse_args(argc, argv, &cfg);
	cb_log_init("connbeatd", cfg.verbose ? CB_LOG_DEBUG : CB_LOG_INFO);
	cfg.loader.verbose = cfg.verbose;
	if (!cfg.trace) {
		fprintf(stderr, "connbeatd: the session daemon is not built yet; use --trace\n");
		return EXIT_USAGE;
	}

	/* stdout is flushed after each batch by the tracer. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	err = cb_loader_open(&cfg.loader, &l);
	if (err)
		return 1;
	err = cb_loader_attach(l);
	if (!err)
		err = cb_trace_run(l, stdout);
	cb_loader_close(l);
	return err ? 1 : 0;
}
