/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * options.h — connbeatd's settings: one table serves the command line, the
 * `--config` file and SIGHUP reloads, so a flag and its config key can never
 * drift apart.
 *
 * A config file holds `key = value` lines whose keys are the long flag names
 * without the dashes (`idle = 30s`, `metrics = off`). Command-line flags win
 * over the file. On SIGHUP the daemon re-reads the file, re-applies the flags
 * and takes over the settings marked reloadable; a change to any other key
 * is reported as needing a restart and otherwise ignored.
 */
#ifndef CONNBEAT_OPTIONS_H
#define CONNBEAT_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "connbeat_proto.h" /* CB_DEFAULT_SOCKET */
#include "kernel/loader.h"         /* CB_DEFAULT_PIN_DIR, CB_DEFAULT_MAX_SESSIONS, ring sizes */

#define CB_DEFAULT_METRICS "127.0.0.1:9477"
#define CB_DEFAULT_CONFIG "/etc/connbeat/connbeatd.conf"

struct cb_options {
	/* sessions and timeouts */
	uint64_t idle_ns;          /* --idle: ACTIVE -> STALE threshold */
	bool idle_basis_any;       /* --idle-basis any (default data) */
	uint64_t drain_timeout_ns; /* --drain-timeout: DRAINING silent this long = stale */
	uint64_t linger_ns;        /* --linger: CLOSED kept this long, then evicted */
	uint64_t tick_ns;          /* --tick: timing-wheel slot width */
	uint64_t max_sessions;     /* --max-sessions */
	uint32_t shards;           /* --shards (0 = from the core count) */
	uint64_t reconcile_ns;     /* --reconcile-interval */
	uint64_t sweep_period_ns;  /* --sweep-period: every socket checked once per period */
	/* where */
	char pin_dir[256];     /* --pin-dir */
	char socket_path[108]; /* --socket (sun_path size) */
	char metrics[64];      /* --metrics ADDR:PORT or "off" */
	char config[256];      /* --config */
	bool config_given;     /* --config was given: a missing file is an error */
	/* kernel side */
	uint64_t beat_interval_ns; /* --beat-interval: per CPU per connection */
	bool beat_interval_given;  /* ... set explicitly (else derived from --idle) */
	uint64_t events_ring_size; /* --events-ring-size */
	uint64_t beats_ring_size;  /* --beats-ring-size */
	/* modes */
	bool trace;   /* --trace: print each kernel record */
	bool verbose; /* --verbose: debug logging (libbpf included) */
};

/* Fill in the defaults of design.md §5. */
void cb_options_defaults(struct cb_options *o);

/*
 * Set one option by its long name (no dashes). `value` is NULL for flags
 * without an argument (from a config file, "true"/"false"/"yes"/"no"/"1"/"0"
 * are accepted for them). Returns 0, -ENOENT for an unknown name, -EINVAL
 * for a bad value; on error `err` says what is wrong and what is accepted.
 */
int cb_options_set(struct cb_options *o, const char *name, const char *value, char *err,
		   size_t errlen);

/* Apply a config file. Returns 0 or -errno; on error `err` names the file
 * and line. A missing file is an error only when `must_exist`. */
int cb_options_load_file(struct cb_options *o, const char *path, bool must_exist, char *err,
			 size_t errlen);

/*
 * Parse argv (getopt_long over the table): `--help` prints usage to stdout
 * and returns 1; a usage error prints the reason and the usage to stderr and
 * returns -EINVAL (the caller exits 2). Otherwise 0. Config-file handling
 * (defaults, then file, then argv) is cb_options_resolve().
 */
int cb_options_parse_argv(struct cb_options *o, int argc, char **argv);

/* defaults -> config file (o->config, or the default path if it exists) ->
 * argv, then the settings that depend on each other: --beat-interval, when
 * not given, is derived from --idle (a quarter of it, at most 1 s); given,
 * --idle must be at least twice it, or busy connections would flap between
 * STALE and ACTIVE between two beats (a usage error that says what to set).
 * Same return convention as cb_options_parse_argv(). */
int cb_options_resolve(struct cb_options *o, int argc, char **argv);

/* Copy the reloadable settings of `next` into `cur`; log each change, and
 * warn for every non-reloadable setting that differs. Returns how many
 * settings changed. */
int cb_options_reload(struct cb_options *cur, const struct cb_options *next);

void cb_options_usage(FILE *f);

#endif /* CONNBEAT_OPTIONS_H */
