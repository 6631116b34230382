// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * serve.c — the control requests (wire format: include/connbeat_proto.h),
 * on the client's own thread (control.c).
 *
 * A dump streams: cb_map_dump() copies at most a chunk of sessions per
 * shard-lock hold into this client's buffer, the rows are refreshed from
 * the kernel and written with no lock held, and the next chunk follows. A
 * client that stops reading only blocks its own thread (until the send
 * timeout drops it); ingestion and the wheel never wait for it. A top-N
 * (--sort with --limit) keeps a heap of N rows, still without holding any
 * lock across the walk, and reads the kernel for those N only.
 *
 * A row is the kernel's truth (design.md §3): the first CB_FRESH_ROWS rows
 * of a reply are read from the kernel as they are sent — clocks and the
 * owner's pid from the heartbeats map, TCP state, byte and segment totals,
 * retransmits, RTT and cgroup from sock_diag, looked up exactly (cookie and
 * tuple) in the socket's own network namespace, in batches. Rows past those
 * carry the map's values: as of the last record or sweep. Before a reply,
 * an owners pass runs when sessions of unknown owner exist and the last
 * pass is older than CB_OWNERS_FRESH_NS.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/proto.h"
#include "core/filter.h"
#include "core/state.h"
#include "daemon/daemon.h"
#include "kernel/cgroup.h"
#include "kernel/hbmap.h"
#include "kernel/proc.h"
#include "kernel/record.h"

#pragma GCC poison u8 u16 u32 u64

/* Requests are small; anything bigger is refused unread. */
#define REQUEST_CAP 4096
#define CB_FRESH_ROWS 10000
#define CB_RANK_FRESH_ROWS 100000
#define CB_OWNERS_FRESH_NS (200ull * 1000 * 1000)

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

/* ---- a filter made ready for the map ---------------------------------------- */

struct prepared {
	struct cb_match mt;
	uint64_t *cgroup_bits;
};

/* Resolve the filter's netns and cgroup against the map: the cgroup and its
 * descendants become a bitmap over the interned cgroup ids in use. */
static int prepare(struct cb_daemon *d, const struct cb_filter *f, struct prepared *p)
{
	memset(p, 0, sizeof(*p));
	if (f->fields & CB_FLT_CGROUP) {
		struct cb_intern *ids = cb_map_cgroups(d->map);
		char path[CB_CGROUP_PATH_MAX];

		p->cgroup_bits = calloc(CB_CGROUP_BITMAP_WORDS, sizeof(uint64_t));
		if (!p->cgroup_bits)
			return -ENOMEM;
		for (uint32_t id = 1; id <= CB_INTERN_MAX && d->cgroups; id++) {
			uint64_t cg = cb_intern_key(ids, (uint16_t)id);

			if (cg && !cb_cgroups_path(d->cgroups, cg, path, sizeof(path)) &&
			    cb_cgroup_path_under(path, f->cgroup))
				p->cgroup_bits[id / 64] |= 1ull << (id % 64);
		}
	}
	cb_match_init(&p->mt, f, d->map, p->cgroup_bits);
	return 0;
}

static void unprepare(struct prepared *p)
{
	free(p->cgroup_bits);
}

/* ---- rows -------------------------------------------------------------------- */

static void to_row(struct cb_daemon *d, const struct cb_session *s, uint64_t now, bool basis_any,
		   struct cb_row *r)
{
	const char *comm = cb_comm_name(cb_map_comms(d->map), s->comm_id);

	memset(r, 0, sizeof(*r));
	r->cookie = s->cookie;
	memcpy(r->saddr, s->saddr, 16);
	memcpy(r->daddr, s->daddr, 16);
	r->sport = s->sport;
	r->dport = s->dport;
	r->netns = cb_session_netns(d->map, s);
	r->cgroup_id = cb_session_cgroup(d->map, s);
	r->family = (s->flags & CB_SF_FAMILY6) ? 6 : 4;
	r->tcp_state = s->tcp_state < CB_TCP_MAX_STATES ? s->tcp_state : 0;
	r->state = cb_session_state(s);
	/* due but not yet ticked (the wheel's slot granularity): say it now */
	if (r->state == CB_ST_ACTIVE &&
	    cb_session_idle_ns(s, now, cb_map_idle_basis_any(d->map)) >= cb_map_idle_ns(d->map))
		r->state = CB_ST_STALE;
	if (s->flags & CB_SF_FIRST_UNKNOWN)
		r->flags |= CB_ROW_AGE_UNKNOWN;
	if (s->flags & CB_SF_OWNER_KNOWN) {
		r->flags |= CB_ROW_OWNER_KNOWN;
		r->pid = s->pid;
		strncpy(r->comm, comm, sizeof(r->comm) - 1);
	}
	if (s->flags & CB_SF_OPERATOR_DRAIN)
		r->flags |= CB_ROW_OPERATOR_DRAIN;
	if (s->flags & CB_SF_REMNANT)
		r->flags |= CB_ROW_REMNANT;
	if (s->resets & CB_RESETS_SENT)
		r->flags |= CB_ROW_RST_SENT;
	if (s->resets & CB_RESETS_RECEIVED)
		r->flags |= CB_ROW_RST_RECEIVED;
	if (s->resets & CB_RESETS_PASSIVE)
		r->flags |= CB_ROW_LISTENING_SIDE;
	r->idle_ns = cb_session_idle_ns(s, now, basis_any);
	r->seen_ns = since(now, s->last_seen_ns);
	r->age_ns = since(now, s->first_seen_ns);
	r->tx_bytes = s->tx_bytes;
	r->rx_bytes = s->rx_bytes;
	r->segs_in = s->segs_in;
	r->segs_out = s->segs_out;
	r->retrans = s->retrans;
	r->resets = s->resets & CB_RESETS_COUNT_MAX;
	r->rtt_us = cb_rtt_decode(s->rtt);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* What the kernel says of a batch of rows; `order` indexes the rows by
 * cookie (replies come in lookup order, grouped by netns). */
struct fresh {
	struct cb_row *rows;
	size_t n;
	bool *found;
	uint32_t *order;
	bool *unheld; /* a socket with a file (some process holds it), no owner known */
	size_t n_unheld;
};

static int by_row_cookie(const void *a, const void *b, void *rows)
{
	const struct cb_row *r = rows;
	uint64_t x = r[*(const uint32_t *)a].cookie, y = r[*(const uint32_t *)b].cookie;

	return x < y ? -1 : x > y;
}

static struct cb_row *find_row(struct fresh *fr, uint64_t cookie, size_t *at)
{
	size_t lo = 0, hi = fr->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t c = fr->rows[fr->order[mid]].cookie;

		if (c == cookie) {
			*at = fr->order[mid];
			return &fr->rows[*at];
		}
		if (c < cookie)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int on_fresh(const struct cb_diag_sock *ds, void *ctx)
{
	struct fresh *fr = ctx;
	size_t at;
	struct cb_row *r = find_row(fr, ds->cookie, &at);

	if (!r)
		return 0;
	fr->found[at] = true;
	if (ds->timewait && ds->state != CB_TCP_FIN_WAIT2) {
		/* TIME_WAIT: the connection is over (the CLOSE is on its way) */
		fr->found[at] = false;
		return 0;
	}
	r->tcp_state = ds->state;
	if (ds->timewait)
		r->flags |= CB_ROW_REMNANT;
	if (!ds->inode) {
		/* no socket file: an orphan, a remnant, or a child still in the
		 * accept queue. No process holds it (ss shows no users); the row
		 * keeps its last known owner (design.md §3) and says so */
		r->flags2 |= CB_ROW2_ORPHAN;
	} else if (!(r->flags & CB_ROW_OWNER_KNOWN) && !fr->unheld[at]) {
		fr->unheld[at] = true;
		fr->n_unheld++;
	}
	if (ds->has_info) {
		r->tx_bytes = ds->bytes_acked;
		r->rx_bytes = ds->bytes_received;
		r->segs_in = ds->segs_in;
		r->segs_out = ds->segs_out;
		r->retrans = ds->total_retrans;
		r->rtt_us = ds->rtt_us;
	}
	if (ds->cgroup_id)
		r->cgroup_id = ds->cgroup_id;
	return 0;
}

/*
 * Rows of sockets some process holds (they have a file) whose holder is not
 * known: typically accepted after the owners pass that last looked for them
 * (it marked them sought) and idle since. One owners pass for the query
 * (unless one completed since it began), then the owners it found.
 */
static void find_holders(struct cb_daemon *d, struct fresh *fr, uint64_t now)
{
	if (cb_reconcile_owners(d->reconcile, since(mono_ns(), now)))
		return;
	for (size_t i = 0; i < fr->n; i++) {
		struct cb_row *r = &fr->rows[i];
		struct cb_shard *sh;
		struct cb_session *s;

		if (!fr->unheld[i])
			continue;
		sh = cb_map_shard(d->map, r->cookie);
		cb_shard_lock(sh);
		s = __cb_shard_lookup(sh, r->cookie);
		if (s && (s->flags & CB_SF_OWNER_KNOWN)) {
			r->pid = s->pid;
			r->flags |= CB_ROW_OWNER_KNOWN;
			strncpy(r->comm, cb_comm_name(cb_map_comms(d->map), s->comm_id),
				sizeof(r->comm) - 1);
		}
		cb_shard_unlock(sh);
	}
}

static int by_netns(const void *a, const void *b)
{
	const struct cb_lookup *x = a, *y = b;

	return x->netns < y->netns ? -1 : x->netns > y->netns;
}

/*
 * Bring rows up to date with the kernel: the heartbeats entry (clocks, the
 * pid of a socket's first reader) and sock_diag (state and totals; whether
 * any process can hold the socket). A row whose socket the kernel no longer
 * has is shown closed. `limit` counts down how many rows a reply may still
 * refresh.
 */
static void refresh_rows(struct cb_daemon *d, struct cb_row *rows, size_t n, uint64_t now,
			 bool basis_any, uint32_t *limit)
{
	int hb_fd = d->loader ? cb_loader_map_fd(d->loader, CB_LMAP_HEARTBEATS) : -1;
	uint64_t idle_ns = cb_map_idle_ns(d->map);
	struct cb_lookup *look = calloc(n ? n : 1, sizeof(*look));
	bool *found = calloc(n ? n : 1, sizeof(*found));
	uint32_t *order = calloc(n ? n : 1, sizeof(*order));
	bool *unheld = calloc(n ? n : 1, sizeof(*unheld));
	struct fresh fr = { .rows = rows, .n = n, .found = found, .order = order,
			    .unheld = unheld };
	size_t nl = 0;

	if (!look || !found || !order || !unheld || !*limit)
		goto out;
	for (size_t i = 0; i < n && *limit; i++) {
		struct cb_row *r = &rows[i];
		struct cb_heartbeat hb;

		if (r->state == CB_ST_CLOSED)
			continue;
		(*limit)--;
		if (hb_fd >= 0 && !cb_heartbeat_read_fd(hb_fd, r->cookie, &hb)) {
			if (hb.pid && !(r->flags & CB_ROW_OWNER_KNOWN)) {
				/* a socket's first reader, not yet in the map */
				cb_proc_comm(hb.pid, r->comm);
				r->pid = hb.pid;
				r->flags |= CB_ROW_OWNER_KNOWN;
			}
			r->seen_ns = min64(r->seen_ns, since(now, hb.last_seen_ns));
			r->idle_ns = min64(r->idle_ns, since(now, basis_any ? hb.last_seen_ns :
									      hb.last_data_ns));
		}
		if (d->reconcile && r->netns) {
			look[nl].netns = r->netns;
			look[nl].key.cookie = r->cookie;
			look[nl].key.family = r->family;
			look[nl].key.sport = r->sport;
			look[nl].key.dport = r->dport;
			memcpy(look[nl].key.saddr, r->saddr, 16);
			memcpy(look[nl].key.daddr, r->daddr, 16);
			nl++;
		}
		/* the next heartbeat would revive it: say so now */
		if (r->state == CB_ST_STALE && r->idle_ns < idle_ns)
			r->state = CB_ST_ACTIVE;
	}
	if (!nl)
		goto out;
	qsort(look, nl, sizeof(*look), by_netns);
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, n, sizeof(*order), by_row_cookie, rows);
	if (cb_reconcile_lookup(d->reconcile, look, nl, on_fresh, &fr) < 0)
		goto out;
	if (fr.n_unheld)
		find_holders(d, &fr, now);
	for (size_t i = 0; i < nl; i++) {
		size_t at;
		struct cb_row *r = find_row(&fr, look[i].key.cookie, &at);

		if (!r)
			continue;
		r->flags |= CB_ROW_FRESH;
		if (!found[at]) {
			/* gone from the kernel: its CLOSE is on the rings */
			r->tcp_state = CB_TCP_CLOSE;
			r->state = CB_ST_CLOSED;
		} else if (cb_tcp_state_draining(r->tcp_state) && r->state != CB_ST_DRAINING) {
			r->state = CB_ST_DRAINING;
		}
	}
out:
	free(look);
	free(order);
	free(unheld);
	free(found);
}

/* ---- DUMP -------------------------------------------------------------------- */

struct dump {
	struct cb_daemon *d;
	const struct cb_dump_req *req;
	struct prepared p;
	uint64_t now;
	bool basis_any;
	uint64_t idle_ns, drain_ns; /* the daemon's thresholds */
	uint32_t fresh_left;
	unsigned int sort;
};

/* Stale enough for a stale dump? */
static bool stale_enough(const struct dump *q, unsigned int state, uint64_t idle)
{
	if (q->req->mode != CB_DUMP_STALE)
		return true;
	if (state == CB_ST_CLOSED)
		return false;
	if (q->req->idle_ns)
		return idle >= q->req->idle_ns;
	if (state == CB_ST_STALE)
		return true;
	return idle >= (state == CB_ST_DRAINING ? q->drain_ns : q->idle_ns);
}

/* Runs under the shard lock for every session: compares only. A refresh
 * can only make a session less idle, so one not idle enough here never is. */
static bool dump_match(const struct cb_session *s, void *ctx)
{
	const struct dump *q = ctx;

	return cb_filter_match(&q->p.mt, s) &&
	       stale_enough(q, cb_session_state(s), cb_session_idle_ns(s, q->now, q->basis_any));
}

/* The exact check on a row read from the kernel. */
static bool row_wanted(const struct dump *q, const struct cb_row *r)
{
	if (q->req->mode == CB_DUMP_STALE && r->state == CB_ST_STALE && !q->req->idle_ns &&
	    r->idle_ns >= q->idle_ns)
		return cb_filter_match_row(&q->req->filter, r);
	return cb_filter_match_row(&q->req->filter, r) &&
	       (q->req->mode != CB_DUMP_STALE ||
		(r->state != CB_ST_CLOSED &&
		 r->idle_ns >= (q->req->idle_ns ? q->req->idle_ns :
				r->state == CB_ST_DRAINING ? q->drain_ns : q->idle_ns)));
}

/* Does a come after b in a --sort order? */
static bool after(unsigned int sort, const struct cb_row *a, const struct cb_row *b)
{
	return cb_row_sort_cmp(sort, a, b) > 0;
}

/* The top N: a heap whose root is the row that comes last. */
struct heap {
	struct cb_row *v;
	uint32_t n, cap, limit;
	unsigned int sort;
};

static void heap_swap(struct cb_row *a, struct cb_row *b)
{
	struct cb_row t = *a;

	*a = *b;
	*b = t;
}

static void heap_down(struct heap *h, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && after(h->sort, &h->v[l], &h->v[m]))
			m = l;
		if (r < h->n && after(h->sort, &h->v[r], &h->v[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(&h->v[i], &h->v[m]);
		i = m;
	}
}

static int heap_push(struct heap *h, const struct cb_row *r)
{
	if (h->n < h->limit) {
		uint32_t i;

		if (h->n == h->cap) {
			uint32_t cap = h->cap ? 2 * h->cap : 256;
			struct cb_row *v;

			if (cap > h->limit)
				cap = h->limit;
			v = realloc(h->v, (size_t)cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			h->v = v;
			h->cap = cap;
		}
		h->v[i = h->n++] = *r;
		while (i && after(h->sort, &h->v[i], &h->v[(i - 1) / 2])) {
			heap_swap(&h->v[i], &h->v[(i - 1) / 2]);
			i = (i - 1) / 2;
		}
	} else if (after(h->sort, &h->v[0], r)) {
		h->v[0] = *r;
		heap_down(h, 0);
	}
	return 0;
}

static int cmp_sorted(const void *a, const void *b, void *sort)
{
	return cb_row_sort_cmp(*(const unsigned int *)sort, a, b);
}

/* A ROWS frame under construction. */
struct rows_frame {
	struct cb_rows_hdr hdr;
	struct cb_row row[CB_ROWS_PER_FRAME];
};

static int flush_rows(int fd, struct rows_frame *f)
{
	int err;

	if (!f->hdr.count)
		return 0;
	err = cb_proto_write(fd, CB_MSG_ROWS, f,
			     sizeof(f->hdr) + f->hdr.count * sizeof(struct cb_row));
	f->hdr.count = 0;
	return err;
}

static int put_row(int fd, struct rows_frame *f, const struct cb_row *r)
{
	f->row[f->hdr.count++] = *r;
	return f->hdr.count == CB_ROWS_PER_FRAME ? flush_rows(fd, f) : 0;
}

/* Owners as of now, when some are unknown (bounded: at most one pass per
 * CB_OWNERS_FRESH_NS, shared by concurrent requests). */
static void fresh_owners(struct cb_daemon *d)
{
	if (d->reconcile && cb_map_unowned(d->map))
		cb_reconcile_owners(d->reconcile, CB_OWNERS_FRESH_NS);
}

static int serve_dump(struct cb_daemon *d, int fd, const struct cb_dump_req *req)
{
	struct dump q = {
		.d = d,
		.req = req,
		.idle_ns = cb_map_idle_ns(d->map),
		.drain_ns = cb_map_drain_timeout_ns(d->map),
		.fresh_left = CB_FRESH_ROWS,
		.sort = req->sort ? req->sort : req->mode == CB_DUMP_STALE ? CB_SORT_IDLE : 0,
	};
	struct heap h = { .limit = req->limit };
	struct cb_map_cursor cur = {};
	struct cb_end end = {};
	struct cb_session *chunk;
	struct cb_row *rows;
	struct rows_frame *f;
	bool top_n = req->limit && q.sort;
	/* the map keeps counters and RTT as of the last record or sweep, and
	 * clocks as of the last beat (throttled: the heartbeats entry is
	 * newer): a top-N by them ranks the kernel's values, for up to
	 * CB_RANK_FRESH_ROWS candidates (then the map's, at most a
	 * --sweep-period old) */
	bool kernel_key = q.sort == CB_SORT_TX || q.sort == CB_SORT_RX ||
			  q.sort == CB_SORT_RETRANS || q.sort == CB_SORT_RTT ||
			  q.sort == CB_SORT_IDLE;
	uint32_t rank_left = CB_RANK_FRESH_ROWS;
	size_t n;
	int err = 0;

	h.sort = q.sort;
	q.basis_any = req->idle_basis == CB_BASIS_DEFAULT ? cb_map_idle_basis_any(d->map) :
							     req->idle_basis == CB_BASIS_ANY;
	fresh_owners(d);
	q.now = mono_ns();
	/* calloc: the pages are touched here, not on first copy under a lock */
	chunk = calloc(CB_MAP_CHUNK, sizeof(*chunk));
	rows = calloc(CB_MAP_CHUNK, sizeof(*rows));
	f = malloc(sizeof(*f));
	if (!chunk || !rows || !f || prepare(d, &req->filter, &q.p)) {
		err = cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
		goto out;
	}
	/* each row is refreshed, then checked exactly; a top-N is chosen on
	 * the map's values (it reads the kernel for its N only) */
	q.p.mt.rows_checked = !top_n;
	f->hdr.count = 0;
	f->hdr.__pad0 = 0;
	while (!cb_map_cursor_done(d->map, &cur)) {
		n = cb_map_dump(d->map, &cur, dump_match, &q, chunk, CB_MAP_CHUNK);
		for (size_t i = 0; i < n; i++)
			to_row(d, &chunk[i], q.now, q.basis_any, &rows[i]);
		if (!top_n)
			refresh_rows(d, rows, n, q.now, q.basis_any, &q.fresh_left);
		else if (kernel_key)
			refresh_rows(d, rows, n, q.now, q.basis_any, &rank_left);
		for (size_t i = 0; i < n; i++) {
			if (!row_wanted(&q, &rows[i]))
				continue;
			end.matched++;
			if (top_n) {
				if (heap_push(&h, &rows[i])) {
					end.status = ENOMEM;
					goto send_heap;
				}
				continue;
			}
			if (req->limit && end.rows >= req->limit)
				continue; /* keep counting matches */
			end.rows++;
			if ((err = put_row(fd, f, &rows[i])))
				goto out;
		}
	}
send_heap:
	if (top_n) {
		/* the kernel's values for the N chosen, then their order */
		for (uint32_t i = 0; i < h.n; i += CB_MAP_CHUNK)
			refresh_rows(d, h.v + i, h.n - i < CB_MAP_CHUNK ? h.n - i : CB_MAP_CHUNK,
				     q.now, q.basis_any, &q.fresh_left);
		qsort_r(h.v, h.n, sizeof(*h.v), cmp_sorted, &h.sort);
		end.matched = 0;
		for (uint32_t i = 0; i < h.n; i++) {
			if (!row_wanted(&q, &h.v[i]))
				continue;
			end.matched++;
			end.rows++;
			if ((err = put_row(fd, f, &h.v[i])))
				goto out;
		}
	}
	err = flush_rows(fd, f);
	if (!err)
		err = cb_proto_write(fd, CB_MSG_END, &end, sizeof(end));
out:
	unprepare(&q.p);
	free(h.v);
	free(chunk);
	free(rows);
	free(f);
	return err;
}

/* ---- STATS ------------------------------------------------------------------- */

static int serve_stats(struct cb_daemon *d, int fd)
{
	struct cb_stat_entry *e = NULL;
	struct {
		struct cb_stats_hdr hdr;
		struct cb_stat_entry e[];
	} *msg;
	uint32_t n = 0;
	size_t len;
	int err;

	if (cb_metrics_entries(cb_daemon_collect, d, &e, &n))
		return cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
	len = sizeof(msg->hdr) + (size_t)n * sizeof(*e);
	msg = calloc(1, len);
	if (!msg) {
		free(e);
		return cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
	}
	msg->hdr.count = n;
	memcpy(msg->e, e, (size_t)n * sizeof(*e));
	err = cb_proto_write(fd, CB_MSG_STATS, msg, (uint32_t)len);
	free(msg);
	free(e);
	return err;
}

/* ---- DRAIN, DRAIN_STATUS, KILL ---------------------------------------------- */

/* A set of sessions a client drained, kept on its connection: every
 * matching open session when the drain was asked, whatever state it moves
 * to afterwards, until it is closed. */
struct conn {
	struct cb_daemon *d;
	struct ucred peer;
	struct cb_lookups set;
};

struct drain_walk {
	struct conn *c;
	const struct cb_match *mt;
	bool keep;
	struct cb_drained out;
	int err;
};

static void drain_one(struct cb_map *m, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	struct drain_walk *w = ctx;
	unsigned int st = cb_session_state(s);
	struct cb_lookup l;

	if (st == CB_ST_CLOSED || !cb_filter_match(w->mt, s))
		return;
	w->out.matched++;
	if ((st == CB_ST_ACTIVE || st == CB_ST_STALE) &&
	    __cb_session_transition(m, sh, s, st, CB_ST_DRAINING)) {
		s->flags |= CB_SF_OPERATOR_DRAIN;
		w->out.count++;
	}
	if (w->keep && !w->err) {
		cb_lookup_of_session(w->c->d->map, s, &l);
		w->err = cb_lookups_push(&w->c->set, &l);
	}
}

static int serve_drain(struct conn *c, int fd, const struct cb_drain_req *req)
{
	struct cb_daemon *d = c->d;
	struct drain_walk w = { .c = c, .keep = req->flags & CB_DRAIN_KEEP };
	struct cb_map_cursor cur = { 0 };
	struct prepared p;

	if (prepare(d, &req->filter, &p))
		return cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
	w.mt = &p.mt;
	c->set.n = 0;
	while (!cb_map_cursor_done(d->map, &cur))
		cb_map_visit(d->map, &cur, drain_one, &w);
	unprepare(&p);
	if (w.err)
		return cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
	cb_info("drain requested by uid %u: %llu sessions marked DRAINING (%llu matched)",
		(unsigned)c->peer.uid, (unsigned long long)w.out.count,
		(unsigned long long)w.out.matched);
	return cb_proto_write(fd, CB_MSG_DRAINED, &w.out, sizeof(w.out));
}

/* Drop the closed and evicted from the kept set; the open ones, as rows. */
static size_t still_open(struct conn *c, struct cb_row *rows_out, uint64_t now)
{
	size_t kept = 0;

	for (size_t i = 0; i < c->set.n; i++) {
		struct cb_shard *sh = cb_map_shard(c->d->map, c->set.v[i].key.cookie);
		struct cb_session *s;
		bool open;

		cb_shard_lock(sh);
		s = __cb_shard_lookup(sh, c->set.v[i].key.cookie);
		open = s && cb_session_state(s) != CB_ST_CLOSED;
		if (open && rows_out)
			to_row(c->d, s, now, cb_map_idle_basis_any(c->d->map), &rows_out[kept]);
		cb_shard_unlock(sh);
		if (open)
			c->set.v[kept++] = c->set.v[i];
	}
	c->set.n = kept;
	return kept;
}

static int serve_drain_status(struct conn *c, int fd, const struct cb_drain_status_req *req)
{
	struct cb_end end = { 0 };
	struct cb_row *rows = NULL;
	struct rows_frame *f = NULL;
	int err = 0;

	if (req->rows && c->set.n) {
		rows = calloc(c->set.n, sizeof(*rows));
		f = malloc(sizeof(*f));
		if (!rows || !f) {
			err = cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
			goto out;
		}
		f->hdr.count = f->hdr.__pad0 = 0;
	}
	end.matched = still_open(c, rows, mono_ns());
	for (size_t i = 0; rows && i < end.matched; i++) {
		end.rows++;
		if ((err = put_row(fd, f, &rows[i])))
			goto out;
	}
	if (f)
		err = flush_rows(fd, f);
	if (!err)
		err = cb_proto_write(fd, CB_MSG_END, &end, sizeof(end));
out:
	free(rows);
	free(f);
	return err;
}

/* The sockets to kill: the kept set, or what the filter selects now. */
struct kill_walk {
	struct cb_daemon *d;
	const struct cb_match *mt;
	struct cb_lookup *v;
	struct cb_row *rows;
	size_t n, cap;
	uint64_t now;
	int err;
};

static void kill_pick(struct cb_map *m, struct cb_shard *sh, struct cb_session *s, void *ctx)
{
	struct kill_walk *w = ctx;

	if (w->err || cb_session_state(s) == CB_ST_CLOSED || !cb_filter_match(w->mt, s))
		return;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 256;
		struct cb_lookup *v = realloc(w->v, cap * sizeof(*v));
		struct cb_row *r = v ? realloc(w->rows, cap * sizeof(*r)) : NULL;

		if (v)
			w->v = v;
		if (!v || !r) {
			w->err = -ENOMEM;
			return;
		}
		w->rows = r;
		w->cap = cap;
	}
	cb_lookup_of_session(w->d->map, s, &w->v[w->n]);
	to_row(w->d, s, w->now, cb_map_idle_basis_any(m), &w->rows[w->n]);
	w->n++;
}

/* The candidates as the kernel has them now: the ones gone meanwhile, and
 * those whose TCP state moved out of a --tcp-state filter (the map's is
 * that of the first step of a close), are not killed. */
static void kill_exact(struct cb_daemon *d, const struct cb_kill_req *req, struct kill_walk *w)
{
	uint32_t limit = UINT32_MAX;
	size_t kept = 0;

	refresh_rows(d, w->rows, w->n, w->now, cb_map_idle_basis_any(d->map), &limit);
	for (size_t i = 0; i < w->n; i++) {
		if (w->rows[i].state == CB_ST_CLOSED ||
		    (!(req->flags & CB_KILL_DRAINED) &&
		     !cb_filter_match_row(&req->filter, &w->rows[i])))
			continue;
		w->rows[kept] = w->rows[i];
		w->v[kept++] = w->v[i];
	}
	w->n = kept;
}

static int serve_kill(struct conn *c, int fd, const struct cb_kill_req *req)
{
	struct cb_daemon *d = c->d;
	struct kill_walk w = { .d = d, .now = mono_ns() };
	bool dry = req->flags & CB_KILL_DRY_RUN;
	struct cb_map_cursor cur = { 0 };
	struct cb_end end = { 0 };
	struct rows_frame *f = malloc(sizeof(*f));
	struct prepared p;
	int *res = NULL, err = 0;

	if (!(req->flags & CB_KILL_DRAINED) && !req->filter.fields) {
		free(f);
		return cb_proto_write_error(fd, EINVAL, "kill needs a filter: give one "
				"(--port, --tcp-state, ...); nothing was killed");
	}
	if (!f || prepare(d, &req->filter, &p)) {
		free(f);
		return cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
	}
	f->hdr.count = f->hdr.__pad0 = 0;
	/* owners as of now; each candidate is checked exactly (kill_exact) */
	if (req->filter.fields & CB_FLT_PID)
		fresh_owners(d);
	p.mt.rows_checked = true;
	w.mt = &p.mt;
	if (req->flags & CB_KILL_DRAINED) {
		/* the kept set, as it stands: the open ones only */
		struct cb_row *rows = calloc(c->set.n ? c->set.n : 1, sizeof(*rows));

		if (!rows) {
			w.err = -ENOMEM;
		} else {
			size_t k = still_open(c, rows, w.now);

			w.v = malloc((k ? k : 1) * sizeof(*w.v));
			if (w.v) {
				memcpy(w.v, c->set.v, k * sizeof(*w.v));
				w.rows = rows;
				w.n = k;
			} else {
				free(rows);
				w.err = -ENOMEM;
			}
		}
	} else {
		while (!cb_map_cursor_done(d->map, &cur))
			cb_map_visit(d->map, &cur, kill_pick, &w);
	}
	unprepare(&p);
	if (w.err) {
		err = cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
		goto out;
	}
	kill_exact(d, req, &w);
	end.matched = w.n;
	if (!dry && w.n) {
		res = calloc(w.n, sizeof(*res));
		if (!res) {
			err = cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
			goto out;
		}
		err = cb_reconcile_destroy(d->reconcile, w.v, w.n, res);
		if (err == -EOPNOTSUPP) {
			err = cb_proto_write_error(fd, EOPNOTSUPP,
						   "this kernel cannot destroy sockets: it needs "
						   "CONFIG_INET_DIAG_DESTROY=y (ss -K needs it too)");
			goto out;
		}
		if (err < 0) {
			err = cb_proto_write_error(fd, -err, "killing failed: %s", strerror(-err));
			goto out;
		}
		err = 0;
	}
	for (size_t i = 0; i < w.n; i++) {
		char a[CB_ADDRPORT_LEN], b[CB_ADDRPORT_LEN];

		if (!dry && res[i]) {
			/* gone before its turn (closed, or reset by its peer killed
			 * just before: both ends of a local connection): nothing is
			 * left to kill, so it is no failure to report */
			if (res[i] == -ENOENT)
				end.matched--;
			continue; /* refused: not killed */
		}
		if (!dry) {
			atomic_fetch_add_explicit(&d->kills, 1, memory_order_relaxed);
			cb_info("kill by uid %u: %s > %s (cookie %llu, netns %u) destroyed",
				(unsigned)c->peer.uid,
				cb_format_addrport(w.rows[i].family, w.rows[i].saddr, w.rows[i].sport,
						   a, sizeof(a)),
				cb_format_addrport(w.rows[i].family, w.rows[i].daddr, w.rows[i].dport,
						   b, sizeof(b)),
				(unsigned long long)w.rows[i].cookie, w.rows[i].netns);
		}
		end.rows++;
		if ((err = put_row(fd, f, &w.rows[i])))
			goto out;
	}
	err = flush_rows(fd, f);
	if (!err)
		err = cb_proto_write(fd, CB_MSG_END, &end, sizeof(end));
out:
	free(res);
	free(w.v);
	free(w.rows);
	free(f);
	return err;
}

/* ---- dispatch ------------------------------------------------------------------ */

static void count(struct cb_daemon *d, unsigned int type)
{
	atomic_fetch_add_explicit(&d->requests[type < CB_MSG_REQ_MAX ? type : 0], 1,
				  memory_order_relaxed);
}

void cb_serve_client(int fd, const struct ucred *peer, void *ctx)
{
	static struct cb_ratelimit bad_rl = CB_RATELIMIT_INIT(1000, 5);
	struct cb_daemon *d = ctx;
	struct conn c = { .d = d, .peer = *peer };
	struct cb_frame_hdr h;
	union {
		struct cb_dump_req dump;
		struct cb_drain_req drain;
		struct cb_drain_status_req status;
		struct cb_kill_req kill;
		struct cb_summary_req summary;
		struct cb_events_req events;
	} req;
	char *buf = malloc(REQUEST_CAP);
	const char *why;
	int err;

	if (!buf)
		return;
	for (;;) {
		why = NULL;
		err = cb_proto_read(fd, &h, buf, REQUEST_CAP, &why);
		if (err == -ENODATA)
			break;
		if (err) {
			if (!why) /* the connection failed or timed out: nothing to answer */
				break;
			count(d, 0);
			cb_log_ratelimited(&bad_rl, CB_LOG_WARN,
					   "control: malformed request from pid %d: %s", (int)peer->pid,
					   why);
			if (err == -EPROTONOSUPPORT)
				cb_proto_write_error(fd, EPROTONOSUPPORT,
						     "%s: use the connbeat that came with this "
						     "connbeatd (protocol version %d)",
						     why, CB_PROTO_VERSION);
			else
				cb_proto_write_error(fd, EINVAL, "malformed request: %s", why);
			break; /* the stream may be out of step: start afresh */
		}
		if (peer->uid != 0) {
			count(d, 0);
			cb_proto_write_error(fd, EACCES,
					     "connbeatd serves root only (uid %u asked); run connbeat "
					     "with sudo",
					     (unsigned)peer->uid);
			break;
		}
		switch (h.type) {
		case CB_MSG_DUMP_REQ:
			err = cb_proto_decode_dump_req(buf, h.length, &req.dump, &why);
			if (!err) {
				count(d, h.type);
				err = serve_dump(d, fd, &req.dump);
			}
			break;
		case CB_MSG_STATS_REQ:
			if (h.length) {
				err = -EINVAL;
				why = "STATS_REQ has the wrong size";
			} else {
				count(d, h.type);
				err = serve_stats(d, fd);
			}
			break;
		case CB_MSG_DRAIN_REQ:
			err = cb_proto_decode_drain_req(buf, h.length, &req.drain, &why);
			if (!err) {
				count(d, h.type);
				err = serve_drain(&c, fd, &req.drain);
			}
			break;
		case CB_MSG_DRAIN_STATUS_REQ:
			err = cb_proto_decode_drain_status_req(buf, h.length, &req.status, &why);
			if (!err) {
				count(d, h.type);
				err = serve_drain_status(&c, fd, &req.status);
			}
			break;
		case CB_MSG_KILL_REQ:
			err = cb_proto_decode_kill_req(buf, h.length, &req.kill, &why);
			if (!err) {
				count(d, h.type);
				err = serve_kill(&c, fd, &req.kill);
			}
			break;
		case CB_MSG_SUMMARY_REQ:
			err = cb_proto_decode_summary_req(buf, h.length, &req.summary, &why);
			if (!err) {
				count(d, h.type);
				err = cb_serve_summary(d, fd, &req.summary);
			}
			break;
		case CB_MSG_EVENTS_REQ:
			err = cb_proto_decode_events_req(buf, h.length, &req.events, &why);
			if (!err) {
				count(d, h.type);
				err = cb_serve_events(d, fd, &req.events);
			}
			break;
		default:
			err = -EINVAL;
			why = "unexpected message type: not a request";
		}
		if (err == -EINVAL && why) { /* a decoder's verdict */
			count(d, 0);
			cb_proto_write_error(fd, EINVAL, "%s", why);
			continue; /* whole frame read: the stream is still in step */
		}
		if (err)
			break; /* the client went away or stopped reading */
	}
	cb_lookups_free(&c.set);
	free(buf);
}

/* For summary.c and events.c. */
void cb_serve_to_row(struct cb_daemon *d, const struct cb_session *s, uint64_t now,
		     struct cb_row *r)
{
	to_row(d, s, now, cb_map_idle_basis_any(d->map), r);
}

int cb_serve_prepare(struct cb_daemon *d, const struct cb_filter *f, struct cb_match *mt,
		     uint64_t **bits)
{
	struct prepared p;
	int err = prepare(d, f, &p);

	if (!err) {
		*mt = p.mt;
		*bits = p.cgroup_bits;
	}
	return err;
}
