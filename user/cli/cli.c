// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connbeat — the operator's CLI (design.md §5).
 *
 *   connbeat stale   [--idle DUR] [FILTERS] [--json] [--limit N] [--sort KEY]
 *   connbeat list    [FILTERS] [--json] [--limit N] [--sort KEY]
 *   connbeat stats   [--json]
 *   connbeat drain   [FILTERS] [--wait] [--timeout DUR] [--kill-after DUR]
 *   connbeat kill    FILTERS [--dry-run] [--json]
 *   connbeat events  [FILTERS] [--json]
 *   connbeat summary --by cgroup|comm|port|peer [FILTERS] [--json]
 *   connbeat --maps stale|list|stats ...     without the daemon: read the pinned maps
 *
 * It talks to connbeatd over the control socket (cli/client.h). `list`
 * streams rows as they arrive (constant memory however many sessions there
 * are); `stale`, and `--sort` without `--limit`, keep the rows to sort them
 * here; `--sort` with `--limit N` has the daemon pick the top N. Text output
 * is an ss-like table, --json one JSON array, both from one printer
 * (cli/rows.h).
 *
 * Exit status: 0 success, 1 the daemon cannot be reached (or failed),
 * 2 usage error, 3 `drain --wait` timed out with sessions still open.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/filter_flags.h"
#include "cli/rows.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/proto.h"
#include "kernel/cgroup.h"
#include "common/version.h"
#include "kernel/loader.h"
#include "kernel/netns.h"


enum cmd { CMD_NONE, CMD_STALE, CMD_LIST, CMD_STATS, CMD_DRAIN, CMD_KILL, CMD_EVENTS, CMD_SUMMARY,
	   CMD_MAX };

static const char *const cmd_name[CMD_MAX] = {
	[CMD_STALE] = "stale", [CMD_LIST] = "list",   [CMD_STATS] = "stats",
	[CMD_DRAIN] = "drain", [CMD_KILL] = "kill",   [CMD_EVENTS] = "events",
	[CMD_SUMMARY] = "summary",
};

static const char *const sort_name[CB_SORT_COUNT] = {
	[CB_SORT_IDLE] = "idle", [CB_SORT_AGE] = "age",		[CB_SORT_TX] = "tx",
	[CB_SORT_RX] = "rx",	 [CB_SORT_RETRANS] = "retrans", [CB_SORT_RTT] = "rtt",
};

static const char *const by_name[CB_BY_COUNT] = {
	[CB_BY_CGROUP] = "cgroup", [CB_BY_COMM] = "comm", [CB_BY_PORT] = "port",
	[CB_BY_PEER] = "peer",
};

struct cli {
	enum cmd cmd;
	const char *socket_path;
	const char *pin_dir;
	bool maps;
	bool json;
	bool header;
	bool filtered;
	struct cb_filter filter;
	uint64_t idle_ns; /* 0: the daemon's threshold */
	uint8_t basis;    /* enum cb_idle_basis_req */
	uint32_t limit;
	uint8_t sort;     /* enum cb_sort_key */
	uint8_t by;       /* enum cb_summary_by */
	bool wait, dry_run;
	uint64_t timeout_ns, kill_after_ns;
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
		"  kill     destroy the matching connections (a filter is required)\n"
		"  events   a live stream of opens, state changes and closes, until Ctrl-C\n"
		"  summary  sessions per cgroup, process, service port or peer\n"
		"\n"
		"Filters (stale, list, drain, kill, events, summary; all given must hold):\n"
		"  --state S        active|stale|draining|closed (repeatable)\n"
		"  --tcp-state S    established, close-wait, fin-wait2, ... (repeatable)\n"
		"  --port N         local or peer port     --sport N / --dport N  local / peer port\n"
		"  --addr IP        local or peer address  --pid N                owning process\n"
		"  --netns NS       network namespace: an inode, a name under /run/netns, or a\n"
		"                   path such as /proc/PID/ns/net\n"
		"  --cgroup PATH    cgroup v2 path below the cgroup2 mount, and its descendants\n"
		"\n"
		"Options:\n"
		"  --idle DUR       stale: threshold (default: the daemon's --idle; DUR: 500ms, 30s, 5m)\n"
		"  --idle-basis B   stale: data (payload only) or any (incl. keepalives)\n"
		"  --limit N        at most N rows\n"
		"  --sort KEY       idle|age|tx|rx|retrans|rtt, largest first; with --limit N the\n"
		"                   daemon picks the top N, without it connbeat sorts all rows\n"
		"  --by KEY         summary: cgroup|comm|port|peer\n"
		"  --json           one JSON array (stats: one JSON object; events: one per line)\n"
		"  -H, --no-header  no table header\n"
		"  --wait           drain: return once none of the drained sessions is open\n"
		"  --timeout DUR    drain --wait: give up after DUR (default 60s), exit 3\n"
		"  --kill-after DUR drain --wait: kill what is still open after DUR\n"
		"  --dry-run        kill: print what would be killed, kill nothing\n"
		"  --socket PATH    control socket (default " CB_DEFAULT_SOCKET ")\n"
		"  --maps           read the pinned BPF maps directly (no daemon needed)\n"
		"  --pin-dir DIR    with --maps (default " CB_DEFAULT_PIN_DIR ")\n"
		"  --version        print the version\n"
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
	OPT_NETNS,
	OPT_CGROUP,
	OPT_IDLE,
	OPT_BASIS,
	OPT_LIMIT,
	OPT_SORT,
	OPT_BY,
	OPT_JSON,
	OPT_WAIT,
	OPT_TIMEOUT,
	OPT_KILL_AFTER,
	OPT_DRY_RUN,
	OPT_SOCKET,
	OPT_MAPS,
	OPT_PIN_DIR,
	OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "state", required_argument, NULL, OPT_STATE },
	{ "tcp-state", required_argument, NULL, OPT_TCP_STATE },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "sport", required_argument, NULL, OPT_SPORT },
	{ "dport", required_argument, NULL, OPT_DPORT },
	{ "addr", required_argument, NULL, OPT_ADDR },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "idle", required_argument, NULL, OPT_IDLE },
	{ "idle-basis", required_argument, NULL, OPT_BASIS },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "sort", required_argument, NULL, OPT_SORT },
	{ "by", required_argument, NULL, OPT_BY },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "no-header", no_argument, NULL, 'H' },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "kill-after", required_argument, NULL, OPT_KILL_AFTER },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "maps", no_argument, NULL, OPT_MAPS },
	{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* A name from a table of choices (index), or a usage error naming them. */
static uint8_t choose(const char *flag, const char *v, const char *const *names, int n)
{
	char list[128] = "";

	for (int i = 1; i < n; i++)
		if (names[i] && !strcmp(v, names[i]))
			return (uint8_t)i;
	for (int i = 1; i < n; i++)
		if (names[i])
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 list[0] ? ", " : "", names[i]);
	usage_error("%s '%s': use one of %s", flag, v, list);
}

static void parse_filter_netns(struct cli *c, const char *v)
{
	char err[256];

	if (c->filter.fields & CB_FLT_NETNS)
		usage_error("--netns given twice (it takes one namespace)");
	if (cb_netns_resolve(v, &c->filter.netns, err, sizeof(err)))
		usage_error("--netns '%s': %s", v, err);
	c->filter.fields |= CB_FLT_NETNS;
}

static void parse_filter_cgroup(struct cli *c, const char *v)
{
	char err[256];
	size_t n;

	if (c->filter.fields & CB_FLT_CGROUP)
		usage_error("--cgroup given twice (it takes one path)");
	/* relative to the cgroup2 mount, as /proc/PID/cgroup prints it: a
	 * leading '/' is added when left out. An unknown path is fine (it may
	 * appear later); a malformed one is not. */
	if (v[0] != '/')
		snprintf(c->filter.cgroup, sizeof(c->filter.cgroup), "/%s", v);
	else
		snprintf(c->filter.cgroup, sizeof(c->filter.cgroup), "%s", v);
	n = strlen(c->filter.cgroup);
	if (strlen(v) + (v[0] != '/') >= sizeof(c->filter.cgroup))
		usage_error("--cgroup '%s': longer than %d bytes", v, CB_CGROUP_PATH_MAX - 1);
	if (cb_cgroup_path_check(c->filter.cgroup, err, sizeof(err)))
		usage_error("--cgroup '%s': %s", v, err);
	while (n > 1 && c->filter.cgroup[n - 1] == '/')
		c->filter.cgroup[--n] = '\0';
	c->filter.fields |= CB_FLT_CGROUP;
}

static void parse_args(struct cli *c, int argc, char **argv)
{
	bool seen_idle = false, seen_limit = false, seen_timeout = false, seen_basis = false;
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
		case OPT_VERSION:
			printf("connbeat %s\n", CONNBEAT_VERSION);
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
			c->filtered = true;
			break;
		case OPT_NETNS:
			parse_filter_netns(c, optarg);
			c->filtered = true;
			break;
		case OPT_CGROUP:
			parse_filter_cgroup(c, optarg);
			c->filtered = true;
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
		case OPT_SORT:
			c->sort = choose("--sort", optarg, sort_name, CB_SORT_COUNT);
			break;
		case OPT_BY:
			c->by = choose("--by", optarg, by_name, CB_BY_COUNT);
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
		case OPT_KILL_AFTER:
			if (cb_parse_duration(optarg, &c->kill_after_ns))
				usage_error("--kill-after '%s': not a duration (e.g. 30s, 5m)", optarg);
			if (!c->kill_after_ns)
				c->kill_after_ns = 1; /* at once */
			break;
		case OPT_DRY_RUN:
			c->dry_run = true;
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
		usage_error("no command given (stale, list, stats, drain, kill, events or summary)");
	for (int i = CMD_STALE; i < CMD_MAX; i++)
		if (!strcmp(argv[optind], cmd_name[i]))
			c->cmd = i;
	if (c->cmd == CMD_NONE)
		usage_error("unknown command '%s' (use stale, list, stats, drain, kill, events or "
			    "summary)", argv[optind]);
	if (optind + 1 < argc)
		usage_error("unexpected argument '%s'", argv[optind + 1]);

	if ((seen_idle || seen_basis) && c->cmd != CMD_STALE)
		usage_error("--idle and --idle-basis go with 'stale'");
	if ((seen_limit || c->sort) && c->cmd != CMD_STALE && c->cmd != CMD_LIST)
		usage_error("--limit and --sort go with 'stale' or 'list'");
	if ((c->wait || seen_timeout || c->kill_after_ns) && c->cmd != CMD_DRAIN)
		usage_error("--wait, --timeout and --kill-after go with 'drain'");
	if ((seen_timeout || c->kill_after_ns) && !c->wait)
		usage_error("--timeout and --kill-after need --wait");
	if (c->dry_run && c->cmd != CMD_KILL)
		usage_error("--dry-run goes with 'kill'");
	if (c->by && c->cmd != CMD_SUMMARY)
		usage_error("--by goes with 'summary'");
	if (c->cmd == CMD_SUMMARY && !c->by)
		usage_error("summary needs --by cgroup|comm|port|peer");
	if (c->filtered && c->cmd == CMD_STATS)
		usage_error("'stats' takes no filters");
	if (c->cmd == CMD_KILL && !c->filtered)
		usage_error("kill needs a filter (e.g. --port 8080, --tcp-state close-wait): "
			    "killing every connection of the host is never what you want");
	if (c->maps && c->cmd != CMD_STALE && c->cmd != CMD_LIST && c->cmd != CMD_STATS)
		usage_error("'%s' needs the daemon; drop --maps", cmd_name[c->cmd]);
	if (c->maps && (c->filter.fields & (CB_FLT_NETNS | CB_FLT_CGROUP)))
		usage_error("--netns and --cgroup need the daemon; drop --maps");
}

/* ---- rows over the control socket --------------------------------------------- */

/* Rows kept for sorting: a growing array. */
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

static int by_key_desc(const void *a, const void *b, void *key)
{
	return cb_row_sort_cmp(*(const unsigned int *)key, a, b);
}

void cb_cli_sort_rows(struct cb_row *v, size_t n, unsigned int key)
{
	qsort_r(v, n, sizeof(*v), by_key_desc, &key);
}

/* Read ROWS frames until END; each row to print (when f) or keep (when
 * rv). The END into *end. */
static void read_rows(int fd, struct cb_rowfmt *f, struct rowvec *rv, struct cb_end *end)
{
	struct cb_frame_hdr h;
	const struct cb_row *rows;
	uint32_t count;
	const char *why;

	for (;;) {
		cb_client_read(fd, &h);
		if (h.type == CB_MSG_END)
			break;
		if (h.type != CB_MSG_ROWS ||
		    cb_proto_decode_rows(cb_client_payload(), h.length, &rows, &count, &why)) {
			fprintf(stderr, "connbeat: unexpected reply from connbeatd (%s)\n",
				cb_proto_type_name(h.type) ?: "?");
			exit(EXIT_UNREACHABLE);
		}
		for (uint32_t i = 0; i < count; i++) {
			if (rv)
				rowvec_push(rv, &rows[i]);
			else if (f)
				cb_rows_print(f, &rows[i]);
		}
	}
	cb_client_end(&h, end);
}

/* Does the table need a Netns column: rows from more than one netns? */
static bool several_netns(const struct cli *c, int fd)
{
	if (c->json || (c->filter.fields & CB_FLT_NETNS))
		return false;
	return cb_client_stat(fd, "connbeat_netns") > 1;
}

static int cmd_rows(const struct cli *c)
{
	int fd = cb_client_connect(c->socket_path);
	bool stale = c->cmd == CMD_STALE;
	struct cb_dump_req req = { .filter = c->filter,
				   .mode = stale ? CB_DUMP_STALE : CB_DUMP_LIST,
				   .idle_basis = c->basis,
				   .limit = c->limit,
				   .idle_ns = c->idle_ns };
	/* the daemon picks a top N; everything else sorted here */
	bool sort_here = (stale || c->sort) && !(c->limit && (c->sort || stale));
	struct rowvec rv = { 0 };
	struct cb_rowfmt f;
	struct cb_end end;
	bool netns_col = several_netns(c, fd);

	if (c->limit)
		req.sort = c->sort ? c->sort : stale ? CB_SORT_IDLE : CB_SORT_NONE;
	cb_client_send(fd, CB_MSG_DUMP_REQ, &req, sizeof(req));
	cb_rows_begin(&f, stdout, c->json, c->header, netns_col);
	read_rows(fd, sort_here ? NULL : &f, sort_here ? &rv : NULL, &end);
	if (sort_here) {
		cb_cli_sort_rows(rv.v, rv.n, c->sort ? c->sort : CB_SORT_IDLE);
		for (size_t i = 0; i < rv.n && (!c->limit || i < c->limit); i++)
			cb_rows_print(&f, &rv.v[i]);
	}
	cb_rows_end(&f);
	free(rv.v);
	close(fd);
	return 0;
}

static int cmd_stats(const struct cli *c)
{
	int fd = cb_client_connect(c->socket_path);
	const struct cb_stat_entry *e;
	struct cb_frame_hdr h;
	uint32_t n;
	const char *why;

	cb_client_send(fd, CB_MSG_STATS_REQ, NULL, 0);
	cb_client_read(fd, &h);
	if (h.type != CB_MSG_STATS ||
	    cb_proto_decode_stats(cb_client_payload(), h.length, &e, &n, &why)) {
		fprintf(stderr, "connbeat: unexpected reply to stats from connbeatd\n");
		return EXIT_UNREACHABLE;
	}
	cb_cli_print_stats(c->json, e, n);
	close(fd);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * CB_NSEC_PER_SEC + ts.tv_nsec;
}

/* How many of the drained set are still open (and their rows, printed). */
static uint64_t drain_status(const struct cli *c, int fd, bool rows)
{
	struct cb_drain_status_req req = { .rows = rows };
	struct cb_rowfmt f;
	struct cb_end end;

	cb_client_send(fd, CB_MSG_DRAIN_STATUS_REQ, &req, sizeof(req));
	if (rows)
		cb_rows_begin(&f, stdout, c->json, c->header, false);
	read_rows(fd, rows ? &f : NULL, NULL, &end);
	if (rows)
		cb_rows_end(&f);
	return end.matched;
}

/* Kill what is left of the drained set; returns how many were killed. */
static uint64_t kill_drained(const struct cli *c, int fd)
{
	struct cb_kill_req req = { .flags = CB_KILL_DRAINED };
	struct cb_end end;

	cb_client_send(fd, CB_MSG_KILL_REQ, &req, sizeof(req));
	read_rows(fd, NULL, NULL, &end);
	printf("killed %" PRIu64 " connection%s still open after --kill-after\n", end.rows,
	       end.rows == 1 ? "" : "s");
	fflush(stdout);
	return end.rows;
}

static int cmd_drain(const struct cli *c)
{
	struct cb_drain_req req = { .filter = c->filter, .flags = c->wait ? CB_DRAIN_KEEP : 0 };
	const char *why;
	struct cb_drained d;
	struct cb_frame_hdr h;
	uint64_t start, n;
	bool killed = false;
	int fd = cb_client_connect(c->socket_path);

	cb_client_send(fd, CB_MSG_DRAIN_REQ, &req, sizeof(req));
	cb_client_read(fd, &h);
	if (h.type != CB_MSG_DRAINED ||
	    cb_proto_decode_drained(cb_client_payload(), h.length, &d, &why)) {
		fprintf(stderr, "connbeat: unexpected reply to drain from connbeatd\n");
		return EXIT_UNREACHABLE;
	}
	printf("marked %" PRIu64 " session%s DRAINING\n", d.count, d.count == 1 ? "" : "s");
	fflush(stdout); /* --wait may take a while: say it now, even into a pipe */
	if (!c->wait)
		goto out;

	/* The drained set: every session that matched when the drain was
	 * asked (those already DRAINING included), whatever TCP state it
	 * moves to, until it is closed. The daemon keeps it on this
	 * connection. The timeout wins over --kill-after. */
	start = now_ns();
	for (;;) {
		uint64_t t = now_ns();

		n = drain_status(c, fd, false);
		if (n == 0) {
			printf("drained: no matching session is open any more\n");
			break;
		}
		if (t - start >= c->timeout_ns) {
			fprintf(stderr, "connbeat: drain --wait: timed out with %" PRIu64
					" session%s still open:\n", n, n == 1 ? "" : "s");
			drain_status(c, fd, true);
			close(fd);
			return EXIT_TIMEOUT;
		}
		if (c->kill_after_ns && !killed && t - start >= c->kill_after_ns) {
			kill_drained(c, fd);
			killed = true;
			continue;
		}
		usleep(100 * 1000);
	}
out:
	close(fd);
	return 0;
}

static int cmd_kill(const struct cli *c)
{
	struct cb_kill_req req = { .filter = c->filter, .flags = c->dry_run ? CB_KILL_DRY_RUN : 0 };
	int fd = cb_client_connect(c->socket_path);
	struct cb_rowfmt f;
	struct cb_end end;

	cb_client_send(fd, CB_MSG_KILL_REQ, &req, sizeof(req));
	cb_rows_begin(&f, stdout, c->json, c->header, false);
	read_rows(fd, &f, NULL, &end);
	cb_rows_end(&f);
	fprintf(c->json ? stderr : stdout, "%s %" PRIu64 " connection%s\n",
		c->dry_run ? "would kill" : "killed", end.rows, end.rows == 1 ? "" : "s");
	if (!c->dry_run && end.rows < end.matched)
		fprintf(stderr, "connbeat: %" PRIu64 " matching connection%s could not be killed "
				"(gone meanwhile, or in a namespace connbeatd cannot enter)\n",
			end.matched - end.rows, end.matched - end.rows == 1 ? "" : "s");
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c;

	cb_log_init("connbeat", CB_LOG_WARN);
	parse_args(&c, argc, argv);
	/* a closed stdout (| head) ends us quietly, not with SIGPIPE noise */
	signal(SIGPIPE, SIG_DFL);
	if (c.maps)
		return cb_cli_maps(c.cmd == CMD_STATS ? CB_MAPS_STATS :
				   c.cmd == CMD_STALE ? CB_MAPS_STALE : CB_MAPS_LIST,
				   c.pin_dir, &c.filter, c.idle_ns, c.basis, c.limit, c.sort, c.json,
				   c.header);
	switch (c.cmd) {
	case CMD_STALE:
	case CMD_LIST:
		return cmd_rows(&c);
	case CMD_STATS:
		return cmd_stats(&c);
	case CMD_DRAIN:
		return cmd_drain(&c);
	case CMD_KILL:
		return cmd_kill(&c);
	case CMD_EVENTS:
		return cb_cli_events(c.socket_path, &c.filter, c.json);
	case CMD_SUMMARY:
		return cb_cli_summary(c.socket_path, &c.filter, c.by, c.json, c.header);
	default:
		return EXIT_USAGE;
	}
}
