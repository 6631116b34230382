// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connbeat — the operator's CLI (design.md §5).
 *
 *   connbeat stale [--idle DUR] [FILTERS] [--json] [--limit N]
 *   connbeat list  [FILTERS] [--json] [--limit N]
 *   connbeat stats [--json]
 *   connbeat drain [FILTERS] [--wait] [--timeout DUR]
 *   connbeat --maps stale|list|stats ...     without the daemon: read the pinned maps
 *
 * It talks to connbeatd over the control socket (proto.h). `list` streams
 * rows as they arrive (constant memory however many sessions there are);
 * `stale` keeps only the stale rows to sort them, most idle first (with
 * --limit N the daemon sends at most N). Text output is an ss-like table,
 * --json one JSON array, both from one printer (output.h).
 *
 * Exit status: 0 success, 1 the daemon cannot be reached (or failed),
 * 2 usage error, 3 `drain --wait` timed out with sessions still open.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "core/filter.h"
#include "cli/filter_flags.h"
#include "kernel/hbmap.h"
#include "kernel/loader.h"
#include "common/log.h"
#include "common/names.h"
#include "cli/output.h"
#include "common/parse.h"
#include "common/proto.h"
#include "kernel/record.h"
#include "core/session.h"
#include "kernel/sock_diag.h"

#define EXIT_UNREACHABLE 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 3

enum cmd { CMD_NONE, CMD_STALE, CMD_LIST, CMD_STATS, CMD_DRAIN };

static const char *const cmd_name[] = {
	[CMD_STALE] = "stale", [CMD_LIST] = "list", [CMD_STATS] = "stats", [CMD_DRAIN] = "drain"
};

struct cli {
	enum cmd cmd;
	const char *socket_path;
	const char *pin_dir;
	bool maps;
	bool json;
	bool header;
	struct cb_filter filter;
	uint64_t idle_ns; /* 0: the daemon's threshold */
	uint8_t basis;    /* enum cb_idle_basis_req */
	uint32_t limit;
	bool wait;
	uint64_t timeout_ns;
};

/* ---- usage ----------------------------------------------------------------- */

static void usage_text(FILE *f)
{
	fprintf(f,
		"Usage: connbeat [--socket PATH] COMMAND [OPTIONS]\n"
		"       connbeat --maps [--pin-dir DIR] stale|list|stats [OPTIONS]\n"
		"\n"
		"Query connbeatd, the eBPF TCP connection tracker.\n"
		"\n"
		"Commands:\n"
		"  stale    sessions silent for at least the idle threshold, most idle first\n"
		"  list     all sessions\n"
		"  stats    counts by state, event, drop and eviction counters\n"
		"  drain    mark matching sessions DRAINING (e.g. before a deploy)\n"
		"\n"
		"Filters (stale, list, drain; all given must hold):\n"
		"  --state S        active|stale|draining|closed (repeatable)\n"
		"  --tcp-state S    established, close-wait, fin-wait2, ... (repeatable)\n"
		"  --port N         local or peer port     --sport N / --dport N  local / peer port\n"
		"  --addr IP        local or peer address  --pid N                owning process\n"
		"\n"
		"Options:\n"
		"  --idle DUR       stale: threshold (default: the daemon's --idle; DUR: 500ms, 30s, 5m)\n"
		"  --idle-basis B   stale: data (payload only) or any (incl. keepalives)\n"
		"  --limit N        at most N rows\n"
		"  --json           one JSON array (stats: one JSON object)\n"
		"  -H, --no-header  no table header\n"
		"  --wait           drain: return once none of the drained sessions is open\n"
		"  --timeout DUR    drain --wait: give up after DUR (default 60s), exit 3\n"
		"  --socket PATH    control socket (default " CB_DEFAULT_SOCKET ")\n"
		"  --maps           read the pinned BPF maps directly (no daemon needed)\n"
		"  --pin-dir DIR    with --maps (default " CB_DEFAULT_PIN_DIR ")\n"
		"  -h, --help       this help\n"
		"\n"
		"Exit status: 0 ok, 1 daemon unreachable or failed, 2 usage error,\n"
		"3 drain --wait timed out (what is left is printed).\n");
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "connbeat: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'connbeat --help'.\n");
	exit(EXIT_USAGE);
}

/* ---- argument parsing ----------------------------------------------------- */

enum {
	OPT_STATE = 256,
	OPT_TCP_STATE,
	OPT_PORT,
	OPT_SPORT,
	OPT_DPORT,
	OPT_ADDR,
	OPT_PID,
	OPT_IDLE,
	OPT_BASIS,
	OPT_LIMIT,
	OPT_JSON,
	OPT_WAIT,
	OPT_TIMEOUT,
	OPT_SOCKET,
	OPT_MAPS,
	OPT_PIN_DIR,
};

static const struct option long_opts[] = {
	{ "state", required_argument, NULL, OPT_STATE },
	{ "tcp-state", required_argument, NULL, OPT_TCP_STATE },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "sport", required_argument, NULL, OPT_SPORT },
	{ "dport", required_argument, NULL, OPT_DPORT },
	{ "addr", required_argument, NULL, OPT_ADDR },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "idle", required_argument, NULL, OPT_IDLE },
	{ "idle-basis", required_argument, NULL, OPT_BASIS },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "no-header", no_argument, NULL, 'H' },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "maps", no_argument, NULL, OPT_MAPS },
	{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static void parse_args(struct cli *c, int argc, char **argv)
{
	bool seen_idle = false, seen_limit = false, seen_timeout = false, seen_filter = false,
	     seen_basis = false;
	char err[256];
	uint64_t v;
	int opt, idx;

	*c = (struct cli){ .socket_path = CB_DEFAULT_SOCKET,
			   .pin_dir = CB_DEFAULT_PIN_DIR,
			   .header = true,
			   .timeout_ns = 60 * CB_NSEC_PER_SEC };
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hH", long_opts, &idx)) != -1) {
		switch (opt) {
		case 'h':
			usage_text(stdout);
			exit(0);
		case 'H':
			c->header = false;
			break;
		case OPT_STATE:
		case OPT_TCP_STATE:
		case OPT_PORT:
		case OPT_SPORT:
		case OPT_DPORT:
		case OPT_ADDR:
		case OPT_PID:
			if (cb_filter_set(&c->filter, long_opts[idx].name, optarg, err, sizeof(err)))
				usage_error("%s", err);
			seen_filter = true;
			break;
		case OPT_IDLE:
			if (cb_parse_duration(optarg, &c->idle_ns) || !c->idle_ns)
				usage_error("--idle '%s': not a duration above zero (e.g. 500ms, 30s, "
					    "5m)", optarg);
			seen_idle = true;
			break;
		case OPT_BASIS:
			if (!strcmp(optarg, "data"))
				c->basis = CB_BASIS_DATA;
			else if (!strcmp(optarg, "any"))
				c->basis = CB_BASIS_ANY;
			else
				usage_error("--idle-basis '%s': use data or any", optarg);
			seen_basis = true;
			break;
		case OPT_LIMIT:
			if (cb_parse_u64(optarg, 1, UINT32_MAX, &v))
				usage_error("--limit '%s': not a positive number", optarg);
			c->limit = (uint32_t)v;
			seen_limit = true;
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_WAIT:
			c->wait = true;
			break;
		case OPT_TIMEOUT:
			if (cb_parse_duration(optarg, &c->timeout_ns))
				usage_error("--timeout '%s': not a duration (e.g. 30s, 5m)", optarg);
			seen_timeout = true;
			break;
		case OPT_SOCKET:
			c->socket_path = optarg;
			break;
		case OPT_MAPS:
			c->maps = true;
			break;
		case OPT_PIN_DIR:
			c->pin_dir = optarg;
			break;
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		usage_error("no command given (stale, list, stats or drain)");
	for (int i = CMD_STALE; i <= CMD_DRAIN; i++)
		if (!strcmp(argv[optind], cmd_name[i]))
			c->cmd = i;
	if (c->cmd == CMD_NONE)
		usage_error("unknown command '%s' (use stale, list, stats or drain)", argv[optind]);
	if (optind + 1 < argc)
		usage_error("unexpected argument '%s'", argv[optind + 1]);

	if ((seen_idle || seen_basis) && c->cmd != CMD_STALE)
		usage_error("--idle and --idle-basis go with 'stale'");
	if (seen_limit && c->cmd != CMD_STALE && c->cmd != CMD_LIST)
		usage_error("--limit goes with 'stale' or 'list'");
	if ((c->wait || seen_timeout) && c->cmd != CMD_DRAIN)
		usage_error("--wait and --timeout go with 'drain'");
	if (seen_timeout && !c->wait)
		usage_error("--timeout needs --wait");
	if (seen_filter && c->cmd == CMD_STATS)
		usage_error("'stats' takes no filters");
	if (c->maps && c->cmd == CMD_DRAIN)
		usage_error("'drain' needs the daemon (it marks sessions in connbeatd); drop --maps");
}

/* ---- talking to the daemon ------------------------------------------------ */

static int connect_daemon(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		usage_error("--socket '%s': path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "connbeat: cannot create a socket: %s\n", strerror(errno));
		exit(EXIT_UNREACHABLE);
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno == EACCES || errno == EPERM)
		fprintf(stderr,
			"connbeat: permission denied on %s: the control socket is root-only; "
			"run connbeat with sudo\n",
			path);
	else
		fprintf(stderr,
			"connbeat: cannot reach connbeatd at %s: %s. Is it running? Start it with "
			"'sudo connbeatd' (or 'sudo systemctl start connbeatd'), or read the kernel "
			"maps without it: 'sudo connbeat --maps stale'\n",
			path, strerror(errno));
	exit(EXIT_UNREACHABLE);
}

static char *frame_buf;

/* Read one reply frame; ERROR frames and protocol failures end the program. */
static void read_reply(int fd, struct cb_frame_hdr *h)
{
	const char *why = "";
	struct cb_error e;
	int err;

	err = cb_proto_read(fd, h, frame_buf, CB_PROTO_MAX_PAYLOAD, &why);
	if (err) {
		if (err == -ENODATA || err == -EPIPE || err == -ECONNRESET)
			fprintf(stderr, "connbeat: connbeatd closed the connection before "
					"answering (did it stop?)\n");
		else if (err == -EPROTONOSUPPORT)
			fprintf(stderr, "connbeat: %s: use the connbeat that came with this "
					"connbeatd\n", why);
		else
			fprintf(stderr, "connbeat: bad reply from connbeatd: %s\n",
				why && *why ? why : strerror(-err));
		exit(EXIT_UNREACHABLE);
	}
	if (h->type != CB_MSG_ERROR)
		return;
	if (cb_proto_decode_error(frame_buf, h->length, &e, &why)) {
		fprintf(stderr, "connbeat: bad error reply from connbeatd: %s\n", why);
		exit(EXIT_UNREACHABLE);
	}
	fprintf(stderr, "connbeat: connbeatd: %s\n", e.message);
	exit(e.code == EINVAL ? EXIT_USAGE : EXIT_UNREACHABLE);
}

static void send_request(int fd, enum cb_msg_type type, const void *p, uint32_t len)
{
	int err = cb_proto_write(fd, type, p, len);

	if (err) {
		fprintf(stderr, "connbeat: sending the request to connbeatd failed: %s\n",
			strerror(-err));
		exit(EXIT_UNREACHABLE);
	}
}

/* ---- rows: one printer for table and JSON ---------------------------------- */

static const struct cb_col row_cols[] = {
	{ "State", 8, CB_COL_LEFT },
	{ "TCP-State", 11, CB_COL_LEFT },
	{ "Local Address:Port", 22, CB_COL_LEFT },
	{ "Peer Address:Port", 22, CB_COL_LEFT },
	{ "Idle", 7, CB_COL_RIGHT },
	{ "Age", 7, CB_COL_RIGHT },
	{ "Tx", 9, CB_COL_RIGHT },
	{ "Rx", 9, CB_COL_RIGHT },
	{ "Retr", 5, CB_COL_RIGHT },
	{ "Process", 0, CB_COL_LEFT },
};
#define N_ROW_COLS (sizeof(row_cols) / sizeof(row_cols[0]))

static void print_row(struct cb_out *o, const struct cb_row *r)
{
	char a[CB_ADDR_STRLEN], ap[CB_ADDRPORT_LEN], idle[16], age[16], tx[16], rx[16], proc[48];
	const char *st = cb_drain_state_name(r->state), *tst = cb_tcp_state_name(r->tcp_state);
	bool owner = r->flags & CB_ROW_OWNER_KNOWN, age_known = !(r->flags & CB_ROW_AGE_UNKNOWN);
	/* the table's cells are formatted only for the table: JSON of a
	 * million rows must not pay for them */
	bool text = o->mode == CB_OUT_TEXT;

	cb_out_row_begin(o);
	cb_out_str(o, "state", st ? st : "?", NULL);
	cb_out_str(o, "tcp_state", tst ? tst : "?", NULL);
	cb_out_json_u64(o, "id", r->cookie);
	cb_out_json_u64(o, "family", r->family);
	if (!text)
		cb_out_json_str(o, "src", cb_format_addr(r->family, r->saddr, a, sizeof(a)));
	cb_out_json_u64(o, "sport", r->sport);
	if (text)
		cb_out_str(o, NULL, NULL,
			   cb_format_addrport(r->family, r->saddr, r->sport, ap, sizeof(ap)));
	else
		cb_out_json_str(o, "dst", cb_format_addr(r->family, r->daddr, a, sizeof(a)));
	cb_out_json_u64(o, "dport", r->dport);
	if (text)
		cb_out_str(o, NULL, NULL,
			   cb_format_addrport(r->family, r->daddr, r->dport, ap, sizeof(ap)));
	cb_out_json_u64(o, "netns", r->netns);
	cb_out_u64(o, "idle_ms", r->idle_ns / CB_NSEC_PER_MSEC,
		   text ? cb_format_duration(r->idle_ns, idle, sizeof(idle)) : NULL);
	cb_out_json_u64(o, "seen_ms", r->seen_ns / CB_NSEC_PER_MSEC);
	/* a seeded session is older than connbeat's first sight of it */
	if (!text)
		age[0] = '\0';
	else if (age_known)
		cb_format_duration(r->age_ns, age, sizeof(age));
	else if (r->age_ns)
		snprintf(age, sizeof(age), ">%s", cb_format_duration(r->age_ns, tx, sizeof(tx)));
	else
		snprintf(age, sizeof(age), "?");
	cb_out_u64(o, "age_ms", r->age_ns / CB_NSEC_PER_MSEC, text ? age : NULL);
	cb_out_u64(o, "tx_bytes", r->tx_bytes,
		   text ? cb_format_size(r->tx_bytes, tx, sizeof(tx)) : NULL);
	cb_out_u64(o, "rx_bytes", r->rx_bytes,
		   text ? cb_format_size(r->rx_bytes, rx, sizeof(rx)) : NULL);
	cb_out_u64(o, "retrans", r->retrans, NULL);
	cb_out_json_u64(o, "resets", r->resets);
	cb_out_json_u64(o, "segs_in", r->segs_in);
	cb_out_json_u64(o, "segs_out", r->segs_out);
	if (owner) {
		cb_out_json_u64(o, "pid", r->pid);
		cb_out_json_str(o, "comm", r->comm);
		if (text)
			snprintf(proc, sizeof(proc), "%u/%s", r->pid, r->comm[0] ? r->comm : "?");
	} else {
		cb_out_json_null(o, "pid");
		cb_out_json_null(o, "comm");
		if (text)
			snprintf(proc, sizeof(proc), "-");
	}
	if (text)
		cb_out_str(o, NULL, NULL, proc);
	cb_out_json_str(o, "first_seen", age_known ? "observed" : "before connbeat");
	cb_out_json_str(o, "drained_by", r->flags & CB_ROW_OPERATOR_DRAIN ? "operator" :
					 r->state == CB_ST_DRAINING ? "tcp" : "none");
	cb_out_row_end(o);
}

/* Rows kept for sorting (stale): a growing array. */
struct rowvec {
	struct cb_row *v;
	size_t n, cap;
};

static void rowvec_push(struct rowvec *rv, const struct cb_row *r)
{
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? rv->cap * 2 : 1024;
		struct cb_row *v = realloc(rv->v, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "connbeat: out of memory after %zu rows\n", rv->n);
			exit(EXIT_UNREACHABLE);
		}
		rv->v = v;
		rv->cap = cap;
	}
	rv->v[rv->n++] = *r;
}

static int by_idle_desc(const void *a, const void *b)
{
	const struct cb_row *x = a, *y = b;

	if (x->idle_ns != y->idle_ns)
		return x->idle_ns < y->idle_ns ? 1 : -1;
	return x->cookie < y->cookie ? -1 : x->cookie > y->cookie;
}

static void print_sorted(struct cb_out *o, struct rowvec *rv, uint32_t limit)
{
	qsort(rv->v, rv->n, sizeof(rv->v[0]), by_idle_desc);
	for (size_t i = 0; i < rv->n && (!limit || i < limit); i++)
		print_row(o, &rv->v[i]);
}

/* ---- commands over the control socket --------------------------------------- */

/* Send a DUMP_REQ and print (list) or collect-then-print (stale) its rows.
 * Returns the number of rows. */
static uint64_t run_dump(const struct cli *c, int fd, const struct cb_filter *filter,
			 enum cb_dump_mode mode, struct cb_out *o)
{
	struct cb_dump_req req = { .filter = *filter, .mode = mode, .idle_basis = c->basis,
				   .limit = c->limit, .idle_ns = c->idle_ns };
	struct rowvec rv = { 0 };
	struct cb_frame_hdr h;
	struct cb_end end;
	const struct cb_row *rows;
	uint64_t n = 0;
	uint32_t count;
	const char *why;

	send_request(fd, CB_MSG_DUMP_REQ, &req, sizeof(req));
	for (;;) {
		read_reply(fd, &h);
		if (h.type == CB_MSG_END)
			break;
		if (h.type != CB_MSG_ROWS ||
		    cb_proto_decode_rows(frame_buf, h.length, &rows, &count, &why)) {
			fprintf(stderr, "connbeat: unexpected reply from connbeatd (%s)\n",
				cb_proto_type_name(h.type) ?: "?");
			exit(EXIT_UNREACHABLE);
		}
		for (uint32_t i = 0; i < count; i++, n++) {
			if (mode == CB_DUMP_STALE)
				rowvec_push(&rv, &rows[i]);
			else if (o)
				print_row(o, &rows[i]);
		}
	}
	if (cb_proto_decode_end(frame_buf, h.length, &end, &why)) {
		fprintf(stderr, "connbeat: bad end of dump from connbeatd: %s\n", why);
		exit(EXIT_UNREACHABLE);
	}
	if (end.status)
		fprintf(stderr, "connbeat: warning: the dump stopped early: %s\n",
			strerror(end.status));
	if (mode == CB_DUMP_STALE && o)
		print_sorted(o, &rv, c->limit);
	free(rv.v);
	return n;
}

static int cmd_rows(const struct cli *c)
{
	int fd = connect_daemon(c->socket_path);
	struct cb_out o;

	cb_out_begin(&o, stdout, c->json ? CB_OUT_JSON : CB_OUT_TEXT, row_cols, N_ROW_COLS,
		     c->header);
	run_dump(c, fd, &c->filter, c->cmd == CMD_STALE ? CB_DUMP_STALE : CB_DUMP_LIST, &o);
	cb_out_end(&o);
	close(fd);
	return 0;
}

static void print_stats(const struct cli *c, const struct cb_stat_entry *e, uint32_t n)
{
	size_t w = 0;

	if (c->json) {
		printf("{");
		for (uint32_t i = 0; i < n; i++) {
			printf(i ? ",\n" : "\n");
			cb_json_string(stdout, e[i].name);
			printf(":%" PRIu64, e[i].value);
		}
		printf("\n}\n");
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		if (strlen(e[i].name) > w)
			w = strlen(e[i].name);
	for (uint32_t i = 0; i < n; i++)
		printf("%-*s %" PRIu64 "\n", (int)w, e[i].name, e[i].value);
}

static int cmd_stats(const struct cli *c)
{
	int fd = connect_daemon(c->socket_path);
	const struct cb_stat_entry *e;
	struct cb_frame_hdr h;
	uint32_t n;
	const char *why;

	send_request(fd, CB_MSG_STATS_REQ, NULL, 0);
	read_reply(fd, &h);
	if (h.type != CB_MSG_STATS || cb_proto_decode_stats(frame_buf, h.length, &e, &n, &why)) {
		fprintf(stderr, "connbeat: unexpected reply to stats from connbeatd\n");
		return EXIT_UNREACHABLE;
	}
	print_stats(c, e, n);
	close(fd);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * CB_NSEC_PER_SEC + ts.tv_nsec;
}

static int cmd_drain(const struct cli *c)
{
	struct cb_drain_req req = { .filter = c->filter };
	struct cb_filter left = c->filter;
	struct cb_drained d;
	struct cb_frame_hdr h;
	const char *why;
	uint64_t deadline, n;
	int fd = connect_daemon(c->socket_path);

	send_request(fd, CB_MSG_DRAIN_REQ, &req, sizeof(req));
	read_reply(fd, &h);
	if (h.type != CB_MSG_DRAINED || cb_proto_decode_drained(frame_buf, h.length, &d, &why)) {
		fprintf(stderr, "connbeat: unexpected reply to drain from connbeatd\n");
		return EXIT_UNREACHABLE;
	}
	printf("marked %" PRIu64 " session%s DRAINING\n", d.count, d.count == 1 ? "" : "s");
	fflush(stdout); /* --wait may take a while: say it now, even into a pipe */
	if (!c->wait)
		goto out;

	/* What is left: the sessions an operator drained that match the
	 * filter (whatever their state was) and are not closed yet. */
	left.fields &= ~(uint32_t)CB_FLT_STATE;
	left.fields |= CB_FLT_OPERATOR_DRAINED | CB_FLT_STATE;
	left.state_mask = 1u << CB_ST_DRAINING;
	deadline = now_ns() + c->timeout_ns;
	for (;;) {
		struct cli q = *c;

		q.limit = 0;
		n = run_dump(&q, fd, &left, CB_DUMP_LIST, NULL);
		if (n == 0) {
			printf("drained: no matching session is open any more\n");
			break;
		}
		if (now_ns() >= deadline) {
			struct cb_out o;

			fprintf(stderr, "connbeat: drain --wait: timed out with %" PRIu64
					" session%s still open:\n", n, n == 1 ? "" : "s");
			cb_out_begin(&o, stdout, c->json ? CB_OUT_JSON : CB_OUT_TEXT, row_cols,
				     N_ROW_COLS, c->header);
			run_dump(&q, fd, &left, CB_DUMP_LIST, &o);
			cb_out_end(&o);
			close(fd);
			return EXIT_TIMEOUT;
		}
		usleep(100 * 1000);
	}
out:
	close(fd);
	return 0;
}

/* ---- --maps: the pinned heartbeats map, joined with sock_diag ---------------- */

/* Sockets by cookie from one sock_diag dump: an open-addressing table. */
struct diag_table {
	struct cb_diag_sock *v;
	size_t mask;
	size_t n;
};

static int diag_put(const struct cb_diag_sock *s, void *ctx)
{
	struct diag_table *t = ctx;
	size_t i;

	if (t->n * 2 >= t->mask) { /* grow at half full */
		struct diag_table g = { .mask = t->mask ? t->mask * 2 + 1 : 4095 };

		g.v = calloc(g.mask + 1, sizeof(*g.v));
		if (!g.v)
			return -ENOMEM;
		for (size_t j = 0; t->v && j <= t->mask; j++)
			if (t->v[j].cookie)
				diag_put(&t->v[j], &g);
		free(t->v);
		*t = g;
	}
	for (i = s->cookie & t->mask; t->v[i].cookie; i = (i + 1) & t->mask)
		if (t->v[i].cookie == s->cookie)
			return 0;
	t->v[i] = *s;
	t->n++;
	return 0;
}

static const struct cb_diag_sock *diag_get(const struct diag_table *t, uint64_t cookie)
{
	if (!t->v)
		return NULL;
	for (size_t i = cookie & t->mask; t->v[i].cookie; i = (i + 1) & t->mask)
		if (t->v[i].cookie == cookie)
			return &t->v[i];
	return NULL;
}

struct maps_ctx {
	const struct cli *c;
	uint32_t netns;
	struct diag_table diag;
	struct rowvec rows;
	uint64_t now;
	uint64_t idle_ns;
};

static int maps_row(uint64_t cookie, const struct cb_heartbeat *hb, void *ctx)
{
	struct maps_ctx *m = ctx;
	const struct cb_diag_sock *d = diag_get(&m->diag, cookie);
	uint64_t basis = m->c->basis == CB_BASIS_ANY ? hb->last_seen_ns : hb->last_data_ns;
	struct cb_session s;
	struct cb_row r = { .cookie = cookie, .family = 4 };

	r.idle_ns = m->now > basis ? m->now - basis : 0;
	r.seen_ns = m->now > hb->last_seen_ns ? m->now - hb->last_seen_ns : 0;
	r.flags = CB_ROW_AGE_UNKNOWN;
	r.tx_bytes = hb->tx_bytes;
	r.rx_bytes = hb->rx_bytes;
	r.retrans = hb->retrans;
	r.resets = hb->resets;
	r.state = r.idle_ns >= m->idle_ns ? CB_ST_STALE : CB_ST_ACTIVE;
	if (hb->pid) {
		char path[64];
		FILE *f;

		r.pid = hb->pid;
		r.flags |= CB_ROW_OWNER_KNOWN;
		snprintf(path, sizeof(path), "/proc/%u/comm", hb->pid);
		f = fopen(path, "r");
		if (f) {
			if (fgets(r.comm, sizeof(r.comm), f))
				r.comm[strcspn(r.comm, "\n")] = '\0';
			fclose(f);
		}
	}
	if (d) {
		r.family = d->family;
		memcpy(r.saddr, d->saddr, 16);
		memcpy(r.daddr, d->daddr, 16);
		r.sport = d->sport;
		r.dport = d->dport;
		r.tcp_state = d->state;
		r.netns = m->netns;
		r.segs_in = d->segs_in;
		r.segs_out = d->segs_out;
		if (r.state == CB_ST_ACTIVE && d->state != CB_TCP_ESTABLISHED &&
		    d->state != CB_TCP_SYN_SENT && d->state != CB_TCP_SYN_RECV)
			r.state = CB_ST_DRAINING;
	}
	/* The filters work on sessions: build the fields they read. */
	memset(&s, 0, sizeof(s));
	memcpy(s.saddr, r.saddr, 16);
	memcpy(s.daddr, r.daddr, 16);
	s.sport = r.sport;
	s.dport = r.dport;
	s.tcp_state = r.tcp_state;
	s.pid = r.pid;
	s.flags = r.family == 6 ? CB_SF_FAMILY6 : 0;
	atomic_store_explicit(&s.state, r.state, memory_order_relaxed);
	if (!cb_filter_match(&m->c->filter, &s))
		return 0;
	if (m->c->cmd == CMD_STALE && r.idle_ns < m->idle_ns)
		return 0;
	rowvec_push(&m->rows, &r);
	return 0;
}

static int cmd_maps(const struct cli *c)
{
	char path[512];
	struct maps_ctx m = { .c = c, .idle_ns = c->idle_ns ? c->idle_ns : 60 * CB_NSEC_PER_SEC };
	struct cb_out o;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", c->pin_dir,
		 c->cmd == CMD_STATS ? CB_MAP_STATS : CB_MAP_HEARTBEATS);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr,
			"connbeat: cannot open the pinned map %s: %s (has connbeatd ever run on "
			"this host with --pin-dir %s? run connbeat --maps as root)\n",
			path, strerror(errno), c->pin_dir);
		return EXIT_UNREACHABLE;
	}
	if (c->cmd == CMD_STATS) {
		uint64_t st[CB_STAT_MAX];
		static const char *const names[CB_STAT_MAX] = {
			/* the daemon's names for the same counters */
			[CB_STAT_EVENTS_EMITTED] = "connbeat_ringbuf_emitted_total{ring=\"events\"}",
			[CB_STAT_EVENTS_DROPPED] = "connbeat_ringbuf_dropped_total{ring=\"events\"}",
			[CB_STAT_BEATS_EMITTED] = "connbeat_ringbuf_emitted_total{ring=\"beats\"}",
			[CB_STAT_BEATS_DROPPED] = "connbeat_ringbuf_dropped_total{ring=\"beats\"}",
			[CB_STAT_MAP_UPDATE_FAILED] = "connbeat_heartbeats_update_failed_total",
			[CB_STAT_MAP_SEEDED] = "connbeat_heartbeats_seeded_total",
		};
		struct cb_stat_entry e[CB_STAT_MAX];
		uint32_t n = 0;

		err = cb_stats_read_fd(fd, st);
		if (err) {
			fprintf(stderr, "connbeat: reading %s failed: %s\n", path, strerror(-err));
			return EXIT_UNREACHABLE;
		}
		for (int i = 0; i < CB_STAT_MAX; i++) {
			if (!names[i])
				continue;
			snprintf(e[n].name, sizeof(e[n].name), "%s", names[i]);
			e[n++].value = st[i];
		}
		print_stats(c, e, n);
		return 0;
	}

	(void)cb_sock_diag_netns(&m.netns);
	err = cb_sock_diag_dump(CB_DIAG_SESSION_STATES, diag_put, &m.diag, -1);
	if (err)
		fprintf(stderr, "connbeat: warning: sock_diag failed (%s): addresses unknown\n",
			strerror(-err));
	m.now = now_ns();
	err = cb_hbmap_scan(fd, maps_row, &m);
	if (err) {
		fprintf(stderr, "connbeat: reading %s failed: %s\n", path, strerror(-err));
		return EXIT_UNREACHABLE;
	}
	cb_out_begin(&o, stdout, c->json ? CB_OUT_JSON : CB_OUT_TEXT, row_cols, N_ROW_COLS,
		     c->header);
	print_sorted(&o, &m.rows, c->limit); /* stale first, for list too */
	cb_out_end(&o);
	free(m.rows.v);
	free(m.diag.v);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c;

	cb_log_init("connbeat", CB_LOG_WARN);
	parse_args(&c, argc, argv);
	/* a closed stdout (| head) ends us quietly, not with SIGPIPE noise */
	signal(SIGPIPE, SIG_DFL);
	frame_buf = malloc(CB_PROTO_MAX_PAYLOAD);
	if (!frame_buf) {
		fprintf(stderr, "connbeat: out of memory\n");
		return EXIT_UNREACHABLE;
	}
	if (c.maps)
		return cmd_maps(&c);
	switch (c.cmd) {
	case CMD_STALE:
	case CMD_LIST:
		return cmd_rows(&c);
	case CMD_STATS:
		return cmd_stats(&c);
	case CMD_DRAIN:
		return cmd_drain(&c);
	default:
		return EXIT_USAGE;
	}
}
