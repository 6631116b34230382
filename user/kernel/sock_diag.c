// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sock_diag.c — see sock_diag.h. */
#include "kernel/sock_diag.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One recvmsg: the kernel fills at most 32 KiB per dump skb; twice that
 * leaves room and keeps syscalls per socket low. */
#define DIAG_BUF (64 * 1024)

struct parse_ctx {
	cb_diag_fn fn;
	void *ctx;
	int err; /* the callback's error, to tell it from a netlink one */
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, INET_DIAG_MAX) > 0)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct parse_ctx *pc = data;
	const struct nlattr *tb[INET_DIAG_MAX + 1] = { 0 };
	const struct inet_diag_msg *m;
	struct cb_diag_sock s;
	int err;

	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m)) {
		errno = EINVAL;
		return MNL_CB_ERROR;
	}
	m = mnl_nlmsg_get_payload(nlh);
	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*m), attr_cb, tb) < 0) {
		errno = EINVAL;
		return MNL_CB_ERROR;
	}

	memset(&s, 0, sizeof(s));
	s.cookie = (uint64_t)m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
	s.family = m->idiag_family == AF_INET ? 4 : 6;
	s.state = m->idiag_state;
	s.sport = ntohs(m->id.idiag_sport);
	s.dport = ntohs(m->id.idiag_dport);
	memcpy(s.saddr, m->id.idiag_src, s.family == 4 ? 4 : 16);
	memcpy(s.daddr, m->id.idiag_dst, s.family == 4 ? 4 : 16);
	s.inode = m->idiag_inode;
	s.uid = m->idiag_uid;
	s.timewait = m->idiag_timer == 3; /* inet_twsk_diag_fill()'s mark */
	if (tb[INET_DIAG_CGROUP_ID] && mnl_attr_get_payload_len(tb[INET_DIAG_CGROUP_ID]) >= 8)
		s.cgroup_id = mnl_attr_get_u64(tb[INET_DIAG_CGROUP_ID]);
	if (tb[INET_DIAG_INFO]) {
		struct tcp_info ti;
		size_t n = mnl_attr_get_payload_len(tb[INET_DIAG_INFO]);

		/* an older kernel sends a shorter struct: the rest stays 0 */
		memset(&ti, 0, sizeof(ti));
		memcpy(&ti, mnl_attr_get_payload(tb[INET_DIAG_INFO]), n < sizeof(ti) ? n : sizeof(ti));
		s.has_info = true;
		s.bytes_received = ti.tcpi_bytes_received;
		s.bytes_sent = ti.tcpi_bytes_sent;
		s.bytes_retrans = ti.tcpi_bytes_retrans;
		s.bytes_acked = ti.tcpi_bytes_acked;
		s.segs_in = ti.tcpi_segs_in;
		s.segs_out = ti.tcpi_segs_out;
		s.total_retrans = ti.tcpi_total_retrans;
		s.rtt_us = ti.tcpi_rtt;
		s.last_data_recv_ms = ti.tcpi_last_data_recv;
		s.last_data_sent_ms = ti.tcpi_last_data_sent;
		s.last_ack_recv_ms = ti.tcpi_last_ack_recv;
	}
	err = pc->fn(&s, pc->ctx);
	if (err) {
		pc->err = err;
		return MNL_CB_STOP;
	}
	return MNL_CB_OK;
}

int cb_sock_diag_parse(const void *buf, size_t len, cb_diag_fn fn, void *ctx)
{
	struct parse_ctx pc = { .fn = fn, .ctx = ctx };
	const char *p = buf;

	/* Message by message, with our own bounds checks: a recording is
	 * untrusted input (libmnl's mnl_nlmsg_ok() trusts nlmsg_len's sign
	 * and alignment), and it holds several dumps (IPv4, then IPv6), each
	 * ending in NLMSG_DONE, where mnl_cb_run() would stop. */
	while (len > 0) {
		const struct nlmsghdr *nlh = (const void *)p;
		size_t step;

		if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len)
			return -EINVAL;
		/* The kernel pads every attribute, so its messages are 4-byte
		 * multiples; libmnl's attribute walk rounds the length up and
		 * would read past the end of an unaligned last message (found
		 * by fuzz_sock_diag). */
		if (nlh->nlmsg_len != NLMSG_ALIGN(nlh->nlmsg_len))
			return -EINVAL;
		step = NLMSG_ALIGN((size_t)nlh->nlmsg_len);
		if (step > len)
			step = len;
		if (nlh->nlmsg_type == NLMSG_ERROR)
			return -EINVAL;
		if (nlh->nlmsg_type != NLMSG_DONE && nlh->nlmsg_type != NLMSG_NOOP) {
			if (msg_cb(nlh, &pc) == MNL_CB_ERROR)
				return -EINVAL;
			if (pc.err)
				return pc.err;
		}
		p += step;
		len -= step;
	}
	return 0;
}

struct cb_diag {
	struct mnl_socket *nl;
	unsigned int portid;
	char *buf;
	/* a dump in progress: the families left, its request and seq */
	uint32_t states;
	bool info;
	int fam; /* index into families[]; 2 = done */
	unsigned int seq;
	bool active;
};

static const int families[] = { AF_INET, AF_INET6 };

int cb_diag_open(struct cb_diag **out)
{
	struct cb_diag *d = calloc(1, sizeof(*d));
	int err;

	if (!d)
		return -ENOMEM;
	d->buf = malloc(DIAG_BUF);
	d->nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!d->buf || !d->nl) {
		err = d->buf ? -errno : -ENOMEM;
		goto fail;
	}
	if (mnl_socket_bind(d->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	d->portid = mnl_socket_get_portid(d->nl);
	d->seq = (unsigned int)time(NULL);
	*out = d;
	return 0;
fail:
	cb_diag_close(d);
	return err;
}

void cb_diag_close(struct cb_diag *d)
{
	if (!d)
		return;
	if (d->nl)
		mnl_socket_close(d->nl);
	free(d->buf);
	free(d);
}

static int send_dump(struct cb_diag *d)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(d->buf);
	struct inet_diag_req_v2 *req;

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++d->seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = families[d->fam];
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = d->states;
	req->idiag_ext = d->info ? 1 << (INET_DIAG_INFO - 1) : 0;
	if (mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

/* A dump dropped half-way: its remaining replies would be read as the next
 * request's; a fresh socket is the clean way out. 0 or -errno. */
static int drop_dump(struct cb_diag *d)
{
	struct mnl_socket *nl;
	int err;

	if (!d->active)
		return 0;
	nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		mnl_socket_close(nl);
		return err;
	}
	mnl_socket_close(d->nl);
	d->nl = nl;
	d->portid = mnl_socket_get_portid(nl);
	d->active = false;
	return 0;
}

int cb_diag_dump_start(struct cb_diag *d, uint32_t state_mask, bool info)
{
	int err = drop_dump(d);

	if (err)
		return err;
	d->states = state_mask;
	d->info = info;
	d->fam = 0;
	err = send_dump(d);
	if (!err)
		d->active = true;
	return err;
}

/* Counts the sockets a read delivers, for the budget. */
struct counting {
	cb_diag_fn fn;
	void *ctx;
	size_t n;
};

static int count_one(const struct cb_diag_sock *s, void *ctx)
{
	struct counting *c = ctx;

	c->n++;
	return c->fn(s, c->ctx);
}

/* One recvmsg into d->buf, retried on EINTR: its length, or -errno. */
static ssize_t diag_recv(struct cb_diag *d)
{
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(d->nl, d->buf, DIAG_BUF);

		if (n >= 0 || errno != EINTR)
			return n >= 0 ? n : -errno;
	}
}

/* Read one recvmsg of the current dump; 1 more, 0 this family is done. */
static int read_some(struct cb_diag *d, struct parse_ctx *pc, int save_fd)
{
	ssize_t n = diag_recv(d);
	int ret;

	if (n < 0)
		return (int)n;
	if (save_fd >= 0 && write(save_fd, d->buf, n) != n)
		return -EIO;
	ret = mnl_cb_run(d->buf, n, d->seq, d->portid, msg_cb, pc);
	if (pc->err)
		return pc->err;
	if (ret == MNL_CB_ERROR)
		return -errno;
	return ret == MNL_CB_STOP ? 0 : 1; /* STOP: NLMSG_DONE */
}

static int dump_more(struct cb_diag *d, size_t budget, cb_diag_fn fn, void *ctx, int save_fd)
{
	struct counting c = { .fn = fn, .ctx = ctx };
	struct parse_ctx pc = { .fn = count_one, .ctx = &c };
	int ret;

	if (!d->active)
		return 0;
	while (c.n < budget || !budget) {
		ret = read_some(d, &pc, save_fd);
		if (ret < 0) {
			d->active = false;
			return ret;
		}
		if (ret)
			continue;
		if (++d->fam >= 2) {
			d->active = false;
			return 0;
		}
		ret = send_dump(d);
		if (ret) {
			d->active = false;
			return ret;
		}
	}
	return 1;
}

int cb_diag_dump_more(struct cb_diag *d, size_t budget, cb_diag_fn fn, void *ctx)
{
	return dump_more(d, budget ? budget : 1, fn, ctx, -1);
}

int cb_diag_dump(struct cb_diag *d, uint32_t state_mask, bool info, cb_diag_fn fn, void *ctx,
		 int save_fd)
{
	int err = cb_diag_dump_start(d, state_mask, info);

	return err ? err : dump_more(d, 0, fn, ctx, save_fd);
}

/* One exact-lookup request (inet_diag_find_one_icsk: the tuple in network
 * byte order and the cookie) appended at p. */
static size_t put_lookup(char *p, const struct cb_diag_key *k, unsigned int seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(p);
	struct inet_diag_req_v2 *req;

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = k->family == 4 ? AF_INET : AF_INET6;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = CB_DIAG_ALL_STATES;
	req->idiag_ext = 1 << (INET_DIAG_INFO - 1);
	req->id.idiag_sport = htons(k->sport);
	req->id.idiag_dport = htons(k->dport);
	memcpy(req->id.idiag_src, k->saddr, k->family == 4 ? 4 : 16);
	memcpy(req->id.idiag_dst, k->daddr, k->family == 4 ? 4 : 16);
	req->id.idiag_cookie[0] = (uint32_t)k->cookie;
	req->id.idiag_cookie[1] = (uint32_t)(k->cookie >> 32);
	return NLMSG_ALIGN(nlh->nlmsg_len);
}

/* Replies to a batch: one SOCK_DIAG_BY_FAMILY per socket found, one
 * NLMSG_ERROR per socket not found (ENOENT, or ESTALE: another cookie). */
static int lookup_reply(const struct nlmsghdr *nlh, void *data)
{
	struct parse_ctx *pc = data;

	if (nlh->nlmsg_type == NLMSG_ERROR)
		return MNL_CB_OK;
	return msg_cb(nlh, pc);
}

/* Requests per system call: each reply is ~600 bytes with tcp_info, and the
 * kernel drops replies that do not fit our receive buffer (ENOBUFS). */
#define LOOKUP_BATCH 48

int cb_diag_lookup(struct cb_diag *d, const struct cb_diag_key *keys, size_t n, cb_diag_fn fn,
		   void *ctx)
{
	struct counting c = { .fn = fn, .ctx = ctx };
	struct parse_ctx pc = { .fn = count_one, .ctx = &c };
	int err = drop_dump(d);

	if (err)
		return err;
	for (size_t i = 0; i < n;) {
		size_t len = 0, batch = n - i < LOOKUP_BATCH ? n - i : LOOKUP_BATCH, replies = 0;
		unsigned int first = d->seq + 1;

		for (size_t j = 0; j < batch; j++)
			len += put_lookup(d->buf + len, &keys[i + j], ++d->seq);
		if (mnl_socket_sendto(d->nl, d->buf, len) < 0)
			return -errno;
		/* every request gets exactly one reply message */
		while (replies < batch) {
			ssize_t got = diag_recv(d);
			const struct nlmsghdr *nlh;
			int left;

			if (got < 0)
				return (int)got;
			left = (int)got;
			for (nlh = (const void *)d->buf; mnl_nlmsg_ok(nlh, left);
			     nlh = mnl_nlmsg_next(nlh, &left)) {
				if (nlh->nlmsg_seq < first || nlh->nlmsg_seq > d->seq)
					continue; /* not ours (a stale reply) */
				replies++;
				if (lookup_reply(nlh, &pc) == MNL_CB_ERROR)
					return -EINVAL;
				if (pc.err)
					return pc.err;
			}
		}
		i += batch;
	}
	return (int)c.n;
}

int cb_diag_destroy(struct cb_diag *d, const struct cb_diag_key *keys, size_t n, int *res)
{
	int err = drop_dump(d);

	if (err)
		return err;
	for (size_t i = 0; i < n;) {
		size_t len = 0, batch = n - i < LOOKUP_BATCH ? n - i : LOOKUP_BATCH, acks = 0;
		unsigned int first = d->seq + 1;

		for (size_t j = 0; j < batch; j++) {
			struct nlmsghdr *nlh = (void *)(d->buf + len);

			len += put_lookup(d->buf + len, &keys[i + j], ++d->seq);
			nlh->nlmsg_type = SOCK_DESTROY;
			nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
			res[i + j] = -ETIMEDOUT;
		}
		if (mnl_socket_sendto(d->nl, d->buf, len) < 0)
			return -errno;
		while (acks < batch) {
			ssize_t got = diag_recv(d);
			const struct nlmsghdr *nlh;
			int left;

			if (got < 0)
				return (int)got;
			left = (int)got;
			for (nlh = (const void *)d->buf; mnl_nlmsg_ok(nlh, left);
			     nlh = mnl_nlmsg_next(nlh, &left)) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

				if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < first ||
				    nlh->nlmsg_seq > d->seq ||
				    mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
					continue;
				acks++;
				res[i + (nlh->nlmsg_seq - first)] = e->error;
				if (e->error == -EOPNOTSUPP)
					return -EOPNOTSUPP;
			}
		}
		i += batch;
	}
	return 0;
}

int cb_sock_diag_dump(uint32_t state_mask, cb_diag_fn fn, void *ctx, int save_fd)
{
	struct cb_diag *d;
	int err = cb_diag_open(&d);

	if (err)
		return err;
	err = cb_diag_dump(d, state_mask, true, fn, ctx, save_fd);
	cb_diag_close(d);
	return err;
}

int cb_sock_diag_netns(uint32_t *inode)
{
	struct stat st;

	if (stat("/proc/thread-self/ns/net", &st))
		return -errno;
	*inode = (uint32_t)st.st_ino;
	return 0;
}

static uint64_t ago(uint64_t now_ns, uint32_t ms)
{
	uint64_t d = (uint64_t)ms * 1000000ULL;

	return d < now_ns ? now_ns - d : 0;
}

void cb_sock_diag_to_record(const struct cb_diag_sock *s, uint64_t now_ns, uint32_t netns,
			    struct cb_record *out)
{
	uint32_t data_ms, seen_ms;

	memset(out, 0, sizeof(*out));
	out->kind = CB_REC_STATE;
	out->version = CB_ABI_VERSION;
	out->size = sizeof(*out);
	out->new_state = s->state;
	out->flags = CB_RF_SYNTH;
	if (s->timewait && s->state == CB_TCP_FIN_WAIT2)
		out->flags |= CB_RF_REMNANT;
	out->cookie = s->cookie;
	out->ts_ns = now_ns;
	out->tuple.family = s->family;
	memcpy(out->tuple.saddr, s->saddr, 16);
	memcpy(out->tuple.daddr, s->daddr, 16);
	out->tuple.sport = s->sport;
	out->tuple.dport = s->dport;
	out->tuple.netns = netns;
	out->cgroup_id = s->cgroup_id;
	if (!s->has_info)
		return;
	data_ms = s->last_data_recv_ms < s->last_data_sent_ms ? s->last_data_recv_ms :
								  s->last_data_sent_ms;
	seen_ms = data_ms < s->last_ack_recv_ms ? data_ms : s->last_ack_recv_ms;
	out->ctr.last_data_ns = ago(now_ns, data_ms);
	out->ctr.last_seen_ns = ago(now_ns, seen_ms);
	out->flags |= CB_RF_COUNTERS;
	out->ctr.bytes_acked = s->bytes_acked;
	out->ctr.bytes_received = s->bytes_received;
	out->ctr.segs_in = s->segs_in;
	out->ctr.segs_out = s->segs_out;
	out->ctr.total_retrans = s->total_retrans;
	out->ctr.srtt_us = s->rtt_us;
}
