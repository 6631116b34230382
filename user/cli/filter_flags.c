// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* filter_flags.c — see filter_flags.h. */
#include "cli/filter_flags.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "connbeat_abi.h"
#include "common/names.h"
#include "common/parse.h"

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
