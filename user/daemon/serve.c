// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * serve.c — the control requests: DUMP, STATS and DRAIN (wire format:
 * include/connbeat_proto.h), on the client's own thread (control.c).
 *
 * A dump streams: cb_map_dump() copies at most a chunk of sessions per
 * shard-lock hold into this client's buffer, the rows are written with no
 * lock held, and the next chunk follows. A client that stops reading only
 * blocks its own thread (until the send timeout drops it); ingestion and the
 * wheel never wait for it. The one exception to streaming is `stale
 * --limit N`, which must find the N most idle sessions: it keeps a heap of
 * N rows, still without holding any lock across the walk.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"
#include "core/filter.h"
#include "common/log.h"
#include "kernel/proc.h"
#include "common/proto.h"
#include "core/state.h"

#pragma GCC poison u8 u16 u32 u64

/* Requests are small; anything bigger is refused unread. */
#define REQUEST_CAP 4096

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct dump {
	struct cb_daemon *d;
	const struct cb_dump_req *req;
	uint64_t now;
	bool basis_any;
	uint64_t idle_ns, drain_ns; /* the daemon's thresholds */
	int hb_fd;                  /* the pinned heartbeats map, -1: none */
	uint32_t fresh_left;        /* rows still to refresh from it */
	struct cb_filter nopid;     /* the filter without --pid (see dump_match) */
};

/*
 * Counters and clocks reach the map with throttled heartbeats and with each
 * reconciliation, so a connection that just moved data may be up to a beat
 * interval (busy) or a reconcile interval (gone quiet) behind. For an
 * interactive answer, the first CB_FRESH_ROWS rows of a dump are refreshed
 * from the kernel's own map entry: one lookup each, no lock held; beyond
 * that a dump of millions streams the map's values as they are.
 */
#define CB_FRESH_ROWS 10000

/* Runs under the shard lock for every session: compares only. */
static bool dump_match(const struct cb_session *s, void *ctx)
{
	const struct dump *q = ctx;
	unsigned int st;
	uint64_t idle;

	/* An accepted socket's owner reaches the map with a beat or the next
	 * reconciliation; until then the kernel's entry knows it: let --pid
	 * pass such a session here, refresh_row() decides from that entry. */
	if (!cb_filter_match(&q->req->filter, s) &&
	    (!(q->req->filter.fields & CB_FLT_PID) || (s->flags & CB_SF_OWNER_KNOWN) ||
	     !cb_filter_match(&q->nopid, s)))
		return false;
	if (q->req->mode != CB_DUMP_STALE)
		return true;
	st = cb_session_state(s);
	if (st == CB_ST_CLOSED)
		return false;
	idle = cb_session_idle_ns(s, q->now, q->basis_any);
	if (q->req->idle_ns)
		return idle >= q->req->idle_ns;
	if (st == CB_ST_STALE)
		return true;
	return idle >= (st == CB_ST_DRAINING ? q->drain_ns : q->idle_ns);
}

static uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

static void to_row(const struct dump *q, const struct cb_session *s, struct cb_row *r)
{
	const char *comm = cb_comm_name(cb_map_comms(q->d->map), s->comm_id);

	memset(r, 0, sizeof(*r));
	r->cookie = s->cookie;
	memcpy(r->saddr, s->saddr, 16);
	memcpy(r->daddr, s->daddr, 16);
	r->sport = s->sport;
	r->dport = s->dport;
	r->netns = s->netns;
	r->family = (s->flags & CB_SF_FAMILY6) ? 6 : 4;
	r->tcp_state = s->tcp_state < CB_TCP_MAX_STATES ? s->tcp_state : 0;
	r->state = cb_session_state(s);
	if (s->flags & CB_SF_FIRST_UNKNOWN)
		r->flags |= CB_ROW_AGE_UNKNOWN;
	if (s->flags & CB_SF_OWNER_KNOWN) {
		r->flags |= CB_ROW_OWNER_KNOWN;
		r->pid = s->pid;
		strncpy(r->comm, comm, sizeof(r->comm) - 1);
	}
	if (s->flags & CB_SF_OPERATOR_DRAIN)
		r->flags |= CB_ROW_OPERATOR_DRAIN;
	r->idle_ns = cb_session_idle_ns(s, q->now, q->basis_any);
	r->seen_ns = since(q->now, s->last_seen_ns);
	r->age_ns = since(q->now, s->first_seen_ns);
	r->tx_bytes = s->tx_bytes;
	r->rx_bytes = s->rx_bytes;
	r->segs_in = s->segs_in;
	r->segs_out = s->segs_out;
	r->retrans = s->retrans;
	r->resets = s->resets;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Bring a row up to date with the kernel's heartbeats entry. False when the
 * row no longer belongs in the dump: a stale dump's row that was active
 * after all, or a --pid dump's row whose owner turns out to be another. */
static bool refresh_row(struct dump *q, struct cb_row *r)
{
	const struct cb_filter *f = &q->req->filter;
	bool as_is = !(f->fields & CB_FLT_PID) || (r->flags & CB_ROW_OWNER_KNOWN);
	struct cb_heartbeat hb;
	uint64_t data_ago, seen_ago;

	if (q->hb_fd < 0 || !q->fresh_left || r->state == CB_ST_CLOSED)
		return as_is;
	q->fresh_left--;
	if (cb_heartbeat_read_fd(q->hb_fd, r->cookie, &hb))
		return as_is; /* no entry: closing, or evicted by the kernel's LRU */
	if (hb.pid && !(r->flags & CB_ROW_OWNER_KNOWN)) {
		/* an accepted socket's first reader, not yet merged by a
		 * reconciliation */
		cb_proc_comm(hb.pid, r->comm);
		r->pid = hb.pid;
		r->flags |= CB_ROW_OWNER_KNOWN;
	}
	if (hb.tx_bytes > r->tx_bytes)
		r->tx_bytes = hb.tx_bytes;
	if (hb.rx_bytes > r->rx_bytes)
		r->rx_bytes = hb.rx_bytes;
	data_ago = since(q->now, hb.last_data_ns);
	seen_ago = since(q->now, hb.last_seen_ns);
	r->seen_ns = min64(r->seen_ns, seen_ago);
	r->idle_ns = min64(r->idle_ns, q->basis_any ? seen_ago : data_ago);
	/* the next heartbeat would revive it: say so now */
	if (r->state == CB_ST_STALE && r->idle_ns < q->idle_ns)
		r->state = CB_ST_ACTIVE;
	if ((f->fields & CB_FLT_PID) && (!(r->flags & CB_ROW_OWNER_KNOWN) || r->pid != f->pid))
		return false;
	if (q->req->mode != CB_DUMP_STALE)
		return true;
	if (q->req->idle_ns)
		return r->idle_ns >= q->req->idle_ns;
	return r->idle_ns >= (r->state == CB_ST_DRAINING ? q->drain_ns : q->idle_ns);
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

/* Min-heap on idle_ns: the root is the least idle of the N kept. */
static void heap_sift_down(struct cb_row *h, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		struct cb_row t;

		if (l < n && h[l].idle_ns < h[m].idle_ns)
			m = l;
		if (r < n && h[r].idle_ns < h[m].idle_ns)
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void heap_sift_up(struct cb_row *h, uint32_t i)
{
	while (i) {
		uint32_t p = (i - 1) / 2;
		struct cb_row t;

		if (h[p].idle_ns <= h[i].idle_ns)
			return;
		t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

static int cmp_most_idle(const void *a, const void *b)
{
	const struct cb_row *x = a, *y = b;

	return x->idle_ns < y->idle_ns ? 1 : x->idle_ns > y->idle_ns ? -1 : 0;
}

static int serve_dump(struct cb_daemon *d, int fd, const struct cb_dump_req *req)
{
	struct dump q = {
		.d = d,
		.req = req,
		.now = mono_ns(),
		.idle_ns = cb_map_idle_ns(d->map),
		.drain_ns = cb_map_drain_timeout_ns(d->map),
		.hb_fd = d->loader ? cb_loader_map_fd(d->loader, CB_LMAP_HEARTBEATS) : -1,
		.fresh_left = CB_FRESH_ROWS,
		.nopid = req->filter,
	};
	struct cb_map_cursor cur = {};
	struct cb_end end = {};
	struct cb_session *chunk;
	struct rows_frame *f;
	struct cb_row *heap = NULL;
	uint32_t heap_n = 0, heap_cap = 0;
	bool top_n = req->mode == CB_DUMP_STALE && req->limit;
	size_t n;
	int err = 0;

	q.nopid.fields &= ~CB_FLT_PID;
	q.basis_any = req->idle_basis == CB_BASIS_DEFAULT ? cb_map_idle_basis_any(d->map) :
							     req->idle_basis == CB_BASIS_ANY;
	/* calloc: the pages are touched here, not on first copy under a lock */
	chunk = calloc(CB_MAP_CHUNK, sizeof(*chunk));
	f = malloc(sizeof(*f));
	if (!chunk || !f) {
		err = cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
		goto out;
	}
	f->hdr.count = 0;
	f->hdr.__pad0 = 0;
	while (!cb_map_cursor_done(d->map, &cur)) {
		n = cb_map_dump(d->map, &cur, dump_match, &q, chunk, CB_MAP_CHUNK);
		for (size_t i = 0; i < n; i++) {
			struct cb_row row;

			to_row(&q, &chunk[i], &row);
			if (!refresh_row(&q, &row))
				continue;
			end.matched++;
			if (top_n) {
				if (heap_n < req->limit) {
					if (heap_n == heap_cap) {
						uint32_t cap = heap_cap ? 2 * heap_cap : 256;
						struct cb_row *h;

						if (cap > req->limit)
							cap = req->limit;
						h = realloc(heap, (size_t)cap * sizeof(*h));
						if (!h) {
							end.status = ENOMEM;
							goto send_heap;
						}
						heap = h;
						heap_cap = cap;
					}
					heap[heap_n] = row;
					heap_sift_up(heap, heap_n++);
				} else if (row.idle_ns > heap[0].idle_ns) {
					heap[0] = row;
					heap_sift_down(heap, heap_n, 0);
				}
				continue;
			}
			if (req->limit && end.rows >= req->limit)
				continue; /* keep counting matches */
			f->row[f->hdr.count++] = row;
			end.rows++;
			if (f->hdr.count == CB_ROWS_PER_FRAME) {
				err = flush_rows(fd, f);
				if (err)
					goto out;
			}
		}
	}
send_heap:
	if (top_n) {
		qsort(heap, heap_n, sizeof(*heap), cmp_most_idle);
		for (uint32_t i = 0; i < heap_n; i++) {
			f->row[f->hdr.count++] = heap[i];
			end.rows++;
			if (f->hdr.count == CB_ROWS_PER_FRAME && (err = flush_rows(fd, f)))
				goto out;
		}
	}
	err = flush_rows(fd, f);
	if (!err)
		err = cb_proto_write(fd, CB_MSG_END, &end, sizeof(end));
out:
	free(heap);
	free(chunk);
	free(f);
	return err;
}

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

static bool drain_match(const struct cb_session *s, void *ctx)
{
	return cb_filter_match(ctx, s);
}

static int serve_drain(struct cb_daemon *d, int fd, const struct cb_drain_req *req)
{
	struct cb_drained out = { .count = cb_map_drain(d->map, drain_match, (void *)&req->filter) };

	cb_info("drain requested: %llu sessions marked DRAINING", (unsigned long long)out.count);
	return cb_proto_write(fd, CB_MSG_DRAINED, &out, sizeof(out));
}

static void count(struct cb_daemon *d, unsigned int type)
{
	atomic_fetch_add_explicit(&d->requests[type < 4 ? type : 0], 1, memory_order_relaxed);
}

void cb_serve_client(int fd, const struct ucred *peer, void *ctx)
{
	static struct cb_ratelimit bad_rl = CB_RATELIMIT_INIT(1000, 5);
	struct cb_daemon *d = ctx;
	struct cb_frame_hdr h;
	union {
		struct cb_dump_req dump;
		struct cb_drain_req drain;
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
				err = serve_drain(d, fd, &req.drain);
			}
			break;
		default:
			err = -EINVAL;
			why = "unexpected message type: a request must be DUMP_REQ, STATS_REQ or "
			      "DRAIN_REQ";
		}
		if (err == -EINVAL && why) { /* a decoder's verdict */
			count(d, 0);
			cb_proto_write_error(fd, EINVAL, "%s", why);
			continue; /* whole frame read: the stream is still in step */
		}
		if (err)
			break; /* the client went away or stopped reading */
	}
	free(buf);
}
