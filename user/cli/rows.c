// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* rows.c — see rows.h. */
#include "cli/rows.h"

#include <string.h>

#include "common/names.h"
#include "common/parse.h"
#include "kernel/cgroup.h"
#include "kernel/netns.h"
#include "kernel/record.h"

static const struct cb_col cols[] = {
	{ "State", 8, CB_COL_LEFT },	      { "TCP-State", 11, CB_COL_LEFT },
	{ "Local Address:Port", 22, CB_COL_LEFT }, { "Peer Address:Port", 22, CB_COL_LEFT },
	{ "Idle", 7, CB_COL_RIGHT },	      { "Age", 7, CB_COL_RIGHT },
	{ "Tx", 9, CB_COL_RIGHT },	      { "Rx", 9, CB_COL_RIGHT },
	{ "Retr", 5, CB_COL_RIGHT },	      { "RTT", 7, CB_COL_RIGHT },
	{ "Process", 0, CB_COL_LEFT },
};
static const struct cb_col cols_netns[] = {
	{ "State", 8, CB_COL_LEFT },	      { "TCP-State", 11, CB_COL_LEFT },
	{ "Local Address:Port", 22, CB_COL_LEFT }, { "Peer Address:Port", 22, CB_COL_LEFT },
	{ "Idle", 7, CB_COL_RIGHT },	      { "Age", 7, CB_COL_RIGHT },
	{ "Tx", 9, CB_COL_RIGHT },	      { "Rx", 9, CB_COL_RIGHT },
	{ "Retr", 5, CB_COL_RIGHT },	      { "RTT", 7, CB_COL_RIGHT },
	{ "Netns", 10, CB_COL_LEFT },	      { "Process", 0, CB_COL_LEFT },
};
#define NCOLS(a) ((int)(sizeof(a) / sizeof(a[0])))

void cb_names_init(struct cb_rowfmt *f)
{
	memset(f, 0, sizeof(*f));
}

void cb_names_free(struct cb_rowfmt *f)
{
	cb_cgroups_close(f->cgroups);
	f->cgroups = NULL;
}

const char *cb_names_netns(struct cb_rowfmt *f, uint32_t inode)
{
	unsigned int i;

	for (i = 0; i < f->nns; i++)
		if (f->ns[i].inode == inode)
			return f->ns[i].name;
	i = f->nns < CB_ROWS_NETNS_CACHE ? f->nns++ : inode % CB_ROWS_NETNS_CACHE;
	f->ns[i].inode = inode;
	if (cb_netns_name(inode, f->ns[i].name, sizeof(f->ns[i].name)))
		f->ns[i].name[0] = '\0';
	return f->ns[i].name;
}

const char *cb_names_cgroup(struct cb_rowfmt *f, uint64_t id, char *buf, size_t len)
{
	if (!id)
		return NULL;
	/* the tree is walked on the first row that needs it, not before */
	if (!f->cgroups_tried) {
		f->cgroups_tried = true;
		if (cb_cgroups_open(&f->cgroups) && f->cgroups) {
			cb_cgroups_close(f->cgroups); /* no cgroup2: every path is unknown */
			f->cgroups = NULL;
		}
	}
	if (!f->cgroups || cb_cgroups_path(f->cgroups, id, buf, len))
		return NULL;
	return buf;
}

char *cb_format_rtt(uint32_t us, char *buf, size_t len)
{
	if (!us)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%.2fms", us / 1000.0);
	else if (us < 10000)
		snprintf(buf, len, "%.1fms", us / 1000.0);
	else if (us < 1000000)
		snprintf(buf, len, "%ums", us / 1000);
	else
		snprintf(buf, len, "%.1fs", us / 1e6);
	return buf;
}

void cb_rows_begin(struct cb_rowfmt *f, FILE *out, bool json, bool header, bool show_netns)
{
	cb_names_init(f);
	f->show_netns = show_netns;
	cb_out_begin(&f->out, out, json ? CB_OUT_JSON : CB_OUT_TEXT,
		     show_netns ? cols_netns : cols, show_netns ? NCOLS(cols_netns) : NCOLS(cols),
		     header);
}

void cb_rows_end(struct cb_rowfmt *f)
{
	cb_out_end(&f->out);
	cb_names_free(f);
}

void cb_rows_print(struct cb_rowfmt *f, const struct cb_row *r)
{
	char a[CB_ADDR_STRLEN], ap[CB_ADDRPORT_LEN], idle[16], age[16], tx[16], rx[16], proc[48];
	char rtt[16], nsbuf[16], cg[CB_CGROUP_PATH_MAX];
	const char *st = cb_drain_state_name(r->state), *tst = cb_tcp_state_name(r->tcp_state);
	bool owner = r->flags & CB_ROW_OWNER_KNOWN, age_known = !(r->flags & CB_ROW_AGE_UNKNOWN);
	struct cb_out *o = &f->out;
	/* the table's cells are formatted only for the table: JSON of a
	 * million rows must not pay for them */
	bool text = o->mode == CB_OUT_TEXT;
	const char *nsname = !text || f->show_netns ? cb_names_netns(f, r->netns) : "";

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
	if (!text) {
		if (nsname[0])
			cb_out_json_str(o, "netns_name", nsname);
		else
			cb_out_json_null(o, "netns_name");
	}
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
	cb_out_u64(o, "rtt_us", r->rtt_us, text ? cb_format_rtt(r->rtt_us, rtt, sizeof(rtt)) : NULL);
	if (text && f->show_netns) {
		snprintf(nsbuf, sizeof(nsbuf), "%u", r->netns);
		cb_out_str(o, NULL, NULL, nsname[0] ? nsname : nsbuf);
	}
	cb_out_json_u64(o, "resets", r->resets);
	cb_out_json_u64(o, "segs_in", r->segs_in);
	cb_out_json_u64(o, "segs_out", r->segs_out);
	if (owner) {
		cb_out_json_u64(o, "pid", r->pid);
		if (r->comm[0])
			cb_out_json_str(o, "comm", r->comm);
		else
			cb_out_json_null(o, "comm");
		if (text)
			snprintf(proc, sizeof(proc), "%s%u/%s",
				 r->flags2 & CB_ROW2_ORPHAN ? "orphan:" : "", r->pid,
				 r->comm[0] ? r->comm : "?");
	} else {
		cb_out_json_null(o, "pid");
		cb_out_json_null(o, "comm");
		if (text)
			snprintf(proc, sizeof(proc), r->flags2 & CB_ROW2_ORPHAN ? "orphan" : "-");
	}
	if (text)
		cb_out_str(o, NULL, NULL, proc);
	if (!text) {
		const char *path = cb_names_cgroup(f, r->cgroup_id, cg, sizeof(cg));

		if (path)
			cb_out_json_str(o, "cgroup", path);
		else
			cb_out_json_null(o, "cgroup");
	}
	cb_out_json_str(o, "first_seen", age_known ? "observed" : "before connbeat");
	cb_out_json_str(o, "drained_by", r->flags & CB_ROW_OPERATOR_DRAIN ? "operator" :
					 r->state == CB_ST_DRAINING ? "tcp" : "none");
	/* the kernel keeps our half as a FIN_WAIT2 timewait socket */
	cb_out_json_bool(o, "remnant", r->flags & CB_ROW_REMNANT);
	/* no process holds it now (ss shows no users); pid/comm: its last owner */
	cb_out_json_bool(o, "orphan", r->flags2 & CB_ROW2_ORPHAN);
	if ((r->flags & CB_ROW_RST_SENT) && (r->flags & CB_ROW_RST_RECEIVED))
		cb_out_json_str(o, "rst", "both");
	else if (r->flags & (CB_ROW_RST_SENT | CB_ROW_RST_RECEIVED))
		cb_out_json_str(o, "rst", r->flags & CB_ROW_RST_SENT ? "sent" : "received");
	else
		cb_out_json_null(o, "rst");
	/* state and counters read from the kernel for this reply, or as of the
	 * last record (rows past the first 10000 of a reply) */
	cb_out_json_bool(o, "fresh", r->flags & CB_ROW_FRESH);
	cb_out_row_end(o);
}
