// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* record.c — see record.h. Pure: no I/O, no allocation. */
#include "kernel/record.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/names.h"
#include "common/parse.h"

/* Kernel-style typedefs must not leak into user code (style.md #10). */
#pragma GCC poison u8 u16 u32 u64

static const char *const kind_name[CB_REC_KIND_MAX] = {
	[CB_REC_OPEN] = "OPEN",   [CB_REC_STATE] = "STATE", [CB_REC_CLOSE] = "CLOSE",
	[CB_REC_RESET] = "RESET", [CB_REC_BEAT] = "BEAT",
};


static const struct {
	unsigned int bit;
	const char *name;
} flag_name[] = {
	{ CB_RF_PROCESS_CTX, "proc" }, { CB_RF_FROM_DESTROY, "destroy" },
	{ CB_RF_RST_SENT, "rst_sent" }, { CB_RF_RST_RECEIVED, "rst_received" },
	{ CB_RF_DATA, "data" },        { CB_RF_SYNTH, "synth" },
	{ CB_RF_REMNANT, "remnant" },  { CB_RF_OWNER_PID, "owner" },
	{ CB_RF_COUNTERS, "counters" }, { CB_RF_PASSIVE, "passive" },
	{ CB_RF_SEEDED, "seeded" },
};

const char *cb_record_kind_name(unsigned int kind)
{
	return kind < CB_REC_KIND_MAX ? kind_name[kind] : NULL;
}


int cb_record_check(const void *data, size_t len, const char **why)
{
	struct cb_record r;
	const char *w = NULL;

	/* Length first: nothing is read before we know the bytes exist. The
	 * ring hands us exactly what the program reserved (no rounding). */
	if (!data || len < sizeof(r))
		w = "short record";
	else if (len > sizeof(r))
		w = "oversized record";
	if (w)
		goto out;
	memcpy(&r, data, sizeof(r)); /* the input may be unaligned */
	/* Then the version: a record of another ABI means nothing else. */
	if (r.version != CB_ABI_VERSION)
		w = "wrong ABI version";
	else if (r.size != sizeof(r))
		w = "bad size field";
	else if (!cb_record_kind_name(r.kind))
		w = "unknown kind";
	else if (r.tuple.family != 4 && r.tuple.family != 6)
		w = "bad address family";
	else if (!cb_tcp_state_name(r.new_state) ||
		 (r.old_state && !cb_tcp_state_name(r.old_state)))
		w = "bad TCP state";
	else if (r.flags & ~CB_RF_ALL)
		w = "unknown flags";
	else if (!r.cookie) /* sock_gen_cookie() starts at 1; 0 means "free" to the map */
		w = "zero cookie";
out:
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

char *cb_format_addrport(unsigned int family, const uint8_t addr[16], uint16_t port, char *buf,
			 size_t len)
{
	char a[CB_ADDR_STRLEN];

	cb_format_addr(family, addr, a, sizeof(a));
	snprintf(buf, len, family == 4 ? "%s:%u" : "[%s]:%u", a, port);
	return buf;
}

/* Append to buf[*pos..len) like snprintf, tracking the wanted length. */
#define APPEND(...)                                                                      \
	do {                                                                             \
		size_t room_ = *pos < len ? len - *pos : 0;                              \
		int n_ = snprintf(room_ ? buf + *pos : NULL, room_, __VA_ARGS__);        \
		if (n_ > 0)                                                              \
			*pos += (size_t)n_;                                              \
	} while (0)

static void append_comm(const struct cb_record *r, char *buf, size_t len, size_t *pos)
{
	char comm[CB_COMM_LEN + 1];
	size_t i;

	for (i = 0; i < CB_COMM_LEN && r->comm[i]; i++) {
		unsigned char c = (unsigned char)r->comm[i];

		comm[i] = (c <= ' ' || c >= 0x7f || c == '=') ? '?' : (char)c;
	}
	comm[i] = '\0';
	APPEND(" pid=%u comm=%s", r->pid, i ? comm : "?");
}

int cb_record_format(const struct cb_record *r, char *buf, size_t len)
{
	char src[CB_ADDRPORT_LEN], dst[CB_ADDRPORT_LEN];
	const char *old = cb_tcp_state_name(r->old_state);
	const char *kind = cb_record_kind_name(r->kind);
	size_t p = 0, *pos = &p;
	bool first = true;

	if (len)
		buf[0] = '\0';
	APPEND("%llu.%09llu %s cookie=%llu %s > %s %s>%s netns=%u",
	       (unsigned long long)(r->ts_ns / 1000000000ull),
	       (unsigned long long)(r->ts_ns % 1000000000ull), kind ? kind : "?",
	       (unsigned long long)r->cookie,
	       cb_format_addrport(r->tuple.family, r->tuple.saddr, r->tuple.sport, src, sizeof(src)),
	       cb_format_addrport(r->tuple.family, r->tuple.daddr, r->tuple.dport, dst, sizeof(dst)),
	       old ? old : "-", cb_tcp_state_name(r->new_state) ?: "?", r->tuple.netns);
	if (r->flags & CB_RF_COUNTERS)
		APPEND(" tx=%llu rx=%llu segs_in=%u segs_out=%u retrans=%u rtt_us=%u",
		       (unsigned long long)r->ctr.bytes_acked,
		       (unsigned long long)r->ctr.bytes_received, r->ctr.segs_in, r->ctr.segs_out,
		       r->ctr.total_retrans, r->ctr.srtt_us);
	if (r->cgroup_id)
		APPEND(" cgroup=%llu", (unsigned long long)r->cgroup_id);
	if (r->flags & CB_RF_PROCESS_CTX)
		append_comm(r, buf, len, pos);
	else if (r->flags & CB_RF_OWNER_PID)
		APPEND(" pid=%u", r->pid);
	for (size_t i = 0; i < sizeof(flag_name) / sizeof(flag_name[0]); i++) {
		if (!(r->flags & flag_name[i].bit))
			continue;
		APPEND("%s%s", first ? " flags=" : ",", flag_name[i].name);
		first = false;
	}
	if (len && p >= len)
		buf[len - 1] = '\0';
	return (int)p;
}
