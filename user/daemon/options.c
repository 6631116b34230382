// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* options.c — see options.h. */
#include "daemon/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/config.h"
#include "common/log.h"
#include "common/version.h"
#include "kernel/reconcile.h" /* CB_DEFAULT_SWEEP_PERIOD_NS */
#include "daemon/metrics.h"
#include "common/parse.h"

enum opt_kind {
	OPT_DURATION, /* uint64_t ns */
	OPT_SIZE,     /* uint64_t bytes */
	OPT_U64,      /* uint64_t */
	OPT_U32,      /* uint32_t */
	OPT_STRING,   /* char[] */
	OPT_FLAG,     /* bool, no argument on the command line */
	OPT_BASIS,    /* data|any -> bool */
	OPT_HELP,
	OPT_VERSION,
};

struct opt_desc {
	const char *name;
	enum opt_kind kind;
	size_t offset;
	size_t size; /* of the field (strings) */
	uint64_t min, max;
	bool reloadable; /* taken over on SIGHUP */
	bool cli_only;   /* not accepted in a config file */
	const char *arg; /* metavariable in --help */
	const char *help;
};

#define F(field) offsetof(struct cb_options, field), sizeof(((struct cb_options *)0)->field)
#define DAY (86400ULL * CB_NSEC_PER_SEC)

static const struct opt_desc opts[] = {
	{ "idle", OPT_DURATION, F(idle_ns), CB_NSEC_PER_MSEC, 30 * DAY, true, false, "DUR",
	  "stale threshold: a session silent this long is STALE (default 60s)" },
	{ "idle-basis", OPT_BASIS, F(idle_basis_any), 0, 0, true, false, "data|any",
	  "judge idleness on payload only (data, default) or any packet incl. keepalives (any)" },
	{ "drain-timeout", OPT_DURATION, F(drain_timeout_ns), CB_NSEC_PER_MSEC, 30 * DAY, true,
	  false, "DUR", "a DRAINING session silent this long is reported stale (default 60s)" },
	{ "linger", OPT_DURATION, F(linger_ns), 0, DAY, true, false, "DUR",
	  "keep CLOSED sessions this long before evicting them (default 10s)" },
	{ "tick", OPT_DURATION, F(tick_ns), CB_NSEC_PER_MSEC, 10 * CB_NSEC_PER_SEC, false, false,
	  "DUR", "timing-wheel slot width (default 100ms)" },
	{ "max-sessions", OPT_U64, F(max_sessions), 1024, CB_MAX_SESSIONS_LIMIT, false, false, "N",
	  "session cap; also sizes the kernel heartbeats map (default 262144)" },
	{ "shards", OPT_U32, F(shards), 0, 4096, false, false, "N",
	  "session-map shards, a power of two (default: from the core count)" },
	{ "reconcile-interval", OPT_DURATION, F(reconcile_ns), 100 * CB_NSEC_PER_MSEC, DAY, true,
	  false, "DUR", "how often to look for new or deleted network namespaces, repair "
	  "reported loss, follow FIN_WAIT2 remnants and take one sweep step (default 5s)" },
	{ "sweep-period", OPT_DURATION, F(sweep_period_ns), CB_NSEC_PER_SEC, DAY, false, false,
	  "DUR", "check every socket of every network namespace once per DUR, in small steps "
	  "(default 5m)" },
	{ "pin-dir", OPT_STRING, F(pin_dir), 0, 0, false, false, "DIR",
	  "where the BPF maps are pinned (default " CB_DEFAULT_PIN_DIR ")" },
	{ "socket", OPT_STRING, F(socket_path), 0, 0, false, false, "PATH",
	  "control socket for the connbeat CLI (default " CB_DEFAULT_SOCKET ")" },
	{ "metrics", OPT_STRING, F(metrics), 0, 0, false, false, "ADDR:PORT|off",
	  "Prometheus endpoint (default " CB_DEFAULT_METRICS ")" },
	{ "config", OPT_STRING, F(config), 0, 0, false, true, "FILE",
	  "key = value settings, keys are these flags' names (default " CB_DEFAULT_CONFIG
	  " if it exists)" },
	{ "beat-interval", OPT_DURATION, F(beat_interval_ns), 0, 3600 * CB_NSEC_PER_SEC, false, false,
	  "DUR", "at most one kernel heartbeat per connection per CPU per DUR (default: a quarter "
	  "of --idle, at most 1s; 0: every event)" },
	{ "events-ring-size", OPT_SIZE, F(events_ring_size), 4096, 1ULL << 30, false, false, "BYTES",
	  "lifecycle ring buffer size, a power of two (default 8M)" },
	{ "beats-ring-size", OPT_SIZE, F(beats_ring_size), 4096, 1ULL << 30, false, false, "BYTES",
	  "heartbeat ring buffer size, a power of two (default 4M)" },
	{ "trace", OPT_FLAG, F(trace), 0, 0, false, false, NULL,
	  "print every kernel record as a line on stdout (debugging)" },
	{ "verbose", OPT_FLAG, F(verbose), 0, 0, true, false, NULL, "debug logging, libbpf's included" },
	{ "version", OPT_VERSION, 0, 0, 0, 0, false, true, NULL, "print the version and exit" },
	{ "help", OPT_HELP, 0, 0, 0, 0, false, true, NULL, "show this help and exit" },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

void cb_options_defaults(struct cb_options *o)
{
	memset(o, 0, sizeof(*o));
	o->idle_ns = 60 * CB_NSEC_PER_SEC;
	o->drain_timeout_ns = 60 * CB_NSEC_PER_SEC;
	o->linger_ns = 10 * CB_NSEC_PER_SEC;
	o->tick_ns = 100 * CB_NSEC_PER_MSEC;
	o->max_sessions = CB_DEFAULT_MAX_SESSIONS;
	o->reconcile_ns = 5 * CB_NSEC_PER_SEC;
	o->sweep_period_ns = CB_DEFAULT_SWEEP_PERIOD_NS;
	o->beat_interval_ns = CB_NSEC_PER_SEC;
	o->events_ring_size = CB_DEFAULT_EVENTS_RING_BYTES;
	o->beats_ring_size = CB_DEFAULT_BEATS_RING_BYTES;
	snprintf(o->pin_dir, sizeof(o->pin_dir), "%s", CB_DEFAULT_PIN_DIR);
	snprintf(o->socket_path, sizeof(o->socket_path), "%s", CB_DEFAULT_SOCKET);
	snprintf(o->metrics, sizeof(o->metrics), "%s", CB_DEFAULT_METRICS);
	snprintf(o->config, sizeof(o->config), "%s", CB_DEFAULT_CONFIG);
}

static const struct opt_desc *find_opt(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static int set_err(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Checks that need more than a range: ring sizes and shard counts. */
static int check_value(const struct opt_desc *d, uint64_t v, char *err, size_t errlen)
{
	const char *why;

	if (d->kind == OPT_SIZE && cb_loader_check_ring_size(v, &why))
		return set_err(err, errlen, -EINVAL,
			       "--%s %llu: %s (a ring is a power of two of at least one page, "
			       "at most 1G)", d->name, (unsigned long long)v, why);
	if (strcmp(d->name, "shards") == 0 && v && !is_pow2(v))
		return set_err(err, errlen, -EINVAL, "--%s %llu: must be a power of two", d->name,
			       (unsigned long long)v);
	return 0;
}

static int check_metrics(const char *v, char *err, size_t errlen)
{
	const char *colon = strrchr(v, ':');
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t port;

	if (strcmp(v, "off") == 0)
		return 0;
	if (!colon || colon == v || cb_parse_u64(colon + 1, 1, 65535, &port) ||
	    cb_metrics_parse_addr(v, &ss, &len))
		return set_err(err, errlen, -EINVAL,
			       "--metrics '%s': expected a numeric ADDR:PORT (e.g. 127.0.0.1:9477, "
			       "0.0.0.0:9477, [::1]:9477) or off",
			       v);
	return 0;
}

int cb_options_set(struct cb_options *o, const char *name, const char *value, char *err,
		   size_t errlen)
{
	const struct opt_desc *d = find_opt(name);
	char *field;
	uint64_t v = 0;
	int ret;

	if (!d || d->kind == OPT_HELP || d->kind == OPT_VERSION)
		return set_err(err, errlen, -ENOENT, "unknown option '%s' (see connbeatd --help)",
			       name);
	field = (char *)o + d->offset;
	if (field == (char *)&o->beat_interval_ns)
		o->beat_interval_given = true;

	switch (d->kind) {
	case OPT_FLAG:
		if (!value || !strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
		    !strcmp(value, "1"))
			*(bool *)field = true;
		else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") ||
			 !strcmp(value, "0"))
			*(bool *)field = false;
		else
			return set_err(err, errlen, -EINVAL,
				       "%s '%s': expected true or false", name, value);
		return 0;
	case OPT_BASIS:
		if (value && !strcmp(value, "data"))
			*(bool *)field = false;
		else if (value && !strcmp(value, "any"))
			*(bool *)field = true;
		else
			return set_err(err, errlen, -EINVAL, "--%s '%s': expected data or any", name,
				       value ? value : "");
		return 0;
	case OPT_STRING:
		if (!value || !*value)
			return set_err(err, errlen, -EINVAL, "--%s: needs a value", name);
		if (strlen(value) >= d->size)
			return set_err(err, errlen, -EINVAL, "--%s '%s': longer than %zu bytes",
				       name, value, d->size - 1);
		if (strcmp(name, "metrics") == 0 && (ret = check_metrics(value, err, errlen)))
			return ret;
		if ((!strcmp(name, "pin-dir") || !strcmp(name, "socket")) && value[0] != '/')
			return set_err(err, errlen, -EINVAL, "--%s '%s': must be an absolute path",
				       name, value);
		snprintf(field, d->size, "%s", value);
		if (strcmp(name, "config") == 0)
			o->config_given = true;
		return 0;
	case OPT_DURATION:
		ret = value ? cb_parse_duration(value, &v) : -EINVAL;
		if (ret == -EINVAL)
			return set_err(err, errlen, ret,
				       "--%s '%s': not a duration (use e.g. 500ms, 30s, 5m, 2h)", name,
				       value ? value : "");
		break;
	case OPT_SIZE:
		ret = value ? cb_parse_size(value, &v) : -EINVAL;
		if (ret == -EINVAL)
			return set_err(err, errlen, ret,
				       "--%s '%s': not a size (use e.g. 4096, 64K, 8M)", name,
				       value ? value : "");
		break;
	case OPT_U64:
	case OPT_U32:
		ret = value ? cb_parse_u64(value, 0, UINT64_MAX, &v) : -EINVAL;
		if (ret == -EINVAL)
			return set_err(err, errlen, ret, "--%s '%s': not a whole number", name,
				       value ? value : "");
		break;
	default:
		return set_err(err, errlen, -EINVAL, "--%s: internal error", name);
	}
	if (ret == -ERANGE || v < d->min || v > d->max) {
		char lo[24], hi[24];

		if (d->kind == OPT_DURATION) {
			cb_format_duration(d->min, lo, sizeof(lo));
			cb_format_duration(d->max, hi, sizeof(hi));
		} else {
			snprintf(lo, sizeof(lo), "%llu", (unsigned long long)d->min);
			snprintf(hi, sizeof(hi), "%llu", (unsigned long long)d->max);
		}
		return set_err(err, errlen, -EINVAL, "--%s '%s': out of range [%s, %s]", name, value,
			       lo, hi);
	}
	if ((ret = check_value(d, v, err, errlen)))
		return ret;
	if (d->kind == OPT_U32)
		*(uint32_t *)field = (uint32_t)v;
	else
		*(uint64_t *)field = v;
	return 0;
}

struct load_ctx {
	struct cb_options *o;
	const char *path;
};

static int load_one(const char *key, const char *value, unsigned line, void *ctx, char *err,
		    size_t errlen)
{
	struct load_ctx *lc = ctx;
	const struct opt_desc *d = find_opt(key);
	char why[256];
	int ret;

	if (d && d->cli_only)
		return set_err(err, errlen, -EINVAL, "%s:%u: '%s' is only accepted on the command line",
			       lc->path, line, key);
	ret = cb_options_set(lc->o, key, value, why, sizeof(why));
	if (ret)
		return set_err(err, errlen, -EINVAL, "%s:%u: %s", lc->path, line,
			       why[0] == '-' && why[1] == '-' ? why + 2 : why);
	return 0;
}

int cb_options_load_file(struct cb_options *o, const char *path, bool must_exist, char *err,
			 size_t errlen)
{
	struct load_ctx lc = { .o = o, .path = path };

	if (!must_exist && access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	return cb_config_parse_file(path, load_one, &lc, err, errlen);
}

void cb_options_usage(FILE *f)
{
	fprintf(f, "Usage: connbeatd [OPTION]...\n"
		   "Track every TCP connection on this host with eBPF; serve the connbeat CLI and\n"
		   "Prometheus metrics. Runs in the foreground, as root.\n\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
			 opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-28s %s\n", left, opts[i].help);
	}
	fprintf(f, "\nDurations: 500ms, 30s, 5m, 2h, 1d. Sizes: 4096, 64K, 8M.\n"
		   "Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime failure, 2 on a usage or\n"
		   "configuration error.\n");
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error: the reason, then the usage, on stderr (the caller exits 2). */
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "connbeatd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n");
	cb_options_usage(stderr);
}

int cb_options_parse_argv(struct cb_options *o, int argc, char **argv)
{
	struct option lo[N_OPTS + 1];
	char err[512];
	int c, idx;

	for (size_t i = 0; i < N_OPTS; i++)
		lo[i] = (struct option){ opts[i].name,
					 opts[i].kind == OPT_FLAG || opts[i].kind == OPT_HELP ||
								 opts[i].kind == OPT_VERSION ?
						 no_argument :
						 required_argument,
					 NULL, 0 };
	memset(&lo[N_OPTS], 0, sizeof(lo[N_OPTS]));

	optind = 1;
	opterr = 0;
	for (;;) {
		idx = -1;
		c = getopt_long(argc, argv, "+:htv", lo, &idx);
		if (c == -1)
			break;
		if (c == 'h' || (c == 0 && opts[idx].kind == OPT_HELP)) {
			cb_options_usage(stdout);
			return 1;
		}
		if (c == 0 && opts[idx].kind == OPT_VERSION) {
			printf("connbeatd %s\n", CONNBEAT_VERSION);
			return 1;
		}
		if (c == 't' || c == 'v') {
			if (c == 't')
				o->trace = true;
			else
				o->verbose = true;
			continue;
		}
		if (c == ':') {
			usage_error("option '%s' needs a value", argv[optind - 1]);
			return -EINVAL;
		}
		if (c == '?') {
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			else
				usage_error("unknown option '%s'", argv[optind - 1]);
			return -EINVAL;
		}
		if (cb_options_set(o, opts[idx].name, optarg, err, sizeof(err))) {
			usage_error("%s", err);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		usage_error("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int check_beat_interval(struct cb_options *o)
{
	char a[32], b[32], c[32];

	if (!o->beat_interval_given) {
		o->beat_interval_ns = o->idle_ns / 4 < CB_NSEC_PER_SEC ? o->idle_ns / 4 :
									 CB_NSEC_PER_SEC;
		return 0;
	}
	if (!o->beat_interval_ns || o->idle_ns >= 2 * o->beat_interval_ns)
		return 0;
	/* no usage text: it also runs on SIGHUP, into the journal */
	fprintf(stderr, "connbeatd: --idle %s is shorter than twice --beat-interval %s: a busy "
		"connection reports once per beat interval, so it would flap between stale "
		"and active; set --beat-interval %s or less (or leave it out: it follows --idle)\n",
		cb_format_duration(o->idle_ns, a, sizeof(a)),
		cb_format_duration(o->beat_interval_ns, b, sizeof(b)),
		cb_format_duration(o->idle_ns / 2, c, sizeof(c)));
	return -EINVAL;
}

int cb_options_resolve(struct cb_options *o, int argc, char **argv)
{
	struct cb_options first;
	char err[512];
	int ret;

	/* Pass 1 only to learn --config (and --help / usage errors early). */
	cb_options_defaults(&first);
	ret = cb_options_parse_argv(&first, argc, argv);
	if (ret)
		return ret;

	cb_options_defaults(o);
	ret = cb_options_load_file(o, first.config, first.config_given, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "connbeatd: %s\n", err);
		return -EINVAL;
	}
	snprintf(o->config, sizeof(o->config), "%s", first.config);
	o->config_given = first.config_given;
	ret = cb_options_parse_argv(o, argc, argv);
	if (ret)
		return ret;
	return check_beat_interval(o);
}

int cb_options_reload(struct cb_options *cur, const struct cb_options *next)
{
	int changed = 0;

	if (next->idle_ns < 2 * cur->beat_interval_ns && cur->beat_interval_ns) {
		char a[32], b[32];

		cb_err("reload: --idle %s is shorter than twice the running --beat-interval %s "
		       "(which needs a restart to change): keeping the current settings",
		       cb_format_duration(next->idle_ns, a, sizeof(a)),
		       cb_format_duration(cur->beat_interval_ns, b, sizeof(b)));
		return 0;
	}
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_desc *d = &opts[i];
		size_t sz = d->kind == OPT_STRING ? d->size :
			    d->kind == OPT_FLAG || d->kind == OPT_BASIS ? sizeof(bool) :
			    d->kind == OPT_U32 ? sizeof(uint32_t) :
						   sizeof(uint64_t);
		char *a = (char *)cur + d->offset;
		const char *b = (const char *)next + d->offset;

		if (d->kind == OPT_HELP || d->kind == OPT_VERSION || !memcmp(a, b, sz))
			continue;
		if (!strcmp(d->name, "beat-interval") && !next->beat_interval_given)
			continue; /* derived from --idle: follows it on restart only */
		if (!d->reloadable) {
			cb_warn("reload: '%s' changed in the configuration but needs a restart to "
				"take effect; keeping the running value", d->name);
			continue;
		}
		memcpy(a, b, sz);
		cb_info("reload: '%s' updated", d->name);
		changed++;
	}
	return changed;
}
