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

static int dump_family(struct mnl_socket *nl, int family, uint32_t states, char *buf,
		       struct parse_ctx *pc, int save_fd)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct inet_diag_req_v2 *req;
	unsigned int seq = (unsigned int)time(NULL) + family, portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int ret;

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = states;
	req->idiag_ext = 1 << (INET_DIAG_INFO - 1);

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, DIAG_BUF);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (save_fd >= 0 && write(save_fd, buf, n) != n)
			return -EIO;
		ret = mnl_cb_run(buf, n, seq, portid, msg_cb, pc);
		if (pc->err)
			return pc->err;
		if (ret == MNL_CB_ERROR)
			return -errno;
		if (ret == MNL_CB_STOP) /* NLMSG_DONE */
			return 0;
	}
}

int cb_sock_diag_dump(uint32_t state_mask, cb_diag_fn fn, void *ctx, int save_fd)
{
	struct parse_ctx pc = { .fn = fn, .ctx = ctx };
	static const int families[] = { AF_INET, AF_INET6 };
	struct mnl_socket *nl;
	char *buf;
	int ret = 0;

	buf = malloc(DIAG_BUF);
	if (!buf)
		return -ENOMEM;
	nl = mnl_socket_open(NETLINK_SOCK_DIAG);
	if (!nl) {
		ret = -errno;
		goto out;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	for (size_t i = 0; i < 2 && !ret; i++)
		ret = dump_family(nl, families[i], state_mask, buf, &pc, save_fd);
out:
	if (nl)
		mnl_socket_close(nl);
	free(buf);
	return ret;
}

int cb_sock_diag_netns(uint32_t *inode)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
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
	out->cookie = s->cookie;
	out->ts_ns = now_ns;
	out->tuple.family = s->family;
	memcpy(out->tuple.saddr, s->saddr, 16);
	memcpy(out->tuple.daddr, s->daddr, 16);
	out->tuple.sport = s->sport;
	out->tuple.dport = s->dport;
	out->tuple.netns = netns;
	if (!s->has_info) {
		out->ctr.last_data_ns = out->ctr.last_seen_ns = now_ns;
		return;
	}
	data_ms = s->last_data_recv_ms < s->last_data_sent_ms ? s->last_data_recv_ms :
								  s->last_data_sent_ms;
	seen_ms = data_ms < s->last_ack_recv_ms ? data_ms : s->last_ack_recv_ms;
	out->ctr.last_data_ns = ago(now_ns, data_ms);
	out->ctr.last_seen_ns = ago(now_ns, seen_ms);
	out->ctr.tx_bytes = s->bytes_sent >= s->bytes_retrans ? s->bytes_sent - s->bytes_retrans : 0;
	out->ctr.rx_bytes = s->bytes_received;
	/* the peer's FIN occupies one sequence number of bytes_received */
	if (out->ctr.rx_bytes &&
	    (s->state == CB_TCP_CLOSE_WAIT || s->state == CB_TCP_LAST_ACK ||
	     s->state == CB_TCP_CLOSING || s->state == CB_TCP_TIME_WAIT))
		out->ctr.rx_bytes--;
	out->ctr.segs_in = s->segs_in;
	out->ctr.segs_out = s->segs_out;
	out->ctr.retrans = s->total_retrans;
}
