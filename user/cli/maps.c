// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * maps.c — `connbeat --maps stale|list|stats`: what the kernel side knows
 * with no daemon running. Rows come from the pinned heartbeats map (clocks,
 * the first process seen) joined by cookie with a sock_diag dump of this
 * network namespace (tuple, TCP state, the kernel's byte and segment
 * totals); stats are the programs' own counters under the daemon's metric
 * names.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/rows.h"
#include "common/parse.h"
#include "core/filter.h"
#include "kernel/hbmap.h"
#include "kernel/loader.h"
#include "kernel/proc.h"
#include "kernel/sock_diag.h"

void cb_cli_print_stats(bool json, const struct cb_stat_entry *e, uint32_t n)
{
	size_t w = 0;

	if (json) {
		printf("{");
		for (uint32_t i = 0; i < n; i++) {
			printf(i ? ",\n" : "\n");
			cb_json_string(stdout, e[i].name);
			printf(":%" PRIu64, e[i].value);
		}
		printf("\n}\n");
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		if (strlen(e[i].name) > w)
			w = strlen(e[i].name);
	for (uint32_t i = 0; i < n; i++)
		printf("%-*s %" PRIu64 "\n", (int)w, e[i].name, e[i].value);
}

/* Sockets by cookie from one sock_diag dump: an open-addressing table. */
struct diag_table {
	struct cb_diag_sock *v;
	size_t mask;
	size_t n;
};

static int diag_put(const struct cb_diag_sock *s, void *ctx)
{
	struct diag_table *t = ctx;
	size_t i;

	if (t->n * 2 >= t->mask) { /* grow at half full */
		struct diag_table g = { .mask = t->mask ? t->mask * 2 + 1 : 4095 };

		g.v = calloc(g.mask + 1, sizeof(*g.v));
		if (!g.v)
			return -ENOMEM;
		for (size_t j = 0; t->v && j <= t->mask; j++)
			if (t->v[j].cookie)
				diag_put(&t->v[j], &g);
		free(t->v);
		*t = g;
	}
	for (i = s->cookie & t->mask; t->v[i].cookie; i = (i + 1) & t->mask)
		if (t->v[i].cookie == s->cookie)
			return 0;
	t->v[i] = *s;
	t->n++;
	return 0;
}

static const struct cb_diag_sock *diag_get(const struct diag_table *t, uint64_t cookie)
{
	if (!t->v)
		return NULL;
	for (size_t i = cookie & t->mask; t->v[i].cookie; i = (i + 1) & t->mask)
		if (t->v[i].cookie == cookie)
			return &t->v[i];
	return NULL;
}

struct maps_ctx {
	enum cb_maps_cmd cmd;
	const struct cb_filter *f;
	uint8_t basis;
	uint32_t netns;
	struct diag_table diag;
	struct cb_row *rows;
	size_t n, cap;
	uint64_t now;
	uint64_t idle_ns;
	int err;
};

static int maps_row(uint64_t cookie, const struct cb_heartbeat *hb, void *ctx)
{
	struct maps_ctx *m = ctx;
	const struct cb_diag_sock *d = diag_get(&m->diag, cookie);
	uint64_t basis = m->basis == CB_BASIS_ANY ? hb->last_seen_ns : hb->last_data_ns;
	struct cb_row r = { .cookie = cookie, .family = 4 };

	r.idle_ns = m->now > basis ? m->now - basis : 0;
	r.seen_ns = m->now > hb->last_seen_ns ? m->now - hb->last_seen_ns : 0;
	r.flags = CB_ROW_AGE_UNKNOWN;
	r.state = r.idle_ns >= m->idle_ns ? CB_ST_STALE : CB_ST_ACTIVE;
	if (hb->pid) {
		r.pid = hb->pid;
		r.flags |= CB_ROW_OWNER_KNOWN;
		cb_proc_comm(hb->pid, r.comm);
	}
	if (d) {
		r.family = d->family;
		memcpy(r.saddr, d->saddr, 16);
		memcpy(r.daddr, d->daddr, 16);
		r.sport = d->sport;
		r.dport = d->dport;
		r.tcp_state = d->state;
		r.netns = m->netns;
		r.cgroup_id = d->cgroup_id;
		r.tx_bytes = d->bytes_acked;
		r.rx_bytes = d->bytes_received;
		r.segs_in = d->segs_in;
		r.segs_out = d->segs_out;
		r.retrans = d->total_retrans;
		r.rtt_us = d->rtt_us;
		if (!d->inode)
			r.flags2 |= CB_ROW2_ORPHAN; /* no process holds it */
		if (d->timewait)
			r.flags |= CB_ROW_REMNANT;
		if (r.state == CB_ST_ACTIVE && d->state != CB_TCP_ESTABLISHED &&
		    d->state != CB_TCP_SYN_SENT && d->state != CB_TCP_SYN_RECV)
			r.state = CB_ST_DRAINING;
	}
	if (!cb_filter_match_row(m->f, &r))
		return 0;
	if (m->cmd == CB_MAPS_STALE && r.idle_ns < m->idle_ns)
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 1024;
		struct cb_row *v = realloc(m->rows, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->rows = v;
		m->cap = cap;
	}
	m->rows[m->n++] = r;
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * CB_NSEC_PER_SEC + ts.tv_nsec;
}

static int maps_stats(int fd, const char *path, bool json)
{
	static const char *const names[CB_STAT_MAX] = {
		/* the daemon's names for the same counters */
		[CB_STAT_EVENTS_EMITTED] = "connbeat_ringbuf_emitted_total{ring=\"events\"}",
		[CB_STAT_EVENTS_DROPPED] = "connbeat_ringbuf_dropped_total{ring=\"events\"}",
		[CB_STAT_BEATS_EMITTED] = "connbeat_ringbuf_emitted_total{ring=\"beats\"}",
		[CB_STAT_BEATS_DROPPED] = "connbeat_ringbuf_dropped_total{ring=\"beats\"}",
		[CB_STAT_MAP_UPDATE_FAILED] = "connbeat_heartbeats_update_failed_total",
		[CB_STAT_MAP_SEEDED] = "connbeat_heartbeats_seeded_total",
		[CB_STAT_CLOSE_LOST] = "connbeat_close_records_lost_total",
	};
	struct cb_stat_entry e[CB_STAT_MAX];
	uint64_t st[CB_STAT_MAX];
	uint32_t n = 0;
	int err = cb_stats_read_fd(fd, st);

	if (err) {
		fprintf(stderr, "connbeat: reading %s failed: %s\n", path, strerror(-err));
		return EXIT_UNREACHABLE;
	}
	for (int i = 0; i < CB_STAT_MAX; i++) {
		if (!names[i])
			continue;
		snprintf(e[n].name, sizeof(e[n].name), "%s", names[i]);
		e[n++].value = st[i];
	}
	cb_cli_print_stats(json, e, n);
	return 0;
}

int cb_cli_maps(enum cb_maps_cmd cmd, const char *pin_dir, const struct cb_filter *f,
		uint64_t idle_ns, uint8_t basis, uint32_t limit, uint8_t sort, bool json,
		bool header)
{
	struct maps_ctx m = { .cmd = cmd, .f = f, .basis = basis,
			      .idle_ns = idle_ns ? idle_ns : 60 * CB_NSEC_PER_SEC };
	struct cb_rowfmt out;
	char path[512];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", pin_dir,
		 cmd == CB_MAPS_STATS ? CB_MAP_STATS : CB_MAP_HEARTBEATS);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr,
			"connbeat: cannot open the pinned map %s: %s (has connbeatd ever run on "
			"this host with --pin-dir %s? run connbeat --maps as root)\n",
			path, strerror(errno), pin_dir);
		return EXIT_UNREACHABLE;
	}
	if (cmd == CB_MAPS_STATS)
		return maps_stats(fd, path, json);
	(void)cb_sock_diag_netns(&m.netns);
	err = cb_sock_diag_dump(CB_DIAG_SESSION_STATES, diag_put, &m.diag, -1);
	if (err)
		fprintf(stderr, "connbeat: warning: sock_diag failed (%s): addresses unknown\n",
			strerror(-err));
	m.now = mono_ns();
	err = cb_hbmap_scan(fd, maps_row, &m);
	if (err) {
		fprintf(stderr, "connbeat: reading %s failed: %s\n", path, strerror(-err));
		return EXIT_UNREACHABLE;
	}
	cb_cli_sort_rows(m.rows, m.n, sort ? sort : CB_SORT_IDLE); /* stale first, for list too */
	cb_rows_begin(&out, stdout, json, header, false);
	for (size_t i = 0; i < m.n && (!limit || i < limit); i++)
		cb_rows_print(&out, &m.rows[i]);
	cb_rows_end(&out);
	free(m.rows);
	free(m.diag.v);
	return 0;
}
