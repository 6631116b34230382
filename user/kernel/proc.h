/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * proc.h — what /proc says about processes: the kernel's view that the
 * programs do not carry (a process name for a pid they recorded).
 */
#ifndef CONNBEAT_PROC_H
#define CONNBEAT_PROC_H

#include <stdint.h>

/* The name of a live process from /proc/PID/comm into out[16], NUL-padded
 * (empty when the process is gone). 0 or -errno. */
int cb_proc_comm(uint32_t pid, char out[16]);

/*
 * A small cache of pid -> comm for one thread (not thread-safe: one per
 * reader), so that records naming a pid but not its name (connect()'s
 * process, known in softirq only by its pid) cost a /proc read once per
 * process, not once per connection. Entries live CB_COMM_CACHE_TTL_NS: a
 * pid reused by another program within that time shows the old name until
 * then (the owners pass corrects it).
 */
#define CB_COMM_CACHE_SLOTS 256
#define CB_COMM_CACHE_TTL_NS (2ull * 1000 * 1000 * 1000)

struct cb_comm_cache {
	struct {
		uint32_t pid;
		uint64_t stamp_ns;
		char comm[16];
	} slot[CB_COMM_CACHE_SLOTS];
	uint64_t reads; /* /proc reads done */
};

/* comm of pid into out[16] ("" when the process is gone). */
void cb_comm_cache_get(struct cb_comm_cache *c, uint32_t pid, uint64_t now_ns, char out[16]);

#endif /* CONNBEAT_PROC_H */
