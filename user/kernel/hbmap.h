/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hbmap.h — reading the pinned `heartbeats` map from userspace.
 *
 * The map is a per-CPU LRU hash: each entry has one struct cb_heartbeat per
 * possible CPU, each written only by its CPU. cb_heartbeat_merge() folds
 * them into one view (newest times, first non-zero pid, OR of flags).
 * cb_hbmap_scan() walks the whole map with BPF_MAP_LOOKUP_BATCH in bounded
 * batches (a few thousand entries per system call), so a walk of
 * a million entries costs a few hundred system calls and constant memory.
 * Entries can come and go during a walk (the kernel keeps writing): a walk
 * may miss or repeat an entry that changed meanwhile, never crash.
 */
#ifndef CONNBEAT_HBMAP_H
#define CONNBEAT_HBMAP_H

#include <stddef.h>
#include <stdint.h>

#include "connbeat_abi.h"

/* Fold `ncpu` per-CPU slots into *out (beat_stamp zeroed). */
void cb_heartbeat_merge(const struct cb_heartbeat *slots, int ncpu, struct cb_heartbeat *out);

/* Called once per entry with the merged value; return 0 to go on, a
 * negative errno to stop the walk (returned by cb_hbmap_scan). */
typedef int (*cb_hbmap_fn)(uint64_t cookie, const struct cb_heartbeat *merged, void *ctx);

/* Walk the map behind `fd`. 0, the callback's error, or -errno. */
int cb_hbmap_scan(int fd, cb_hbmap_fn fn, void *ctx);

#endif /* CONNBEAT_HBMAP_H */
