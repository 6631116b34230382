// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* metrics.c — see metrics.h. HTTP by libmicrohttpd: we do not hand-write HTTP. */
#include "daemon/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connbeat_proto.h"
#include "common/log.h"
#include "common/parse.h"

/* ---- Prometheus text sink --------------------------------------------------- */

struct text_sink {
	struct cb_metrics_sink sink;
	char *buf;
	size_t len, cap;
	bool oom;
	char family[128];
};

static void __attribute__((format(printf, 2, 3))) put(struct text_sink *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += n;
			return;
		}
		size_t cap = t->cap * 2 + n;
		char *b = realloc(t->buf, cap);

		if (!b) {
			t->oom = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
}

static void text_family(struct cb_metrics_sink *s, const char *name, enum cb_metric_type type,
			const char *help)
{
	static const char *const tname[] = { "counter", "gauge", "histogram" };
	struct text_sink *t = (struct text_sink *)s;

	snprintf(t->family, sizeof(t->family), "%s", name);
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, tname[type]);
}

static void text_sample(struct cb_metrics_sink *s, const char *labels, double value)
{
	struct text_sink *t = (struct text_sink *)s;

	if (labels && *labels)
		put(t, "%s{%s} %.17g\n", t->family, labels, value);
	else
		put(t, "%s %.17g\n", t->family, value);
}

static void text_histogram(struct cb_metrics_sink *s, const char *labels,
			   const struct cb_histogram *h)
{
	struct text_sink *t = (struct text_sink *)s;
	const char *sep = labels && *labels ? "," : "";
	uint64_t cum = 0;

	if (!labels)
		labels = "";
	for (int i = 0; i < h->nbounds; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", t->family, labels, sep, h->bounds[i],
		    (unsigned long long)cum);
	}
	cum += atomic_load_explicit(&h->bucket[h->nbounds], memory_order_relaxed);
	put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", t->family, labels, sep,
	    (unsigned long long)cum);
	/* _count equals the +Inf bucket: derive it from the same reads so a
	 * scrape racing with an observation stays self-consistent */
	put(t, "%s_sum%s%s%s %.9f\n", t->family, *labels ? "{" : "", labels, *labels ? "}" : "",
	    atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
	put(t, "%s_count%s%s%s %llu\n", t->family, *labels ? "{" : "", labels, *labels ? "}" : "",
	    (unsigned long long)cum);
}

char *cb_metrics_render(cb_metrics_collect_fn collect, void *ctx, size_t *len)
{
	struct text_sink t = { .sink = { text_family, text_sample, text_histogram } };

	t.cap = 16384;
	t.buf = malloc(t.cap);
	if (!t.buf)
		return NULL;
	t.buf[0] = '\0';
	collect(&t.sink, ctx);
	if (t.oom) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}

/* ---- (name, value) sink for `connbeat stats` ------------------------------------ */

struct entry_sink {
	struct cb_metrics_sink sink;
	struct cb_stat_entry *e;
	uint32_t n, cap;
	bool oom;
	char family[CB_STAT_NAME_LEN];
};

static void entry_put(struct entry_sink *t, const char *suffix, const char *labels, double v)
{
	struct cb_stat_entry *e;
	char name[512];

	if (t->oom)
		return;
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? 2 * t->cap : 128;

		e = realloc(t->e, cap * sizeof(*e));
		if (!e) {
			t->oom = true;
			return;
		}
		t->e = e;
		t->cap = cap;
	}
	e = &t->e[t->n++];
	memset(e, 0, sizeof(*e));
	/* our names fit; cut (never overflow) one that would not */
	if (labels && *labels)
		snprintf(name, sizeof(name), "%s%s{%s}", t->family, suffix, labels);
	else
		snprintf(name, sizeof(name), "%s%s", t->family, suffix);
	memcpy(e->name, name, strnlen(name, sizeof(e->name) - 1));
	e->value = v < 0 ? 0 : (uint64_t)v;
}

static void entry_family(struct cb_metrics_sink *s, const char *name, enum cb_metric_type type,
			 const char *help)
{
	struct entry_sink *t = (struct entry_sink *)s;

	(void)type;
	(void)help;
	snprintf(t->family, sizeof(t->family), "%s", name);
}

/* Stats values are integers: a family in seconds (a duration, a time) goes
 * as <name without _seconds>_us, in microseconds, not truncated to 0. */
static void entry_sample(struct cb_metrics_sink *s, const char *labels, double value)
{
	struct entry_sink *t = (struct entry_sink *)s;
	size_t n = strlen(t->family), k = sizeof("_seconds") - 1;

	if (n > k && !strcmp(t->family + n - k, "_seconds")) {
		char keep[CB_STAT_NAME_LEN];

		memcpy(keep, t->family, sizeof(keep));
		t->family[n - k] = '\0';
		entry_put(t, "_us", labels, value * 1e6);
		memcpy(t->family, keep, sizeof(keep));
		return;
	}
	entry_put(t, "", labels, value);
}

static void entry_histogram(struct cb_metrics_sink *s, const char *labels,
			    const struct cb_histogram *h)
{
	struct entry_sink *t = (struct entry_sink *)s;

	entry_put(t, "_count", labels, (double)atomic_load_explicit(&h->count, memory_order_relaxed));
	/* the sum in microseconds: stats values are integers */
	entry_put(t, "_sum_us", labels,
		  (double)(atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1000));
}

int cb_metrics_entries(cb_metrics_collect_fn collect, void *ctx, struct cb_stat_entry **out,
		       uint32_t *count)
{
	struct entry_sink t = { .sink = { entry_family, entry_sample, entry_histogram } };

	collect(&t.sink, ctx);
	if (t.oom) {
		free(t.e);
		return -ENOMEM;
	}
	*out = t.e;
	*count = t.n;
	return 0;
}

/* ---- HTTP -------------------------------------------------------------------- */

struct cb_metrics_server {
	struct MHD_Daemon *mhd;
	int fd;
	uint16_t port;
	cb_metrics_collect_fn collect;
	void *ctx;
	_Atomic uint64_t scrapes;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *type,
			     char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	static char not_found[] = "not found: metrics are at /metrics\n";
	static char bad_method[] = "method not allowed: use GET\n";
	static char index_page[] = "connbeatd: Prometheus metrics at /metrics\n";
	struct cb_metrics_server *m = cls;
	size_t len;
	char *body;

	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", bad_method,
			     sizeof(bad_method) - 1, MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, "text/plain", index_page, sizeof(index_page) - 1,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
			     sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);
	body = cb_metrics_render(m->collect, m->ctx, &len);
	if (!body)
		return MHD_NO;
	atomic_fetch_add_explicit(&m->scrapes, 1, memory_order_relaxed);
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
		     MHD_RESPMEM_MUST_FREE);
}

/* "127.0.0.1:9477", "[::1]:9477", "0.0.0.0:9477" → sockaddr. */
int cb_metrics_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(addr, ':');
	uint16_t port;
	size_t hl;

	if (!colon || cb_parse_u64(colon + 1, 0, 65535, &(uint64_t){ 0 }))
		return -EINVAL;
	port = (uint16_t)strtoul(colon + 1, NULL, 10);
	hl = colon - addr;
	if (hl >= sizeof(host) || hl == 0)
		return -EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
	}
	return 0;
}

int cb_metrics_start(struct cb_metrics_server **out, const char *addr,
		     cb_metrics_collect_fn collect, void *ctx)
{
	struct cb_metrics_server *m;
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, err;

	err = cb_metrics_parse_addr(addr, &ss, &len);
	if (err) {
		cb_err("--metrics '%s': expected ADDR:PORT, e.g. 127.0.0.1:9477 or [::1]:9477",
		       addr);
		return err;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->collect = collect;
	m->ctx = ctx;
	/* Bind it ourselves: libmicrohttpd would only say "failed", and the
	 * operator needs to know the port is taken. */
	m->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		err = -errno;
		goto fail;
	}
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->fd, (struct sockaddr *)&ss, len) || listen(m->fd, 64)) {
		err = -errno;
		cb_err("cannot listen for metrics on %s: %s (%s)", addr, strerror(-err),
		       err == -EADDRINUSE ? "another program uses that port: pick another with "
					    "--metrics ADDR:PORT, or --metrics off" :
					    "check the address, or use --metrics off");
		goto fail;
	}
	len = sizeof(ss);
	getsockname(m->fd, (struct sockaddr *)&ss, &len);
	m->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
						  ((struct sockaddr_in6 *)&ss)->sin6_port);
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
					  (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				  0, NULL, NULL, on_request, m, MHD_OPTION_LISTEN_SOCKET, m->fd,
				  MHD_OPTION_CONNECTION_LIMIT, 16U, MHD_OPTION_CONNECTION_TIMEOUT,
				  10U, MHD_OPTION_END);
	if (!m->mhd) {
		err = -EIO;
		cb_err("cannot start the metrics HTTP server on %s (libmicrohttpd failed)", addr);
		goto fail;
	}
	*out = m;
	return 0;
fail:
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	return err;
}

void cb_metrics_stop(struct cb_metrics_server *m)
{
	if (!m)
		return;
	/* Take the listen socket back first: MHD_stop_daemon() would close
	 * it too, and we own it. */
	MHD_quiesce_daemon(m->mhd);
	MHD_stop_daemon(m->mhd);
	close(m->fd);
	free(m);
}

uint16_t cb_metrics_port(const struct cb_metrics_server *m)
{
	return m->port;
}

uint64_t cb_metrics_scrapes(const struct cb_metrics_server *m)
{
	return atomic_load_explicit(&m->scrapes, memory_order_relaxed);
}
