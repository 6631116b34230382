// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * summary.c — `connbeat summary --by cgroup|comm|port|peer [FILTERS]
 * [--json]`: per group (biggest first), sessions by drain state and by TCP
 * state and the oldest idle time. Text: a table with the TCP states that
 * occur as NAME=N; --json: one array of objects.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/rows.h"
#include "common/names.h"
#include "common/parse.h"
#include "common/proto.h"

static const char *const by_key[CB_BY_COUNT] = { [CB_BY_CGROUP] = "cgroup", [CB_BY_COMM] = "comm",
						 [CB_BY_PORT] = "port", [CB_BY_PEER] = "peer" };

static const char *group_name(struct cb_rowfmt *names, unsigned int by, const struct cb_group *g,
			      char *buf, size_t len)
{
	switch (by) {
	case CB_BY_CGROUP:
		return cb_names_cgroup(names, g->cgroup_id, buf, len);
	case CB_BY_COMM:
		return g->comm[0] ? g->comm : NULL;
	case CB_BY_PORT:
		snprintf(buf, len, "%u", g->port);
		return buf;
	default:
		return cb_format_addr(g->family, g->addr, buf, len);
	}
}

static void print_group(struct cb_rowfmt *names, unsigned int by, const struct cb_group *g,
			bool json, bool first)
{
	char name[CB_CGROUP_PATH_MAX], idle[16], states[512] = "";
	const char *n = group_name(names, by, g, name, sizeof(name));

	if (json) {
		printf("%s\n{\"%s\":", first ? "" : ",", by_key[by]);
		if (by == CB_BY_PORT)
			printf("%u", g->port);
		else if (n)
			cb_json_string(stdout, n);
		else
			printf("null");
		printf(",\"sessions\":%" PRIu64 ",\"states\":{", g->sessions);
		for (unsigned int s = 0; s < CB_ST_COUNT; s++)
			printf("%s\"%s\":%" PRIu64, s ? "," : "", cb_drain_state_name(s),
			       g->by_state[s]);
		printf("},\"tcp_states\":{");
		for (unsigned int t = 1, k = 0; t < CB_TCP_STATE_SLOTS; t++)
			if (g->by_tcp_state[t])
				printf("%s\"%s\":%" PRIu64, k++ ? "," : "", cb_tcp_state_name(t),
				       g->by_tcp_state[t]);
		printf("},\"oldest_idle_ms\":%" PRIu64 "}", (uint64_t)(g->oldest_idle_ns / CB_NSEC_PER_MSEC));
		return;
	}
	for (unsigned int t = 1; t < CB_TCP_STATE_SLOTS; t++)
		if (g->by_tcp_state[t])
			snprintf(states + strlen(states), sizeof(states) - strlen(states), "%s%s=%" PRIu64,
				 states[0] ? "," : "", cb_tcp_state_name(t), g->by_tcp_state[t]);
	printf("%-40s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %11s %s\n",
	       n ? n : "-", g->sessions, g->by_state[CB_ST_ACTIVE], g->by_state[CB_ST_STALE],
	       g->by_state[CB_ST_DRAINING], g->by_state[CB_ST_CLOSED],
	       cb_format_duration(g->oldest_idle_ns, idle, sizeof(idle)), states);
}

int cb_cli_summary(const char *socket_path, const struct cb_filter *f, unsigned int by, bool json,
		   bool header)
{
	struct cb_summary_req req = { .filter = *f, .by = (uint8_t)by };
	int fd = cb_client_connect(socket_path);
	struct cb_rowfmt names;
	struct cb_frame_hdr h;
	struct cb_end end;
	bool first = true;

	cb_names_init(&names);
	cb_client_send(fd, CB_MSG_SUMMARY_REQ, &req, sizeof(req));
	if (json)
		printf("[");
	else if (header)
		printf("%-40s %8s %8s %8s %8s %8s %11s %s\n", by_key[by], "Sessions", "Active",
		       "Stale", "Draining", "Closed", "Oldest-Idle", "TCP-States");
	for (;;) {
		const struct cb_group *g;
		const char *why;
		uint32_t n;

		cb_client_read(fd, &h);
		if (h.type == CB_MSG_END)
			break;
		if (h.type != CB_MSG_GROUPS ||
		    cb_proto_decode_groups(cb_client_payload(), h.length, &g, &n, &why)) {
			fprintf(stderr, "connbeat: unexpected reply to summary from connbeatd\n");
			return EXIT_UNREACHABLE;
		}
		for (uint32_t i = 0; i < n; i++, first = false)
			print_group(&names, by, &g[i], json, first);
	}
	cb_client_end(&h, &end);
	if (json)
		printf(first ? "]\n" : "\n]\n");
	cb_names_free(&names);
	close(fd);
	return 0;
}
