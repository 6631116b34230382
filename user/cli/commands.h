/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * commands.h — the CLI's commands that live in files of their own:
 * `events` (cli/events.c), `summary` (cli/summary.c) and `--maps`
 * (cli/maps.c), and what cli.c shares with them.
 */
#ifndef CONNBEAT_COMMANDS_H
#define CONNBEAT_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connbeat_proto.h"

/* `connbeat events [FILTERS] [--json]`: until Ctrl-C (exit 0). */
int cb_cli_events(const char *socket_path, const struct cb_filter *f, bool json);

/* `connbeat summary --by KEY [FILTERS] [--json]`. */
int cb_cli_summary(const char *socket_path, const struct cb_filter *f, unsigned int by, bool json,
		   bool header);

enum cb_maps_cmd { CB_MAPS_STALE, CB_MAPS_LIST, CB_MAPS_STATS };

/* `connbeat --maps stale|list|stats`: the pinned maps, no daemon. */
int cb_cli_maps(enum cb_maps_cmd cmd, const char *pin_dir, const struct cb_filter *f,
		uint64_t idle_ns, uint8_t basis, uint32_t limit, uint8_t sort, bool json,
		bool header);

/* Sort rows by a --sort key (largest first, ties by cookie). */
void cb_cli_sort_rows(struct cb_row *v, size_t n, unsigned int key);

/* The `stats` output: name value lines, or one JSON object. */
void cb_cli_print_stats(bool json, const struct cb_stat_entry *e, uint32_t n);

#endif /* CONNBEAT_COMMANDS_H */
