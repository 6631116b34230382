// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* filter.c — see filter.h. */
#include "filter.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "connbeat_abi.h"
#include "names.h"
#include "parse.h"
#include "session.h"

const char *const cb_filter_options[] = { "state", "tcp-state", "port", "sport", "dport",
					  "addr",  "pid",       NULL };

static int once(struct cb_filter *f, uint32_t field, const char *name, char *err, size_t errlen)
{
	if (f->fields & field) {
		snprintf(err, errlen, "--%s given twice (each filter takes one value; "
				      "--state and --tcp-state may repeat)", name);
		return -EINVAL;
	}
	f->fields |= field;
	return 0;
}

int cb_filter_set(struct cb_filter *f, const char *name, const char *value, char *err,
		  size_t errlen)
{
	unsigned int st;
	uint16_t port;
	uint64_t pid;
	int ret;

	if (!value)
		value = "";
	if (!strcmp(name, "state")) {
		if ((ret = cb_drain_state_parse(value, &st, err, errlen)))
			return ret;
		f->fields |= CB_FLT_STATE;
		f->state_mask |= 1u << st;
		return 0;
	}
	if (!strcmp(name, "tcp-state")) {
		if ((ret = cb_tcp_state_parse(value, &st, err, errlen)))
			return ret;
		f->fields |= CB_FLT_TCP_STATE;
		f->tcp_state_mask |= 1u << st;
		return 0;
	}
	if (!strcmp(name, "port") || !strcmp(name, "sport") || !strcmp(name, "dport")) {
		uint32_t field = name[0] == 'p' ? CB_FLT_PORT : name[0] == 's' ? CB_FLT_SPORT :
										   CB_FLT_DPORT;

		if (cb_parse_port(value, &port)) {
			snprintf(err, errlen, "--%s '%s': not a port number (1-65535)", name, value);
			return -EINVAL;
		}
		if ((ret = once(f, field, name, err, errlen)))
			return ret;
		if (field == CB_FLT_PORT)
			f->port = port;
		else if (field == CB_FLT_SPORT)
			f->sport = port;
		else
			f->dport = port;
		return 0;
	}
	if (!strcmp(name, "addr")) {
		if (cb_parse_addr(value, &f->addr_family, f->addr)) {
			snprintf(err, errlen, "--addr '%s': not an IPv4 or IPv6 address", value);
			return -EINVAL;
		}
		return once(f, CB_FLT_ADDR, name, err, errlen);
	}
	if (!strcmp(name, "pid")) {
		if (cb_parse_u64(value, 1, UINT32_MAX, &pid)) {
			snprintf(err, errlen, "--pid '%s': not a process id", value);
			return -EINVAL;
		}
		f->pid = (uint32_t)pid;
		return once(f, CB_FLT_PID, name, err, errlen);
	}
	snprintf(err, errlen, "'%s' is not a filter", name);
	return -ENOENT;
}

int cb_filter_check(const struct cb_filter *f)
{
	if (f->fields & ~(uint32_t)CB_FLT_ALL)
		return -EINVAL;
	if (f->state_mask >> CB_ST_COUNT || f->tcp_state_mask >> CB_TCP_MAX_STATES)
		return -EINVAL;
	if ((f->fields & CB_FLT_ADDR) && f->addr_family != 4 && f->addr_family != 6)
		return -EINVAL;
	return 0;
}

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
