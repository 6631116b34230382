// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* proto.c — see proto.h. */
#include "common/proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "connbeat_abi.h" /* CB_TCP_MAX_STATES */


_Static_assert(CB_TCP_STATE_SLOTS == CB_TCP_MAX_STATES, "cb_group counts every TCP state");

static const char *const type_name[] = {
	[CB_MSG_DUMP_REQ] = "DUMP_REQ",
	[CB_MSG_STATS_REQ] = "STATS_REQ",
	[CB_MSG_DRAIN_REQ] = "DRAIN_REQ",
	[CB_MSG_DRAIN_STATUS_REQ] = "DRAIN_STATUS_REQ",
	[CB_MSG_KILL_REQ] = "KILL_REQ",
	[CB_MSG_SUMMARY_REQ] = "SUMMARY_REQ",
	[CB_MSG_EVENTS_REQ] = "EVENTS_REQ",
	[CB_MSG_ROWS] = "ROWS",
	[CB_MSG_END] = "END",
	[CB_MSG_STATS] = "STATS",
	[CB_MSG_DRAINED] = "DRAINED",
	[CB_MSG_ERROR] = "ERROR",
	[CB_MSG_GROUPS] = "GROUPS",
	[CB_MSG_EVENTS] = "EVENTS",
};

const char *cb_proto_type_name(unsigned int type)
{
	return type < sizeof(type_name) / sizeof(type_name[0]) ? type_name[type] : NULL;
}

void cb_proto_hdr(struct cb_frame_hdr *h, enum cb_msg_type type, uint32_t length)
{
	*h = (struct cb_frame_hdr){ .magic = CB_PROTO_MAGIC,
				    .version = CB_PROTO_VERSION,
				    .type = type,
				    .length = length };
}

static int fail(const char **why, const char *reason, int err)
{
	if (why)
		*why = reason;
	return err;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

int cb_proto_check_hdr(const void *buf, size_t len, struct cb_frame_hdr *out, const char **why)
{
	struct cb_frame_hdr h;

	if (len < sizeof(h))
		return fail(why, "truncated frame header", -EINVAL);
	memcpy(&h, buf, sizeof(h));
	if (h.magic != CB_PROTO_MAGIC)
		return fail(why, "not a connbeat control frame (bad magic)", -EINVAL);
	if (h.version != CB_PROTO_VERSION)
		return fail(why, "protocol version mismatch between connbeat and connbeatd",
			    -EPROTONOSUPPORT);
	if (!cb_proto_type_name(h.type))
		return fail(why, "unknown message type", -EINVAL);
	if (h.flags)
		return fail(why, "reserved header flags set", -EINVAL);
	if (h.length > CB_PROTO_MAX_PAYLOAD)
		return fail(why, "frame larger than the protocol allows", -EMSGSIZE);
	*out = h;
	return 0;
}

int cb_filter_check(const struct cb_filter *f)
{
	const char *end = memchr(f->cgroup, '\0', sizeof(f->cgroup));

	if (f->fields & ~(uint32_t)CB_FLT_ALL)
		return -EINVAL;
	if (f->state_mask >> CB_ST_COUNT || f->tcp_state_mask >> CB_TCP_MAX_STATES)
		return -EINVAL;
	if ((f->fields & CB_FLT_ADDR) && f->addr_family != 4 && f->addr_family != 6)
		return -EINVAL;
	if (f->__pad0 || f->__pad1 || !end || !all_zero(end, sizeof(f->cgroup) - (end - f->cgroup)))
		return -EINVAL;
	if ((f->fields & CB_FLT_CGROUP) && f->cgroup[0] != '/')
		return -EINVAL;
	if ((f->fields & CB_FLT_NETNS) && !f->netns)
		return -EINVAL;
	return 0;
}

int cb_proto_decode_dump_req(const void *p, size_t len, struct cb_dump_req *out,
			     const char **why)
{
	struct cb_dump_req r;

	if (len != sizeof(r))
		return fail(why, "DUMP_REQ has the wrong size", -EINVAL);
	memcpy(&r, p, sizeof(r));
	if (cb_filter_check(&r.filter))
		return fail(why, "DUMP_REQ carries an invalid filter", -EINVAL);
	if (r.mode > CB_DUMP_STALE)
		return fail(why, "DUMP_REQ: unknown mode", -EINVAL);
	if (r.idle_basis > CB_BASIS_ANY)
		return fail(why, "DUMP_REQ: unknown idle basis", -EINVAL);
	if (r.sort >= CB_SORT_COUNT)
		return fail(why, "DUMP_REQ: unknown sort key", -EINVAL);
	if (r.__pad0)
		return fail(why, "DUMP_REQ: padding not zero", -EINVAL);
	*out = r;
	return 0;
}

/* A request that is a filter followed by flags and padding. */
static int decode_filter_req(const void *p, size_t len, size_t size, void *out, const char *name,
			     const char **why)
{
	const struct cb_filter *f = p;

	if (len != size)
		return fail(why, name, -EINVAL);
	if (cb_filter_check(f) || !all_zero((const char *)p + sizeof(*f) + 1, size - sizeof(*f) - 1))
		return fail(why, "the request carries an invalid filter or non-zero padding", -EINVAL);
	memcpy(out, p, size);
	return 0;
}

int cb_proto_decode_drain_req(const void *p, size_t len, struct cb_drain_req *out,
			      const char **why)
{
	int err = decode_filter_req(p, len, sizeof(*out), out, "DRAIN_REQ has the wrong size", why);

	if (!err && out->flags & ~CB_DRAIN_KEEP)
		return fail(why, "DRAIN_REQ: unknown flags", -EINVAL);
	return err;
}

int cb_proto_decode_kill_req(const void *p, size_t len, struct cb_kill_req *out, const char **why)
{
	int err = decode_filter_req(p, len, sizeof(*out), out, "KILL_REQ has the wrong size", why);

	if (!err && out->flags & ~(CB_KILL_DRY_RUN | CB_KILL_DRAINED))
		return fail(why, "KILL_REQ: unknown flags", -EINVAL);
	return err;
}

int cb_proto_decode_summary_req(const void *p, size_t len, struct cb_summary_req *out,
				const char **why)
{
	int err = decode_filter_req(p, len, sizeof(*out), out, "SUMMARY_REQ has the wrong size",
				    why);

	if (!err && (!out->by || out->by >= CB_BY_COUNT))
		return fail(why, "SUMMARY_REQ: unknown grouping", -EINVAL);
	return err;
}

int cb_proto_decode_events_req(const void *p, size_t len, struct cb_events_req *out,
			       const char **why)
{
	if (len != sizeof(*out))
		return fail(why, "EVENTS_REQ has the wrong size", -EINVAL);
	if (cb_filter_check(p))
		return fail(why, "EVENTS_REQ carries an invalid filter", -EINVAL);
	memcpy(out, p, sizeof(*out));
	return 0;
}

int cb_proto_decode_drain_status_req(const void *p, size_t len, struct cb_drain_status_req *out,
				     const char **why)
{
	if (len != sizeof(*out))
		return fail(why, "DRAIN_STATUS_REQ has the wrong size", -EINVAL);
	memcpy(out, p, sizeof(*out));
	if (out->rows > 1 || !all_zero(out->__pad0, sizeof(out->__pad0)))
		return fail(why, "DRAIN_STATUS_REQ: bad fields", -EINVAL);
	return 0;
}

/* A counted array after an 8-byte {count, pad} header. */
static int decode_array(const void *p, size_t len, size_t elem, uint32_t max, const void **first,
			uint32_t *count, const char **why)
{
	uint32_t n, pad;

	if (len < 8)
		return fail(why, "truncated array header", -EINVAL);
	memcpy(&n, p, 4);
	memcpy(&pad, (const char *)p + 4, 4);
	if (pad)
		return fail(why, "array header padding not zero", -EINVAL);
	if (n > max || len != 8 + (size_t)n * elem)
		return fail(why, "array length does not match its count", -EINVAL);
	*first = (const char *)p + 8;
	*count = n;
	return 0;
}

/* Rows are displayed, so the fields the CLI indexes or prints as strings
 * must be sane: family, states, a terminated comm. */
static bool row_ok(const struct cb_row *r)
{
	return (r->family == 4 || r->family == 6) && r->state < CB_ST_COUNT &&
	       r->tcp_state < CB_TCP_MAX_STATES && memchr(r->comm, '\0', sizeof(r->comm));
}

int cb_proto_decode_rows(const void *p, size_t len, const struct cb_row **rows, uint32_t *count,
			 const char **why)
{
	const void *first;
	uint32_t n;
	int err = decode_array(p, len, sizeof(struct cb_row), CB_ROWS_PER_FRAME, &first, &n, why);

	if (err)
		return err;
	for (uint32_t i = 0; i < n; i++) {
		struct cb_row r;

		memcpy(&r, (const char *)first + (size_t)i * sizeof(r), sizeof(r));
		if (!row_ok(&r))
			return fail(why, "ROWS: a row has out-of-range fields", -EINVAL);
	}
	*rows = first;
	*count = n;
	return 0;
}

int cb_proto_decode_end(const void *p, size_t len, struct cb_end *out, const char **why)
{
	struct cb_end e;

	if (len != sizeof(e))
		return fail(why, "END has the wrong size", -EINVAL);
	memcpy(&e, p, sizeof(e));
	if (e.__pad0 || e.status < 0 || e.rows > e.matched)
		return fail(why, "END: inconsistent fields", -EINVAL);
	*out = e;
	return 0;
}

int cb_proto_decode_stats(const void *p, size_t len, const struct cb_stat_entry **entries,
			  uint32_t *count, const char **why)
{
	const void *first;
	uint32_t n;
	int err = decode_array(p, len, sizeof(struct cb_stat_entry),
			       CB_PROTO_MAX_PAYLOAD / sizeof(struct cb_stat_entry), &first, &n, why);

	if (err)
		return err;
	for (uint32_t i = 0; i < n; i++) {
		const struct cb_stat_entry *e =
			(const void *)((const char *)first + (size_t)i * sizeof(*e));

		if (!memchr(e->name, '\0', sizeof(e->name)) || !e->name[0])
			return fail(why, "STATS: an entry's name is not terminated", -EINVAL);
	}
	*entries = first;
	*count = n;
	return 0;
}

int cb_proto_decode_groups(const void *p, size_t len, const struct cb_group **groups,
			   uint32_t *count, const char **why)
{
	const void *first;
	uint32_t n;
	int err = decode_array(p, len, sizeof(struct cb_group), CB_GROUPS_PER_FRAME, &first, &n,
			       why);

	if (err)
		return err;
	for (uint32_t i = 0; i < n; i++) {
		struct cb_group g;

		memcpy(&g, (const char *)first + (size_t)i * sizeof(g), sizeof(g));
		if (!memchr(g.comm, '\0', sizeof(g.comm)) || (g.family && g.family != 4 &&
							    g.family != 6))
			return fail(why, "GROUPS: a group has out-of-range fields", -EINVAL);
	}
	*groups = first;
	*count = n;
	return 0;
}

int cb_proto_decode_events(const void *p, size_t len, const struct cb_event **events,
			   uint32_t *count, uint64_t *missed, const char **why)
{
	struct cb_events_hdr h;

	if (len < sizeof(h))
		return fail(why, "truncated EVENTS header", -EINVAL);
	memcpy(&h, p, sizeof(h));
	if (h.__pad0 || h.count > CB_EVENTS_PER_FRAME ||
	    len != sizeof(h) + (size_t)h.count * sizeof(struct cb_event))
		return fail(why, "EVENTS: length does not match its count", -EINVAL);
	for (uint32_t i = 0; i < h.count; i++) {
		struct cb_event e;

		memcpy(&e, (const char *)p + sizeof(h) + (size_t)i * sizeof(e), sizeof(e));
		if (e.kind < CB_EV_OPEN || e.kind > CB_EV_CLOSE || e.end > CB_END_RST_RECEIVED ||
		    e.old_state >= CB_TCP_MAX_STATES || e.new_state >= CB_TCP_MAX_STATES ||
		    !row_ok(&e.row))
			return fail(why, "EVENTS: an event has out-of-range fields", -EINVAL);
	}
	*events = (const void *)((const char *)p + sizeof(h));
	*count = h.count;
	*missed = h.missed;
	return 0;
}

int cb_proto_decode_drained(const void *p, size_t len, struct cb_drained *out, const char **why)
{
	if (len != sizeof(*out))
		return fail(why, "DRAINED has the wrong size", -EINVAL);
	memcpy(out, p, sizeof(*out));
	if (out->count > out->matched)
		return fail(why, "DRAINED: inconsistent fields", -EINVAL);
	return 0;
}

int cb_proto_decode_error(const void *p, size_t len, struct cb_error *out, const char **why)
{
	struct cb_error e;

	if (len != sizeof(e))
		return fail(why, "ERROR has the wrong size", -EINVAL);
	memcpy(&e, p, sizeof(e));
	if (e.code <= 0 || e.__pad0 || !memchr(e.message, '\0', sizeof(e.message)))
		return fail(why, "ERROR: malformed", -EINVAL);
	*out = e;
	return 0;
}

/* ---- blocking frame I/O ---- */

int cb_proto_write(int fd, enum cb_msg_type type, const void *payload, uint32_t len)
{
	struct cb_frame_hdr h;
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, len } };
	int first = 0, cnt = len ? 2 : 1;

	cb_proto_hdr(&h, type, len);
	while (first < cnt) {
		ssize_t n = writev(fd, iov + first, cnt - first);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		while (n > 0 && first < cnt) { /* skip what was written */
			size_t take = (size_t)n < iov[first].iov_len ? (size_t)n : iov[first].iov_len;

			iov[first].iov_base = (char *)iov[first].iov_base + take;
			iov[first].iov_len -= take;
			n -= take;
			if (!iov[first].iov_len)
				first++;
		}
	}
	return 0;
}

int cb_proto_write_error(int fd, int code, const char *fmt, ...)
{
	struct cb_error e = { .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	return cb_proto_write(fd, CB_MSG_ERROR, &e, sizeof(e));
}

/* Read exactly n bytes. 0, -ENODATA on EOF before the first byte when
 * eof_ok, -EPIPE on EOF midway, or -errno. */
static int read_full(int fd, void *buf, size_t n, bool eof_ok)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		if (r == 0)
			return got == 0 && eof_ok ? -ENODATA : -EPIPE;
		got += r;
	}
	return 0;
}

int cb_proto_read(int fd, struct cb_frame_hdr *hdr, void *buf, size_t cap, const char **why)
{
	unsigned char raw[sizeof(struct cb_frame_hdr)];
	int err;

	err = read_full(fd, raw, sizeof(raw), true);
	if (err)
		return err;
	err = cb_proto_check_hdr(raw, sizeof(raw), hdr, why);
	if (err)
		return err;
	if (hdr->length > cap)
		return fail(why, "frame larger than the receiver accepts", -EMSGSIZE);
	return read_full(fd, buf, hdr->length, false);
}

static uint64_t row_sort_key(unsigned int sort, const struct cb_row *r)
{
	switch (sort) {
	case CB_SORT_AGE:
		return r->age_ns;
	case CB_SORT_TX:
		return r->tx_bytes;
	case CB_SORT_RX:
		return r->rx_bytes;
	case CB_SORT_RETRANS:
		return r->retrans;
	case CB_SORT_RTT:
		return r->rtt_us;
	default:
		return r->idle_ns;
	}
}

int cb_row_sort_cmp(unsigned int sort, const struct cb_row *a, const struct cb_row *b)
{
	uint64_t ka = row_sort_key(sort, a), kb = row_sort_key(sort, b);

	if (ka != kb)
		return ka < kb ? 1 : -1;
	return a->cookie < b->cookie ? -1 : a->cookie > b->cookie;
}
