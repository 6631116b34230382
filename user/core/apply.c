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
 * ahead by less than half the range (RFC 1982 serial numbers). A session
 * that has no reading yet (0) takes any. */
static inline uint32_t newer32(uint32_t have, uint32_t got)
{
	return !have || (int32_t)(got - have) > 0 ? got : have;
}

static void set_tuple(struct cb_map *m, struct cb_session *s, const struct cb_tuple *t)
{
	/* a record of a socket without a local port (none of ours should
	 * have one) must not overwrite a known tuple */
	if (!t->sport && s->sport)
		return;
	memcpy(s->saddr, t->saddr, 16);
	memcpy(s->daddr, t->daddr, 16);
	s->sport = t->sport;
	s->dport = t->dport;
	__cb_session_set_netns(m, s, t->netns);
	if (t->family == 6)
		s->flags |= CB_SF_FAMILY6;
	else
		s->flags &= ~CB_SF_FAMILY6;
}

static void merge_counters(struct cb_session *s, const struct cb_record *r)
{
	const struct cb_counters *c = &r->ctr;

	if (!(r->flags & CB_RF_COUNTERS))
		return;
	s->tx_bytes = max64(s->tx_bytes, c->bytes_acked);
	s->rx_bytes = max64(s->rx_bytes, c->bytes_received);
	s->segs_in = newer32(s->segs_in, c->segs_in);
	s->segs_out = newer32(s->segs_out, c->segs_out);
	s->retrans = newer32(s->retrans, c->total_retrans);
	if (c->srtt_us)
		s->rtt = cb_rtt_encode(c->srtt_us);
}

static void merge(struct cb_session *s, const struct cb_record *r)
{
	merge_counters(s, r);
	s->last_data_ns = max64(s->last_data_ns, r->ctr.last_data_ns);
	s->last_seen_ns = max64(s->last_seen_ns, r->ctr.last_seen_ns);
	/* an OPEN or a state change from the kernel is itself a sign of life;
	 * a RESET is not (it may be ours), a synthesised record only carries
	 * what tcp_info said */
	if (!(r->flags & CB_RF_SYNTH) && (r->kind == CB_REC_OPEN || r->kind == CB_REC_STATE))
		s->last_seen_ns = max64(s->last_seen_ns, r->ts_ns);
}

static void set_owner(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
		      const struct cb_record *r)
{
	bool known = s->flags & CB_SF_OWNER_KNOWN;

	if (!r->pid || !(r->flags & (CB_RF_PROCESS_CTX | CB_RF_OWNER_PID)))
		return;
	if (known && (s->comm_id || s->pid != r->pid || !r->comm[0]))
		return; /* an owner we have: the owners pass corrects it, not records */
	__cb_session_set_owner(m, sh, s, r->pid, r->comm);
}

/* Fill a fresh (or reset) record from the record that creates it. */
static void init_session(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			 const struct cb_record *r, uint64_t now_ns)
{
	bool opened = r->kind == CB_REC_OPEN;
	unsigned int st = CB_ST_ACTIVE;

	set_tuple(m, s, &r->tuple);
	s->tcp_state = r->new_state;
	s->first_seen_ns = opened ? r->ts_ns : now_ns;
	if (!opened)
		s->flags |= CB_SF_FIRST_UNKNOWN;
	/* both clocks start at the open, like the kernel's heartbeat entry */
	if (opened)
		s->last_data_ns = s->last_seen_ns = r->ts_ns;
	merge(s, r);
	set_owner(m, sh, s, r);
	if (r->cgroup_id)
		__cb_session_set_cgroup(m, s, r->cgroup_id);
	if (r->flags & CB_RF_REMNANT)
		s->flags |= CB_SF_REMNANT;
	if ((opened && r->old_state == CB_TCP_SYN_RECV) || (r->flags & CB_RF_PASSIVE))
		s->resets |= CB_RESETS_PASSIVE;
	if (cb_tcp_state_draining(r->new_state))
		st = CB_ST_DRAINING;
	cb_state_enter(__cb_shard_stats(sh), s, st);
	__cb_session_schedule(m, sh, s);
}

/* An OPEN (or a sock_diag sighting) for a CLOSED session: a new life of
 * the same socket. Its links (in the map, not the record) stay; everything
 * in the record is reset. */
static void reopen(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
		   const struct cb_record *r, uint64_t now_ns)
{
	uint64_t cookie = s->cookie;

	/* its new life starts without an owner, like a new session */
	if (s->flags & (CB_SF_OWNER_KNOWN | CB_SF_OWNER_SOUGHT))
		__cb_shard_unowned_add(sh, 1);
	cb_state_leave(__cb_shard_stats(sh), s);
	cb_intern_put(cb_map_netns(m), s->netns_id);
	cb_intern_put(cb_map_cgroups(m), s->cgroup_id);
	memset(s, 0, sizeof(*s));
	s->cookie = cookie;
	__cb_shard_count_reopen(sh);
	init_session(m, sh, s, r, now_ns);
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

static void apply_close(struct cb_map *m, struct cb_shard *sh, struct cb_session *s,
			const struct cb_record *r)
{
	unsigned int st = cb_session_state(s);

	set_tuple(m, s, &r->tuple);
	merge(s, r);
	if (r->flags & CB_RF_REMNANT) {
		/* the kernel keeps the connection as a FIN_WAIT2 remnant: it is
		 * not over (design.md §3 "Remnants") */
		s->flags |= CB_SF_REMNANT;
		if (st == CB_ST_CLOSED)
			return;
		follow_tcp_state(m, sh, s, CB_TCP_FIN_WAIT2);
		return;
	}
	s->flags &= ~CB_SF_REMNANT;
	s->tcp_state = CB_TCP_CLOSE;
	/* it lingers from its close: the eviction deadline follows last_seen */
	s->last_seen_ns = max64(s->last_seen_ns, r->ts_ns);
	if (st == CB_ST_CLOSED)
		__cb_session_schedule(m, sh, s); /* a second CLOSE: linger from it */
	else
		__cb_session_transition(m, sh, s, st, CB_ST_CLOSED);
}

static void apply_reset(struct cb_session *s, const struct cb_record *r)
{
	uint8_t n = s->resets & CB_RESETS_COUNT_MAX;

	if (n < CB_RESETS_COUNT_MAX)
		n++;
	s->resets = (uint8_t)((s->resets & ~CB_RESETS_COUNT_MAX) | n);
	/* (the passive bit is kept) */
	if (r->flags & CB_RF_RST_SENT)
		s->resets |= CB_RESETS_SENT;
	if (r->flags & CB_RF_RST_RECEIVED)
		s->resets |= CB_RESETS_RECEIVED;
	merge_counters(s, r);
}

/* Create, or count one refusal per cookie (see apply.h). */
static enum cb_apply_result create_or_refuse(struct cb_map *m, struct cb_shard *sh,
					     const struct cb_record *r, uint64_t now_ns)
{
	bool again = __cb_map_refused_before(m, r->cookie);
	struct cb_session *s = __cb_shard_insert(m, sh, r->cookie);

	if (!s) {
		if (!again)
			__cb_map_note_refused(m, sh, r->cookie);
		return CB_APPLY_REFUSED;
	}
	init_session(m, sh, s, r, now_ns);
	return CB_APPLY_INSERTED;
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
			res = create_or_refuse(m, sh, r, now_ns);
		} else if (st == CB_ST_CLOSED) {
			reopen(m, sh, s, r, now_ns);
		} else {
			/* seeded from sock_diag just before its OPEN was read
			 * (start-up, reconciliation): now its age is known */
			if (s->flags & CB_SF_FIRST_UNKNOWN) {
				s->flags &= ~CB_SF_FIRST_UNKNOWN;
				s->first_seen_ns = r->ts_ns;
			}
			if (r->old_state == CB_TCP_SYN_RECV)
				s->resets |= CB_RESETS_PASSIVE;
			set_tuple(m, s, &r->tuple);
			merge(s, r);
			set_owner(m, sh, s, r);
			if (r->cgroup_id)
				__cb_session_set_cgroup(m, s, r->cgroup_id);
		}
		break;

	case CB_REC_STATE:
		if (!s) {
			res = create_or_refuse(m, sh, r, now_ns);
		} else if (st == CB_ST_CLOSED) {
			/* late kernel record: ignore; sock_diag says the socket
			 * lives again: a reconnect whose OPEN we missed */
			if (r->flags & CB_RF_SYNTH)
				reopen(m, sh, s, r, now_ns);
			else
				res = CB_APPLY_IGNORED;
		} else {
			set_tuple(m, s, &r->tuple);
			merge(s, r);
			set_owner(m, sh, s, r);
			if (r->cgroup_id)
				__cb_session_set_cgroup(m, s, r->cgroup_id);
			if (r->flags & CB_RF_REMNANT)
				s->flags |= CB_SF_REMNANT;
			follow_tcp_state(m, sh, s, r->new_state);
			if (r->flags & CB_RF_SYNTH)
				revive_if_busy(m, sh, s, now_ns);
		}
		break;

	case CB_REC_CLOSE:
		/* the reconciler's close of a socket the kernel's CLOSE has
		 * closed already: nothing was missed (unless a remnant's end) */
		if (!s || ((r->flags & CB_RF_SYNTH) && st == CB_ST_CLOSED &&
			   !(s->flags & CB_SF_REMNANT)))
			res = CB_APPLY_IGNORED;
		else
			apply_close(m, sh, s, r);
		break;

	case CB_REC_RESET:
		if (!s)
			res = CB_APPLY_IGNORED;
		else
			apply_reset(s, r);
		break;

	case CB_REC_BEAT:
		if (!s) {
			/* The OPEN was missed (or the socket predates us): a
			 * beat of an entry the heartbeat path seeded carries
			 * the tuple — but a closing socket is not worth a new
			 * session. Any other beat comes on its own ring: its
			 * OPEN may still be on the way, or its CLOSE read
			 * already and the CLOSED session evicted at the cap; a
			 * session made of it would never close. */
			if (!(r->flags & (CB_RF_SEEDED | CB_RF_SYNTH)) ||
			    r->new_state == CB_TCP_CLOSE || r->new_state == CB_TCP_LISTEN ||
			    r->new_state == CB_TCP_TIME_WAIT)
				res = CB_APPLY_IGNORED;
			else
				res = create_or_refuse(m, sh, r, now_ns);
			break;
		}
		if (st == CB_ST_CLOSED) {
			res = CB_APPLY_IGNORED;
			break;
		}
		if (!s->sport)
			set_tuple(m, s, &r->tuple);
		merge(s, r);
		set_owner(m, sh, s, r);
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
