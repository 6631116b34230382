/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * rows.h — sessions as the CLI prints them: an ss-like table or JSON, from
 * one printer (cli/output.h), and the names a row needs that the daemon
 * does not send: the network namespace's name under /run/netns and the
 * cgroup's path (kernel/netns.h, kernel/cgroup.h, read here, cached per
 * run).
 *
 * Table columns: State, TCP-State, Local and Peer Address:Port, Idle, Age,
 * Tx, Rx, Retr, RTT, then Netns when rows may come from more than one
 * network namespace (its name, else its inode), then Process (pid/comm).
 * JSON: one array of objects with the fields of design.md §5.
 */
#ifndef CONNBEAT_ROWS_H
#define CONNBEAT_ROWS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/output.h"
#include "connbeat_proto.h"

struct cb_cgroups;

#define CB_ROWS_NETNS_CACHE 256

struct cb_rowfmt {
	struct cb_out out;
	bool show_netns;
	struct cb_cgroups *cgroups; /* NULL: no cgroup2 here (or not needed yet) */
	bool cgroups_tried;
	struct {
		uint32_t inode;
		char name[64];
	} ns[CB_ROWS_NETNS_CACHE];
	unsigned int nns;
};

/* Names without a printer (summary, events). */
void cb_names_init(struct cb_rowfmt *f);
void cb_names_free(struct cb_rowfmt *f);
/* The netns's name under /run/netns, "" when it has none. */
const char *cb_names_netns(struct cb_rowfmt *f, uint32_t inode);
/* The cgroup's path below the cgroup2 mount, NULL when unknown. */
const char *cb_names_cgroup(struct cb_rowfmt *f, uint64_t id, char *buf, size_t len);

void cb_rows_begin(struct cb_rowfmt *f, FILE *out, bool json, bool header, bool show_netns);
void cb_rows_print(struct cb_rowfmt *f, const struct cb_row *r);
void cb_rows_end(struct cb_rowfmt *f);

/* "0.03ms", "1.5ms", "12ms", "1.2s"; "-" for 0 (unknown). */
char *cb_format_rtt(uint32_t us, char *buf, size_t len);

#endif /* CONNBEAT_ROWS_H */
