// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* filter.c — see filter.h. */
#include "core/filter.h"

#include <stdatomic.h>
#include <string.h>

#include "connbeat_abi.h"
#include "core/session.h"

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

bool cb_filter_match(const struct cb_filter *f, const struct cb_session *s)
{
	uint32_t fl = f->fields;

	if (!fl)
		return true;
	if ((fl & CB_FLT_STATE) &&
	    !(f->state_mask & (1u << atomic_load_explicit(&s->state, memory_order_relaxed))))
		return false;
	if ((fl & CB_FLT_TCP_STATE) && !(f->tcp_state_mask & (1u << s->tcp_state)))
		return false;
	if ((fl & CB_FLT_PORT) && s->sport != f->port && s->dport != f->port)
		return false;
	if ((fl & CB_FLT_SPORT) && s->sport != f->sport)
		return false;
	if ((fl & CB_FLT_DPORT) && s->dport != f->dport)
		return false;
	if ((fl & CB_FLT_PID) && s->pid != f->pid)
		return false;
	if ((fl & CB_FLT_OPERATOR_DRAINED) && !(s->flags & CB_SF_OPERATOR_DRAIN))
		return false;
	if (fl & CB_FLT_ADDR) {
		bool v6 = s->flags & CB_SF_FAMILY6;

		if (!addr_eq(f, v6, s->saddr) && !addr_eq(f, v6, s->daddr))
			return false;
	}
	return true;
}
