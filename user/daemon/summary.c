// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * summary.c — `connbeat summary --by cgroup|comm|port|peer`: per group,
 * sessions by drain state and by TCP state and the oldest idle time,
 * biggest group first ("which service holds the CLOSE_WAIT leaks" in one
 * command).
 *
 * One chunked walk of the map, the filter applied inside it, each session
 * counted into its group under its shard lock (cb_map_visit: no lock held
 * across the walk); memory grows with the groups, not the sessions. `port`
 * groups the sessions of the listening side by their local port (the
 * service); `peer` by the remote address. The counts are the map's (as of
 * the last record or sweep), not refreshed from the kernel one by one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/proto.h"
#include "core/filter.h"
#include "core/state.h"
#include "daemon/daemon.h"

#pragma GCC poison u8 u16 u32 u64

struct gkey {
	uint64_t id;      /* cgroup id, or comm id */
	uint16_t port;
	uint8_t family;
	uint8_t addr[16];
};

struct slot {
	bool used;
	struct gkey k;
	struct cb_group g;
};

struct table {
	struct slot *v;
	size_t mask, n;
};

static uint64_t key_hash(const struct gkey *k)
{
	uint64_t h = k->id * 0x9e3779b97f4a7c15ull ^ ((uint64_t)k->port << 8 | k->family);

	for (int i = 0; i < 16; i += 8) {
		uint64_t w;

		memcpy(&w, k->addr + i, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
	}
	return cb_cookie_mix(h);
}

static bool key_eq(const struct gkey *a, const struct gkey *b)
{
	return a->id == b->id && a->port == b->port && a->family == b->family &&
	       !memcmp(a->addr, b->addr, 16);
}

static struct cb_group *group_of(struct table *t, const struct gkey *k)
{
	size_t i;

	if (2 * (t->n + 1) > t->mask + 1) {
		struct table b = { .mask = t->mask ? 2 * t->mask + 1 : 255 };

		b.v = calloc(b.mask + 1, sizeof(*b.v));
		if (!b.v)
			return NULL;
		for (size_t j = 0; t->v && j <= t->mask; j++) {
			if (!t->v[j].used)
				continue;
			for (i = key_hash(&t->v[j].k) & b.mask; b.v[i].used; i = (i + 1) & b.mask)
				;
			b.v[i] = t->v[j];
		}
		b.n = t->n;
		free(t->v);
		*t = b;
	}
	for (i = key_hash(k) & t->mask; t->v[i].used; i = (i + 1) & t->mask)
		if (key_eq(&t->v[i].k, k))
			return &t->v[i].g;
	t->v[i].used = true;
	t->v[i].k = *k;
	t->n++;
	return &t->v[i].g;
}

struct walk {
	struct cb_daemon *d;
	const struct cb_match *mt;
	unsigned int by;
	uint64_t now;
	struct table t;
	uint64_t sessions;
	int err;
};

static void count_one(struct cb_map *m, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	struct walk *w = ctx;
	unsigned int st = cb_session_state(s);
	struct cb_group *g;
	struct gkey k;

	if (w->err || !cb_filter_match(w->mt, s))
		return;
	memset(&k, 0, sizeof(k));
	switch (w->by) {
	case CB_BY_CGROUP:
		k.id = cb_session_cgroup(m, s);
		break;
	case CB_BY_COMM:
		k.id = (s->flags & CB_SF_OWNER_KNOWN) ? s->comm_id : 0;
		break;
	case CB_BY_PORT:
		if (!(s->resets & CB_RESETS_PASSIVE))
			return; /* not the listening side of a service */
		k.port = s->sport;
		break;
	default:
		k.family = (s->flags & CB_SF_FAMILY6) ? 6 : 4;
		memcpy(k.addr, s->daddr, 16);
	}
	g = group_of(&w->t, &k);
	if (!g) {
		w->err = -ENOMEM;
		return;
	}
	w->sessions++;
	g->sessions++;
	g->by_state[st]++;
	if (s->tcp_state < CB_TCP_MAX_STATES)
		g->by_tcp_state[s->tcp_state]++;
	if (st != CB_ST_CLOSED) {
		uint64_t idle = cb_session_idle_ns(s, w->now, cb_map_idle_basis_any(m));

		if (idle > g->oldest_idle_ns)
			g->oldest_idle_ns = idle;
	}
}

static int biggest_first(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;

	if (x->g.sessions != y->g.sessions)
		return x->g.sessions < y->g.sessions ? 1 : -1;
	if (x->k.id != y->k.id)
		return x->k.id < y->k.id ? -1 : 1;
	if (x->k.port != y->k.port)
		return x->k.port < y->k.port ? -1 : 1;
	return memcmp(x->k.addr, y->k.addr, 16);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cb_serve_summary(struct cb_daemon *d, int fd, const struct cb_summary_req *req)
{
	struct walk w = { .d = d, .by = req->by, .now = mono_ns() };
	struct cb_map_cursor cur = { 0 };
	struct cb_end end = { 0 };
	struct {
		struct cb_groups_hdr hdr;
		struct cb_group g[CB_GROUPS_PER_FRAME];
	} *f = NULL;
	struct cb_match mt;
	uint64_t *bits = NULL;
	size_t k = 0;
	int err = 0;

	if (cb_serve_prepare(d, &req->filter, &mt, &bits))
		return cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
	w.mt = &mt;
	while (!cb_map_cursor_done(d->map, &cur))
		cb_map_visit(d->map, &cur, count_one, &w);
	free(bits);
	f = calloc(1, sizeof(*f));
	if (w.err || !f) {
		err = cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
		goto out;
	}
	/* compact the table, biggest group first */
	for (size_t i = 0; w.t.v && i <= w.t.mask; i++)
		if (w.t.v[i].used)
			w.t.v[k++] = w.t.v[i];
	qsort(w.t.v, k, sizeof(*w.t.v), biggest_first);
	for (size_t i = 0; i < k; i++) {
		struct cb_group *g = &f->g[f->hdr.count++];

		*g = w.t.v[i].g;
		switch (req->by) {
		case CB_BY_CGROUP:
			g->cgroup_id = w.t.v[i].k.id;
			break;
		case CB_BY_COMM:
			strncpy(g->comm, cb_comm_name(cb_map_comms(d->map), (uint16_t)w.t.v[i].k.id),
				sizeof(g->comm) - 1);
			break;
		case CB_BY_PORT:
			g->port = w.t.v[i].k.port;
			break;
		default:
			g->family = w.t.v[i].k.family;
			memcpy(g->addr, w.t.v[i].k.addr, 16);
		}
		end.rows++;
		if (f->hdr.count == CB_GROUPS_PER_FRAME || i + 1 == k) {
			err = cb_proto_write(fd, CB_MSG_GROUPS, f,
					     sizeof(f->hdr) + f->hdr.count * sizeof(struct cb_group));
			if (err)
				goto out;
			memset(f, 0, sizeof(*f));
		}
	}
	end.matched = w.sessions > end.rows ? w.sessions : end.rows;
	err = cb_proto_write(fd, CB_MSG_END, &end, sizeof(end));
out:
	free(w.t.v);
	free(f);
	return err;
}
