/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * loader.h — load, pin and attach connbeat's BPF programs
 * (bpf/connbeat.bpf.c), and hand the daemon what it needs to read them: the
 * two rings behind one epoll fd, the map fds, the summed stats and the
 * per-program run statistics.
 *
 * Contract:
 *  - cb_loader_open() does every check and set-up step in order and stops at
 *    the first failure with one error message that names the cause and what
 *    to do: privileges (root / CAP_BPF+CAP_PERFMON), kernel BTF, bpffs
 *    (mounted on /sys/fs/bpf when it is not), the pin directory (created,
 *    then locked with flock(2) so that a second daemon on it is refused),
 *    every tracepoint the programs need (named when missing), pinned maps
 *    whose layout or size no longer match (logged, unpinned, recreated),
 *    then load. It returns 0 or a negative errno; the caller maps that to
 *    its exit code (all of these are runtime failures: 1).
 *  - Nothing is attached until cb_loader_attach(). cb_loader_detach() stops
 *    new records (so that a final drain of the rings terminates);
 *    cb_loader_close() also frees everything and releases the lock. The
 *    pinned maps stay pinned: a restarted daemon reuses them.
 *  - libbpf's own messages go through log.h: warnings always, debug lines
 *    only with opts.verbose.
 *  - One loader per process (libbpf's print callback is global). Not
 *    thread-safe; the ring_buffer it returns is for one consumer thread.
 */
#ifndef CONNBEAT_LOADER_H
#define CONNBEAT_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bpf/libbpf.h>

#include "connbeat_abi.h"

#define CB_DEFAULT_PIN_DIR "/sys/fs/bpf/connbeat"
#define CB_DEFAULT_MAX_SESSIONS 262144u
#define CB_DEFAULT_BEAT_INTERVAL_NS 1000000000ull
/* events must lose nothing at full churn: ~55k records of 152 B (header
 * included), about 5k connections' worth of lifecycle in flight. */
#define CB_DEFAULT_EVENTS_RING_BYTES (8u << 20)
#define CB_DEFAULT_BEATS_RING_BYTES (4u << 20)
#define CB_RING_MAX_BYTES (1u << 30)
/* Upper bound of --max-sessions: the kernel preallocates the whole map. */
#define CB_MAX_SESSIONS_LIMIT (1u << 26)

struct cb_loader_opts {
	const char *pin_dir;         /* NULL: CB_DEFAULT_PIN_DIR */
	uint32_t max_sessions;       /* heartbeats max_entries; 0: default */
	uint64_t beat_interval_ns;   /* 0: default (1 s); below ~1 ms: every event */
	uint32_t events_ring_bytes;  /* 0: default; see cb_loader_check_ring_size() */
	uint32_t beats_ring_bytes;   /* 0: default */
	bool verbose;                /* show libbpf's debug messages */
};

/* The pinned maps, for cb_loader_map_fd(). */
enum cb_loader_map {
	CB_LMAP_HEARTBEATS = 0,
	CB_LMAP_EVENTS = 1,
	CB_LMAP_BEATS = 2,
	CB_LMAP_STATS = 3,
	CB_LMAP_LOST = 4,
	CB_LMAP_COUNT = 5,
};

/* Run statistics of one program (bpf_prog_info). run_cnt and run_time_ns
 * only grow while BPF stats are enabled (kernel.bpf_stats_enabled=1, or
 * an fd from bpf_enable_stats(BPF_STATS_RUN_TIME) held open). */
struct cb_prog_stats {
	char name[16];
	int fd;
	uint64_t run_cnt;
	uint64_t run_time_ns;
	uint64_t recursion_misses; /* runs skipped: the program was already running on that CPU */
};
#define CB_LOADER_MAX_PROGS 16

struct cb_loader;

/* 0 when `bytes` can size a ring buffer (a power of two, a multiple of the
 * page size, at most CB_RING_MAX_BYTES); -EINVAL otherwise, with the reason
 * in `why` when it is not NULL. */
int cb_loader_check_ring_size(uint64_t bytes, const char **why);

/* Check, mount, lock, open, size and load (see the contract above). */
int cb_loader_open(const struct cb_loader_opts *opts, struct cb_loader **out);

/* Attach every program. 0 or -errno (logged). */
int cb_loader_attach(struct cb_loader *l);

/* Detach every program; records already in the rings stay readable. */
void cb_loader_detach(struct cb_loader *l);

/* Detach, free, unlock. Pinned maps stay. NULL is fine. */
void cb_loader_close(struct cb_loader *l);

/* The `events` and `beats` rings in one struct ring_buffer (one epoll fd:
 * ring_buffer__epoll_fd()), created on the first call with these callbacks
 * and owned by the loader; later calls return the same object. NULL with
 * errno on failure. A callback returning < 0 stops that consumption pass. */
struct ring_buffer *cb_loader_rings(struct cb_loader *l, ring_buffer_sample_fn on_event,
				    void *event_ctx, ring_buffer_sample_fn on_beat, void *beat_ctx);

/* Wait up to timeout_ms for a wakeup, then consume every ring, woken or
 * not; returns the number of records consumed or -errno (-EINTR on a
 * signal). Use this, not ring_buffer__poll() alone: the programs wake the
 * reader only when a ring is a quarter full, and ring_buffer__poll() reads
 * only the rings epoll reported, so a quiet ring would wait until then. */
int cb_rings_poll(struct ring_buffer *rb, int timeout_ms);

/* The fd of a pinned map, owned by the loader. -EINVAL for a bad index. */
int cb_loader_map_fd(const struct cb_loader *l, enum cb_loader_map m);

/* Report every TCP state change of an open connection (someone streams
 * events) or only those the daemon needs (the default): the programs'
 * all_states switch, flipped at run time. */
void cb_loader_set_all_states(struct cb_loader *l, bool on);

/* The pin directory in use. */
const char *cb_loader_pin_dir(const struct cb_loader *l);

/* The configuration actually loaded (defaults filled in). */
const struct cb_loader_opts *cb_loader_config(const struct cb_loader *l);

/* Sum the per-CPU `stats` array into out[CB_STAT_MAX]. 0 or -errno.
 * The _fd variant reads any pinned stats map (e.g. bpf_obj_get()). */
int cb_loader_stats(const struct cb_loader *l, uint64_t out[CB_STAT_MAX]);
int cb_stats_read_fd(int stats_fd, uint64_t out[CB_STAT_MAX]);

/* Merge every CPU's slot of one heartbeats entry (newest times, first
 * non-zero pid, OR of flags; beat_stamp is zeroed).
 * 0, -ENOENT when there is no entry, or -errno. */
int cb_heartbeat_read_fd(int heartbeats_fd, uint64_t cookie, struct cb_heartbeat *out);

/* Fill out[] with each program's statistics; returns how many (≤ max) or
 * -errno. */
int cb_loader_prog_stats(const struct cb_loader *l, struct cb_prog_stats *out, size_t max);

/* libbpf_num_possible_cpus(), cached; ≥ 1. */
int cb_loader_nr_cpus(void);

/* The tracepoints (tp_btf names, e.g. "inet_sock_set_state") that
 * `vmlinux_btf` lacks among names[0..n): their indices are written to
 * missing[] (room for n); returns how many. Exposed for tests. */
struct btf;
size_t cb_loader_missing_tracepoints(const struct btf *vmlinux_btf, const char *const *names,
				     size_t n, size_t *missing);

#endif /* CONNBEAT_LOADER_H */
