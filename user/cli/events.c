// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * events.c — `connbeat events [FILTERS] [--json]`: the daemon's live stream
 * of lifecycle events, printed as they come, until Ctrl-C (exit 0).
 *
 * Text: one line per event in columns like tcplife's (time, event, owner,
 * both ends, the state change or, for a close, bytes each way, duration and
 * how it ended). --json: one object per line with `event` (open, state,
 * close), `id`, the tuple, the owner, the cgroup, and per kind the states
 * or the close's totals; a client that fell behind is told so with
 * {"event":"missed","count":N} and the stream goes on.
 */
#include <inttypes.h>
#include <signal.h>
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
#include "kernel/record.h"

static const char *const kind_name[] = { [CB_EV_OPEN] = "open", [CB_EV_STATE] = "state",
					 [CB_EV_CLOSE] = "close" };
static const char *const end_name[] = { [CB_END_NONE] = "none", [CB_END_FIN] = "fin",
					[CB_END_RST_SENT] = "rst_sent",
					[CB_END_RST_RECEIVED] = "rst_received" };

/*
 * Ctrl-C ends the stream (exit 0). Between two frames every line so far is
 * out, so the handler exits at once; while a frame is being printed it
 * only asks, and the loop exits once the frame is flushed — no half line
 * for a JSON reader. A second signal exits at once all the same (a reader
 * that stopped reading would otherwise hold us in the flush).
 */
static volatile sig_atomic_t in_frame, stop_asked;

static void on_signal(int sig)
{
	(void)sig;
	if (!in_frame || stop_asked)
		_exit(0);
	stop_asked = 1;
}

static void json_event(struct cb_rowfmt *names, const struct cb_event *e)
{
	const struct cb_row *r = &e->row;
	char a[CB_ADDR_STRLEN], cg[CB_CGROUP_PATH_MAX];
	const char *path = cb_names_cgroup(names, r->cgroup_id, cg, sizeof(cg));
	const char *nsname = cb_names_netns(names, r->netns);

	printf("{\"event\":\"%s\",\"id\":%" PRIu64 ",\"ts_ms\":%" PRIu64 ",\"family\":%u,\"src\":",
	       kind_name[e->kind], r->cookie, (uint64_t)(e->ts_ns / CB_NSEC_PER_MSEC), r->family);
	cb_json_string(stdout, cb_format_addr(r->family, r->saddr, a, sizeof(a)));
	printf(",\"sport\":%u,\"dst\":", r->sport);
	cb_json_string(stdout, cb_format_addr(r->family, r->daddr, a, sizeof(a)));
	printf(",\"dport\":%u,\"netns\":%u,\"netns_name\":", r->dport, r->netns);
	if (nsname[0])
		cb_json_string(stdout, nsname);
	else
		printf("null");
	if (r->flags & CB_ROW_OWNER_KNOWN) {
		printf(",\"pid\":%u,\"comm\":", r->pid);
		if (r->comm[0])
			cb_json_string(stdout, r->comm);
		else
			printf("null");
	} else {
		printf(",\"pid\":null,\"comm\":null");
	}
	printf(",\"cgroup\":");
	if (path)
		cb_json_string(stdout, path);
	else
		printf("null");
	if (e->kind == CB_EV_STATE)
		printf(",\"old_state\":\"%s\",\"new_state\":\"%s\"",
		       cb_tcp_state_name(e->old_state) ?: "?", cb_tcp_state_name(e->new_state) ?: "?");
	else
		printf(",\"tcp_state\":\"%s\"", cb_tcp_state_name(e->new_state) ?: "?");
	if (e->kind == CB_EV_CLOSE)
		printf(",\"duration_ms\":%" PRIu64 ",\"tx_bytes\":%" PRIu64 ",\"rx_bytes\":%" PRIu64
		       ",\"segs_in\":%u,\"segs_out\":%u,\"retrans\":%u,\"rtt_us\":%u,\"end\":\"%s\"",
		       (uint64_t)(e->duration_ns / CB_NSEC_PER_MSEC), r->tx_bytes, r->rx_bytes, r->segs_in,
		       r->segs_out, r->retrans, r->rtt_us, end_name[e->end]);
	printf("}\n");
}

static void text_event(const struct cb_event *e)
{
	const struct cb_row *r = &e->row;
	char l[CB_ADDRPORT_LEN], p[CB_ADDRPORT_LEN], tx[16], rx[16], owner[40], what[40];

	if (r->flags & CB_ROW_OWNER_KNOWN)
		snprintf(owner, sizeof(owner), "%-7u %-15s", r->pid, r->comm[0] ? r->comm : "?");
	else
		snprintf(owner, sizeof(owner), "%-7s %-15s", "-", "-");
	if (e->kind == CB_EV_STATE)
		snprintf(what, sizeof(what), "%s>%s", cb_tcp_state_name(e->old_state) ?: "?",
			 cb_tcp_state_name(e->new_state) ?: "?");
	else
		snprintf(what, sizeof(what), "%s", cb_tcp_state_name(e->new_state) ?: "?");
	printf("%-13.3f %-5s %s %-22s %-22s %-23s", e->ts_ns / 1e9, kind_name[e->kind], owner,
	       cb_format_addrport(r->family, r->saddr, r->sport, l, sizeof(l)),
	       cb_format_addrport(r->family, r->daddr, r->dport, p, sizeof(p)), what);
	if (e->kind == CB_EV_CLOSE)
		printf(" %9s %9s %10.3f %s", cb_format_size(r->tx_bytes, tx, sizeof(tx)),
		       cb_format_size(r->rx_bytes, rx, sizeof(rx)), e->duration_ns / 1e6,
		       end_name[e->end]);
	printf("\n");
}

int cb_cli_events(const char *socket_path, const struct cb_filter *f, bool json)
{
	struct cb_events_req req = { .filter = *f };
	int fd = cb_client_connect(socket_path);
	struct cb_rowfmt names;
	struct cb_frame_hdr h;

	/* Fully buffered, flushed after each frame the daemon sends: one
	 * write per frame, not per line (at full loopback churn this client
	 * printed a median 21% of the events line-buffered, 30% so, over 5
	 * alternating pairs), and still every event out as soon as its frame
	 * is printed. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	cb_names_init(&names);
	cb_client_send(fd, CB_MSG_EVENTS_REQ, &req, sizeof(req));
	if (!json)
		printf("%-13s %-5s %-7s %-15s %-22s %-22s %-23s %9s %9s %10s %s\n", "TIME(s)", "EVENT",
		       "PID", "COMM", "LOCAL", "PEER", "STATE", "TX", "RX", "DUR(ms)", "END");
	fflush(stdout);
	for (;;) {
		const struct cb_event *ev;
		const char *why;
		uint64_t missed;
		uint32_t n;

		cb_client_read(fd, &h);
		if (h.type != CB_MSG_EVENTS ||
		    cb_proto_decode_events(cb_client_payload(), h.length, &ev, &n, &missed, &why)) {
			fprintf(stderr, "connbeat: unexpected reply to events from connbeatd\n");
			return EXIT_UNREACHABLE;
		}
		in_frame = 1;
		if (missed) {
			if (json)
				printf("{\"event\":\"missed\",\"count\":%" PRIu64 "}\n", missed);
			else
				printf("# missed %" PRIu64 " events (this client fell behind)\n", missed);
		}
		for (uint32_t i = 0; i < n; i++) {
			if (json)
				json_event(&names, &ev[i]);
			else
				text_event(&ev[i]);
		}
		fflush(stdout);
		in_frame = 0;
		if (stop_asked)
			_exit(0);
	}
}
