// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* events.c — see events.h. */
#include "daemon/events.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "core/filter.h"
#include "core/state.h"
#include "daemon/daemon.h"
#include "kernel/cgroup.h"

#pragma GCC poison u8 u16 u32 u64

/* A subscriber's ring: the publishers write head one at a time (under
 * cb_events.lock), the client's thread alone writes tail (single producer,
 * single consumer). */
struct sub {
	struct cb_match mt;
	uint64_t *bits;    /* cgroup ids under the filter's path */
	uint64_t *checked; /* ... whose path has been looked at */
	struct cb_event ring[CB_EVENTS_RING];
	_Atomic uint64_t head, tail;
	_Atomic uint64_t missed;
};

struct cb_events {
	struct cb_daemon *d;
	pthread_mutex_t lock; /* subs[] changes; publish holds it while it runs */
	struct sub *subs[CB_EVENTS_MAX_SUBSCRIBERS];
	_Atomic uint32_t nsubs;
	_Atomic uint64_t delivered, missed;
};

int cb_events_new(struct cb_events **out, struct cb_daemon *d)
{
	struct cb_events *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->d = d;
	pthread_mutex_init(&b->lock, NULL);
	*out = b;
	return 0;
}

void cb_events_free(struct cb_events *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static unsigned int end_of(const struct cb_session *s, const struct cb_record *r)
{
	if (s->resets & CB_RESETS_RECEIVED)
		return CB_END_RST_RECEIVED;
	if ((s->resets & CB_RESETS_SENT) || r->old_state == CB_TCP_ESTABLISHED ||
	    r->old_state == CB_TCP_CLOSE_WAIT)
		return CB_END_RST_SENT; /* an abort: no FIN handshake */
	return CB_END_FIN;
}

/* The filter was made when the client subscribed; a netns or cgroup that
 * appears later is learnt here, once. Under the shard lock. */
static bool sub_match(struct cb_events *b, struct sub *u, const struct cb_session *s)
{
	const struct cb_filter *f = &u->mt.f;

	if ((f->fields & CB_FLT_NETNS) && !u->mt.netns_id)
		u->mt.netns_id = cb_intern_find(cb_map_netns(b->d->map), f->netns);
	if ((f->fields & CB_FLT_CGROUP) && s->cgroup_id && u->checked &&
	    !(u->checked[s->cgroup_id / 64] & (1ull << (s->cgroup_id % 64)))) {
		char path[CB_CGROUP_PATH_MAX];

		u->checked[s->cgroup_id / 64] |= 1ull << (s->cgroup_id % 64);
		if (b->d->cgroups &&
		    !cb_cgroups_path(b->d->cgroups, cb_session_cgroup(b->d->map, s), path,
				     sizeof(path)) &&
		    cb_cgroup_path_under(path, f->cgroup))
			u->bits[s->cgroup_id / 64] |= 1ull << (s->cgroup_id % 64);
	}
	return cb_filter_match(&u->mt, s);
}

/* The event record r makes of session s, if any (under the shard lock).
 * One close per life, nothing after it: the reconciler's close of a socket
 * whose CLOSE was still in a ring (cb_ingest_sync makes that rare) and the
 * kernel's stream once, in either order. An OPEN is a new life (apply.h). */
static bool take_event(struct cb_session *s, const struct cb_record *r, uint8_t *kind)
{
	*kind = r->kind == CB_REC_OPEN ? CB_EV_OPEN :
		r->kind == CB_REC_CLOSE && !(r->flags & CB_RF_REMNANT) ? CB_EV_CLOSE :
									    CB_EV_STATE;
	if (*kind == CB_EV_OPEN) {
		s->flags &= (uint8_t)~CB_SF_CLOSE_STREAMED;
		return true;
	}
	if (s->flags & CB_SF_CLOSE_STREAMED)
		return false;
	if (*kind == CB_EV_CLOSE)
		s->flags |= CB_SF_CLOSE_STREAMED;
	return true;
}

/* One lifecycle record to every subscriber whose filter takes it. Under the
 * session's shard lock, so the row is the session as the record left it. */
static void publish_one(struct cb_events *b, const struct cb_record *r)
{
	struct cb_map *m = b->d->map;
	struct cb_shard *sh = cb_map_shard(m, r->cookie);
	struct cb_session *s;
	struct cb_event ev;
	uint8_t kind;
	uint32_t n = atomic_load_explicit(&b->nsubs, memory_order_acquire);
	bool built = false;

	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, r->cookie);
	if (s && !take_event(s, r, &kind))
		s = NULL;
	for (uint32_t i = 0; s && i < n; i++) {
		struct sub *u = b->subs[i];
		uint64_t head, tail;

		if (!u || !sub_match(b, u, s))
			continue;
		head = atomic_load_explicit(&u->head, memory_order_relaxed);
		tail = atomic_load_explicit(&u->tail, memory_order_acquire);
		if (head - tail >= CB_EVENTS_RING) {
			/* before the row is built: a client that fell behind
			 * costs ingest a count, not a row per event it misses */
			atomic_fetch_add_explicit(&u->missed, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&b->missed, 1, memory_order_relaxed);
			continue;
		}
		if (!built) {
			memset(&ev, 0, sizeof(ev));
			ev.kind = kind;
			ev.old_state = r->old_state < CB_TCP_MAX_STATES ? r->old_state : 0;
			ev.new_state = ev.kind == CB_EV_STATE && r->kind == CB_REC_CLOSE ?
					       CB_TCP_FIN_WAIT2 : /* a remnant lives on */
					       r->new_state;
			ev.ts_ns = r->ts_ns;
			cb_serve_to_row(b->d, s, r->ts_ns, &ev.row);
			if (ev.kind == CB_EV_CLOSE) {
				ev.end = end_of(s, r);
				if (!(s->flags & CB_SF_FIRST_UNKNOWN))
					ev.duration_ns = r->ts_ns > s->first_seen_ns ?
								 r->ts_ns - s->first_seen_ns : 0;
			}
			built = true;
		}
		u->ring[head % CB_EVENTS_RING] = ev;
		atomic_store_explicit(&u->head, head + 1, memory_order_release);
	}
	cb_shard_unlock(sh);
}

void cb_events_publish(struct cb_events *b, const struct cb_record *recs, unsigned int n)
{
	if (!b || !atomic_load_explicit(&b->nsubs, memory_order_relaxed))
		return;
	pthread_mutex_lock(&b->lock);
	for (unsigned int i = 0; i < n; i++)
		if (recs[i].kind == CB_REC_OPEN || recs[i].kind == CB_REC_STATE ||
		    recs[i].kind == CB_REC_CLOSE)
			publish_one(b, &recs[i]);
	pthread_mutex_unlock(&b->lock);
}

static int subscribe(struct cb_events *b, struct sub *u)
{
	uint32_t n;

	pthread_mutex_lock(&b->lock);
	n = atomic_load_explicit(&b->nsubs, memory_order_relaxed);
	if (n == CB_EVENTS_MAX_SUBSCRIBERS) {
		pthread_mutex_unlock(&b->lock);
		return -EBUSY;
	}
	b->subs[n] = u;
	atomic_store_explicit(&b->nsubs, n + 1, memory_order_release);
	if (!n && b->d->loader)
		cb_loader_set_all_states(b->d->loader, true);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void unsubscribe(struct cb_events *b, struct sub *u)
{
	uint32_t n;

	pthread_mutex_lock(&b->lock);
	n = atomic_load_explicit(&b->nsubs, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		if (b->subs[i] == u) {
			b->subs[i] = b->subs[n - 1];
			b->subs[--n] = NULL;
			break;
		}
	atomic_store_explicit(&b->nsubs, n, memory_order_release);
	if (!n && b->d->loader)
		cb_loader_set_all_states(b->d->loader, false);
	pthread_mutex_unlock(&b->lock);
}

/* Has the client hung up (or sent something: a subscriber only listens)? */
static bool client_gone(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, timeout_ms) > 0; /* EOF, an error or an unexpected byte */
}

int cb_events_serve(struct cb_events *b, int fd, const struct cb_events_req *req)
{
	struct sub *u = calloc(1, sizeof(*u));
	struct {
		struct cb_events_hdr hdr;
		struct cb_event ev[CB_EVENTS_PER_FRAME];
	} *f = malloc(sizeof(*f));
	int err = 0;

	if (!u || !f || cb_serve_prepare(b->d, &req->filter, &u->mt, &u->bits) ||
	    ((req->filter.fields & CB_FLT_CGROUP) &&
	     !(u->checked = calloc(CB_CGROUP_BITMAP_WORDS, sizeof(uint64_t))))) {
		if (u)
			free(u->bits);
		free(u);
		free(f);
		return cb_proto_write_error(fd, ENOMEM, "connbeatd is out of memory; try again");
	}
	if (subscribe(b, u)) {
		free(u->bits);
		free(u->checked);
		free(u);
		free(f);
		return cb_proto_write_error(fd, EBUSY, "too many event streams (%d): stop one first",
					    CB_EVENTS_MAX_SUBSCRIBERS);
	}
	/* an empty frame at once: the client knows it is subscribed */
	memset(&f->hdr, 0, sizeof(f->hdr));
	err = cb_proto_write(fd, CB_MSG_EVENTS, f, sizeof(f->hdr));
	while (!err) {
		uint64_t head = atomic_load_explicit(&u->head, memory_order_acquire);
		uint64_t tail = atomic_load_explicit(&u->tail, memory_order_relaxed);
		uint64_t missed = atomic_exchange_explicit(&u->missed, 0, memory_order_relaxed);

		if (head == tail && !missed) {
			if (client_gone(fd, 50))
				break;
			continue;
		}
		f->hdr.count = 0;
		f->hdr.__pad0 = 0;
		f->hdr.missed = missed;
		while (tail < head && f->hdr.count < CB_EVENTS_PER_FRAME)
			f->ev[f->hdr.count++] = u->ring[tail++ % CB_EVENTS_RING];
		atomic_store_explicit(&u->tail, tail, memory_order_release);
		atomic_fetch_add_explicit(&b->delivered, f->hdr.count, memory_order_relaxed);
		err = cb_proto_write(fd, CB_MSG_EVENTS, f,
				     sizeof(f->hdr) + f->hdr.count * sizeof(struct cb_event));
	}
	unsubscribe(b, u);
	free(u->bits);
	free(u->checked);
	free(u);
	free(f);
	return -EPIPE; /* the stream ends with the connection */
}

void cb_events_stats(const struct cb_events *b, struct cb_events_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!b)
		return;
	out->subscribers = atomic_load_explicit(&((struct cb_events *)b)->nsubs,
						memory_order_relaxed);
	out->delivered = atomic_load_explicit(&((struct cb_events *)b)->delivered,
					      memory_order_relaxed);
	out->missed = atomic_load_explicit(&((struct cb_events *)b)->missed, memory_order_relaxed);
}

int cb_serve_events(struct cb_daemon *d, int fd, const struct cb_events_req *req)
{
	return cb_events_serve(d->events, fd, req);
}
