// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* filter.c — see filter.h. */
#include "core/filter.h"

#include <stdatomic.h>
#include <string.h>

#include "connbeat_abi.h"
#include "core/session.h"
#include "core/session_map.h"

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* One endpoint address of the session against the filter's address. */
static bool addr_eq(const struct cb_filter *f, bool s_v6, const uint8_t *a)
{
	if (f->addr_family == 4) {
		if (!s_v6)
			return memcmp(a, f->addr, 4) == 0;
		return memcmp(a, v4mapped_prefix, 12) == 0 && memcmp(a + 12, f->addr, 4) == 0;
	}
	return s_v6 && memcmp(a, f->addr, 16) == 0;
}

/* The states a session may be recorded in while the kernel has it in one
 * of `mask` (the later steps of a close are not reported). */
static uint32_t widen(uint32_t mask)
{
	if (mask & ((1u << CB_TCP_FIN_WAIT2) | (1u << CB_TCP_CLOSING) | (1u << CB_TCP_TIME_WAIT)))
		mask |= 1u << CB_TCP_FIN_WAIT1;
	if (mask & (1u << CB_TCP_LAST_ACK))
		mask |= 1u << CB_TCP_CLOSE_WAIT;
	return mask;
}

void cb_match_init(struct cb_match *mt, const struct cb_filter *f, struct cb_map *m,
		   const uint64_t *cgroup_ids)
{
	memset(mt, 0, sizeof(*mt));
	mt->f = *f;
	mt->scan_tcp_states = widen(f->tcp_state_mask);
	mt->cgroup_ids = cgroup_ids;
	if (f->fields & CB_FLT_NETNS)
		mt->netns_id = cb_intern_find(cb_map_netns(m), f->netns);
}

static bool ports_addr(const struct cb_filter *f, uint16_t sport, uint16_t dport, bool v6,
		       const uint8_t *saddr, const uint8_t *daddr)
{
	uint32_t fl = f->fields;

	if ((fl & CB_FLT_PORT) && sport != f->port && dport != f->port)
		return false;
	if ((fl & CB_FLT_SPORT) && sport != f->sport)
		return false;
	if ((fl & CB_FLT_DPORT) && dport != f->dport)
		return false;
	if ((fl & CB_FLT_ADDR) && !addr_eq(f, v6, saddr) && !addr_eq(f, v6, daddr))
		return false;
	return true;
}

bool cb_filter_match(const struct cb_match *mt, const struct cb_session *s)
{
	const struct cb_filter *f = &mt->f;
	uint32_t fl = f->fields;

	if (!fl)
		return true;
	if (fl & CB_FLT_STATE) {
		uint32_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
		uint32_t want = f->state_mask;

		if (mt->rows_checked && (want & ((1u << CB_ST_ACTIVE) | (1u << CB_ST_STALE))))
			want |= (1u << CB_ST_ACTIVE) | (1u << CB_ST_STALE);
		if (!(want & (1u << st)))
			return false;
	}
	if ((fl & CB_FLT_TCP_STATE) && !(mt->scan_tcp_states & (1u << s->tcp_state)))
		return false;
	if ((fl & CB_FLT_PID) && s->pid != f->pid &&
	    ((s->flags & CB_SF_OWNER_KNOWN) || !mt->rows_checked))
		return false;
	if ((fl & CB_FLT_OPERATOR_DRAINED) && !(s->flags & CB_SF_OPERATOR_DRAIN))
		return false;
	if ((fl & CB_FLT_NETNS) && (!mt->netns_id || s->netns_id != mt->netns_id))
		return false;
	if ((fl & CB_FLT_CGROUP) &&
	    (!s->cgroup_id || !(mt->cgroup_ids[s->cgroup_id / 64] & (1ull << (s->cgroup_id % 64)))))
		return false;
	return ports_addr(f, s->sport, s->dport, s->flags & CB_SF_FAMILY6, s->saddr, s->daddr);
}

bool cb_filter_match_row(const struct cb_filter *f, const struct cb_row *r)
{
	uint32_t fl = f->fields;

	if ((fl & CB_FLT_STATE) && !(f->state_mask & (1u << r->state)))
		return false;
	if ((fl & CB_FLT_TCP_STATE) && !(f->tcp_state_mask & (1u << r->tcp_state)))
		return false;
	if ((fl & CB_FLT_PID) && (!(r->flags & CB_ROW_OWNER_KNOWN) || r->pid != f->pid))
		return false;
	if ((fl & CB_FLT_OPERATOR_DRAINED) && !(r->flags & CB_ROW_OPERATOR_DRAIN))
		return false;
	if ((fl & CB_FLT_NETNS) && r->netns != f->netns)
		return false;
	return ports_addr(f, r->sport, r->dport, r->family == 6, r->saddr, r->daddr);
}
