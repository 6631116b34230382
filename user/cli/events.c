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

/* Through the CLI's printer (cli/output.h): at full churn a printf per
 * field made this client spend 70% of its time in vfprintf and printed a
 * quarter of the events it was sent. */
static void json_str_or_null(struct cb_out *o, const char *key, const char *s)
{
	if (s && s[0])
		cb_out_json_str(o, key, s);
	else
		cb_out_json_null(o, key);
}

static void json_event(struct cb_out *o, struct cb_rowfmt *names, const struct cb_event *e)
{
	const struct cb_row *r = &e->row;
	char a[CB_ADDR_STRLEN], cg[CB_CGROUP_PATH_MAX];
	const char *path = cb_names_cgroup(names, r->cgroup_id, cg, sizeof(cg));

	cb_out_row_begin(o);
	cb_out_json_str(o, "event", kind_name[e->kind]);
	cb_out_json_u64(o, "id", r->cookie);
	cb_out_json_u64(o, "ts_ms", e->ts_ns / CB_NSEC_PER_MSEC);
	cb_out_json_u64(o, "family", r->family);
	cb_out_json_str(o, "src", cb_format_addr(r->family, r->saddr, a, sizeof(a)));
	cb_out_json_u64(o, "sport", r->sport);
	cb_out_json_str(o, "dst", cb_format_addr(r->family, r->daddr, a, sizeof(a)));
	cb_out_json_u64(o, "dport", r->dport);
	cb_out_json_u64(o, "netns", r->netns);
	json_str_or_null(o, "netns_name", cb_names_netns(names, r->netns));
	if (r->flags & CB_ROW_OWNER_KNOWN) {
		cb_out_json_u64(o, "pid", r->pid);
		json_str_or_null(o, "comm", r->comm);
	} else {
		cb_out_json_null(o, "pid");
		cb_out_json_null(o, "comm");
	}
	if (path)
		cb_out_json_str(o, "cgroup", path);
	else
		cb_out_json_null(o, "cgroup");
	if (e->kind == CB_EV_STATE) {
		cb_out_json_str(o, "old_state", cb_tcp_state_name(e->old_state) ?: "?");
		cb_out_json_str(o, "new_state", cb_tcp_state_name(e->new_state) ?: "?");
	} else {
		cb_out_json_str(o, "tcp_state", cb_tcp_state_name(e->new_state) ?: "?");
	}
	if (e->kind == CB_EV_CLOSE) {
		cb_out_json_u64(o, "duration_ms", e->duration_ns / CB_NSEC_PER_MSEC);
		cb_out_json_u64(o, "tx_bytes", r->tx_bytes);
		cb_out_json_u64(o, "rx_bytes", r->rx_bytes);
		cb_out_json_u64(o, "segs_in", r->segs_in);
		cb_out_json_u64(o, "segs_out", r->segs_out);
		cb_out_json_u64(o, "retrans", r->retrans);
		cb_out_json_u64(o, "rtt_us", r->rtt_us);
		cb_out_json_str(o, "end", end_name[e->end]);
	}
	cb_out_row_end(o);
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
	static struct cb_out o; /* static: its 64-KiB buffer */

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
	cb_out_begin(&o, stdout, CB_OUT_JSON_LINES, NULL, 0, false);
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
		if (missed && json) {
			cb_out_row_begin(&o);
			cb_out_json_str(&o, "event", "missed");
			cb_out_json_u64(&o, "count", missed);
			cb_out_row_end(&o);
		} else if (missed) {
			printf("# missed %" PRIu64 " events (this client fell behind)\n", missed);
		}
		for (uint32_t i = 0; i < n; i++) {
			if (json)
				json_event(&o, &names, &ev[i]);
			else
				text_event(&ev[i]);
		}
		cb_out_flush(&o);
		in_frame = 0;
		if (stop_asked)
			_exit(0);
	}
}
