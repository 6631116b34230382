// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* apply.c — see apply.h. */
#include "core/apply.h"

#include <string.h>

int cb_tcp_state_draining(unsigned int st)
{
	return st == CB_TCP_FIN_WAIT1 || st == CB_TCP_FIN_WAIT2 || st == CB_TCP_CLOSING ||
	       st == CB_TCP_CLOSE_WAIT || st == CB_TCP_LAST_ACK || st == CB_TCP_TIME_WAIT;
}

static inline uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* The kernel's u32 counters wrap: the newer of two readings is the one
 * ahead by less than half the range (RFC 1982 serial numbers). */
static inline uint32_t newer32(uint32_t have, uint32_t got)
{
	return (int32_t)(got - have) > 0 ? got : have;
}

static void set_tuple(struct cb_session *s, const struct cb_tuple *t)
{
	/* the active OPEN has no local port yet: keep waiting for one */
	if (!t->sport && s->sport)
		return;
	memcpy(s->saddr, t->saddr, 16);
	memcpy(s->daddr, t->daddr, 16);
	s->sport = t->sport;
	s->dport = t->dport;
	s->netns = t->netns;
	if (t->family == 6)
		s->flags |= CB_SF_FAMILY6;
	else
		s->flags &= ~CB_SF_FAMILY6;
}

static void merge(struct cb_session *s, const struct cb_record *r)
{
	const struct cb_counters *c = &r->ctr;

	s->tx_bytes = max64(s->tx_bytes, c->tx_bytes);
	s->rx_bytes = max64(s->rx_bytes, c->rx_bytes);
	s->segs_in = newer32(s->segs_in, c->segs_in);
	s->segs_out = newer32(s->segs_out, c->segs_out);
	s->retrans = newer32(s->retrans, c->retrans);
	s->last_data_ns = max64(s->last_data_ns, c->last_data_ns);
	s->last_seen_ns = max64(s->last_seen_ns, c->last_seen_ns);
	/* a kernel record is itself a sign of life; a synthesised one only
	 * carries what tcp_info said */
	if (!(r->flags & CB_RF_SYNTH))
		s->last_seen_ns = max64(s->last_seen_ns, r->ts_ns);
}

static void set_owner(struct cb_map *m, struct cb_session *s, const struct cb_record *r)
{
	if ((s->flags & CB_SF_OWNER_KNOWN) || !(r->flags & CB_RF_PROCESS_CTX) || !r->pid)
		return;
	s->pid = r->pid;
	s->comm_id = cb_comm_intern(cb_map_comms(m), r->comm);
	s->flags |= CB_SF_OWNER_KNOWN;
}

/* Fill a fresh (or reset) record from the record that creates it. */
static void init_session(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			 const struct cb_record *r, uint64_t now_ns)
{
	bool opened = r->kind == CB_REC_OPEN;

	set_tuple(s, &r->tuple);
	s->tcp_state = r->new_state;
	s->first_seen_ns = opened ? r->ts_ns : now_ns;
	if (!opened)
		s->flags |= CB_SF_FIRST_UNKNOWN;
	/* both clocks start at the open, like the kernel's heartbeat entry */
	if (opened)
		s->last_data_ns = s->last_seen_ns = r->ts_ns;
	merge(s, r);
	set_owner(m, s, r);
	cb_state_enter(__cb_shard_stats(sh), s,
		       cb_tcp_state_draining(r->new_state) ? CB_ST_DRAINING : CB_ST_ACTIVE);
	__cb_session_schedule(m, sh, s);
}

/* An OPEN (or a sock_diag sighting) for a CLOSED session: a new life of
 * the same socket. Keep the links, reset everything else. */
static void reopen(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
		   const struct cb_record *r, uint64_t now_ns)
{
	cb_sidx_t hnext = s->hnext, wnext = s->wnext, wprev = s->wprev;
	uint8_t in_wheel = s->flags & CB_SF_IN_WHEEL;
	uint64_t cookie = s->cookie;

	cb_state_leave(__cb_shard_stats(sh), s);
	memset(s, 0, sizeof(*s));
	s->cookie = cookie;
	s->hnext = hnext;
	s->wnext = wnext;
	s->wprev = wprev;
	s->flags = in_wheel;
	__cb_shard_count_reopen(sh);
	init_session(m, sh, s, r, now_ns);
}

static struct cb_session *create(struct cb_map *m, struct cb_shard *sh, const struct cb_record *r,
				 uint64_t now_ns)
{
	struct cb_session *s = __cb_shard_insert(m, sh, r->cookie);

	if (s)
		init_session(m, sh, s, r, now_ns);
	return s;
}

/* Follow the TCP state into the drain state. */
static void follow_tcp_state(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			     unsigned int tcp_state)
{
	unsigned int st = cb_session_state(s);

	s->tcp_state = tcp_state;
	if (cb_tcp_state_draining(tcp_state) && (st == CB_ST_ACTIVE || st == CB_ST_STALE))
		__cb_session_transition(m, sh, s, st, CB_ST_DRAINING);
}

static void revive_if_busy(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			   uint64_t now_ns)
{
	if (cb_session_state(s) == CB_ST_STALE &&
	    cb_session_idle_ns(s, now_ns, cb_map_idle_basis_any(m)) < cb_map_idle_ns(m))
		__cb_session_transition(m, sh, s, CB_ST_STALE, CB_ST_ACTIVE);
}

enum cb_apply_result cb_apply_record(struct cb_map *m, const struct cb_record *r, uint64_t now_ns)
{
	struct cb_shard *sh = cb_map_shard(m, r->cookie);
	enum cb_apply_result res = CB_APPLY_UPDATED;
	struct cb_session *s;
	unsigned int st;

	cb_shard_lock(sh);
	s = __cb_shard_lookup(sh, r->cookie);
	st = s ? cb_session_state(s) : CB_ST_COUNT;

	switch (r->kind) {
	case CB_REC_OPEN:
		if (!s) {
			res = create(m, sh, r, now_ns) ? CB_APPLY_INSERTED : CB_APPLY_REFUSED;
		} else if (st == CB_ST_CLOSED) {
			reopen(m, sh, s, r, now_ns);
		} else {
			/* seeded from sock_diag just before its OPEN was read
			 * (start-up, reconciliation): now its age is known */
			if (s->flags & CB_SF_FIRST_UNKNOWN) {
				s->flags &= ~CB_SF_FIRST_UNKNOWN;
				s->first_seen_ns = r->ts_ns;
			}
			set_tuple(s, &r->tuple);
			merge(s, r);
			set_owner(m, s, r);
		}
		break;

	case CB_REC_STATE:
		if (!s) {
			res = create(m, sh, r, now_ns) ? CB_APPLY_INSERTED : CB_APPLY_REFUSED;
		} else if (st == CB_ST_CLOSED) {
			/* late kernel record: ignore; sock_diag says the socket
			 * lives again: a reconnect whose OPEN we missed */
			if (r->flags & CB_RF_SYNTH)
				reopen(m, sh, s, r, now_ns);
			else
				res = CB_APPLY_IGNORED;
		} else {
			set_tuple(s, &r->tuple);
			merge(s, r);
			set_owner(m, s, r);
			follow_tcp_state(m, sh, s, r->new_state);
			if (r->flags & CB_RF_SYNTH)
				revive_if_busy(m, sh, s, now_ns);
		}
		break;

	case CB_REC_CLOSE:
		if (!s) {
			res = CB_APPLY_IGNORED;
			break;
		}
		set_tuple(s, &r->tuple);
		merge(s, r);
		s->tcp_state = CB_TCP_CLOSE;
		if (st == CB_ST_CLOSED)
			__cb_session_schedule(m, sh, s); /* a second CLOSE: linger from it */
		else
			__cb_session_transition(m, sh, s, st, CB_ST_CLOSED);
		break;

	case CB_REC_RESET:
		if (!s) {
			res = CB_APPLY_IGNORED;
			break;
		}
		if (s->resets < UINT8_MAX)
			s->resets++;
		merge(s, r);
		break;

	case CB_REC_BEAT:
	case CB_REC_RETRANS:
		if (!s) {
			/* the OPEN was missed (or the socket predates us): the
			 * beat carries the tuple — but a closing socket is not
			 * worth a new session */
			if (r->new_state == CB_TCP_CLOSE || r->new_state == CB_TCP_LISTEN ||
			    r->new_state == CB_TCP_TIME_WAIT)
				res = CB_APPLY_IGNORED;
			else
				res = create(m, sh, r, now_ns) ? CB_APPLY_INSERTED : CB_APPLY_REFUSED;
			break;
		}
		if (st == CB_ST_CLOSED) {
			res = CB_APPLY_IGNORED;
			break;
		}
		if (!s->sport)
			set_tuple(s, &r->tuple);
		merge(s, r);
		set_owner(m, s, r);
		revive_if_busy(m, sh, s, now_ns);
		break;

	default:
		res = CB_APPLY_IGNORED;
	}
	cb_shard_unlock(sh);
	return res;
}

/* Prefetch distances (records ahead): the bucket first, the record once
 * the bucket has had time to arrive. A few hundred ns per miss and ~100 ns
 * of work per record put both a handful of records ahead. */
#define AHEAD_BUCKET 8
#define AHEAD_RECORD 4

void cb_apply_batch(struct cb_map *m, const struct cb_record *recs, unsigned int n,
		    uint64_t now_ns, uint64_t results[CB_APPLY_RESULTS])
{
	for (unsigned int i = 0; i < n && i < AHEAD_BUCKET; i++)
		cb_map_prefetch(m, recs[i].cookie, 0);
	for (unsigned int i = 0; i < n && i < AHEAD_RECORD; i++)
		cb_map_prefetch(m, recs[i].cookie, 1);
	for (unsigned int i = 0; i < n; i++) {
		if (i + AHEAD_BUCKET < n)
			cb_map_prefetch(m, recs[i + AHEAD_BUCKET].cookie, 0);
		if (i + AHEAD_RECORD < n)
			cb_map_prefetch(m, recs[i + AHEAD_RECORD].cookie, 1);
		results[cb_apply_record(m, &recs[i], now_ns)]++;
	}
}
