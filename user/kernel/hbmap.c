// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* hbmap.c — see hbmap.h. */
#include "kernel/hbmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define HB_BATCH 4096

void cb_heartbeat_merge(const struct cb_heartbeat *slots, int ncpu, struct cb_heartbeat *out)
{
	memset(out, 0, sizeof(*out));
	for (int c = 0; c < ncpu; c++) {
		const struct cb_heartbeat *h = &slots[c];

		if (h->last_data_ns > out->last_data_ns)
			out->last_data_ns = h->last_data_ns;
		if (h->last_seen_ns > out->last_seen_ns)
			out->last_seen_ns = h->last_seen_ns;
		out->flags |= h->flags;
		if (!out->pid)
			out->pid = h->pid;
	}
}

int cb_hbmap_scan(int fd, cb_hbmap_fn fn, void *ctx)
{
	int ncpu = libbpf_num_possible_cpus();
	/* per-CPU values come back rounded up to 8 bytes each (48 already is) */
	size_t vsz = (sizeof(struct cb_heartbeat) + 7) & ~(size_t)7;
	struct cb_hb_key *keys = NULL;
	struct cb_heartbeat *vals = NULL, merged;
	uint64_t token = 0;
	bool first = true, done = false;
	int err = 0;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	keys = calloc(HB_BATCH, sizeof(*keys));
	vals = calloc((size_t)HB_BATCH * ncpu, vsz);
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	while (!done) {
		__u32 count = HB_BATCH;
		DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);

		if (bpf_map_lookup_batch(fd, first ? NULL : &token, &token, keys, vals, &count,
					 &opts)) {
			if (errno != ENOENT) {
				err = -errno;
				goto out;
			}
			done = true; /* the last batch, possibly with entries */
		}
		first = false;
		for (__u32 i = 0; i < count; i++) {
			cb_heartbeat_merge(&vals[(size_t)i * ncpu], ncpu, &merged);
			err = fn(keys[i].cookie, &merged, ctx);
			if (err)
				goto out;
		}
	}
out:
	free(keys);
	free(vals);
	return err;
}
