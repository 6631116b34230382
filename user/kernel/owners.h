/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * owners.h — which processes hold each TCP socket: the daemon's owners pass,
 * one in-kernel walk over every task's fd table (bpf/owners.bpf.c, a
 * task_file BPF iterator) instead of a readlink() per /proc/PID/fd entry.
 *
 * A row's owner is what `ss -tanp` names: the pid and comm of a process
 * holding the socket in its fd table. The programs on the tracepoints can
 * only name the task that happened to run (connect(), send, recv); a socket
 * accepted and never used, or one older than the daemon, has no such task.
 * The pass finds them all, in every network namespace (fd tables are per
 * process), and is meant for start-up and for rows of unknown owner, rate
 * limited by the caller — never for the ingest path: its cost follows the
 * number of open files on the host (see bench/owners_pass.c).
 *
 * Contract:
 *  - cb_owners_open() loads the iterator and creates its link. That needs
 *    what loading any tracing program needs (root: CAP_BPF+CAP_PERFMON or
 *    CAP_SYS_ADMIN), so call it before the daemon drops its capabilities.
 *    0 or -errno, with one log line naming what failed and what to do.
 *  - cb_owners_pass() needs no capability at all: it creates a new iterator
 *    fd from the link (BPF_ITER_CREATE checks only that the fd is a link,
 *    kernel/bpf/syscall.c bpf_iter_create(); tests/unit/test_owners.c runs
 *    passes with CAP_SYS_ADMIN+CAP_SYS_PTRACE+CAP_NET_ADMIN only, and with
 *    none). Whoever holds the handle can list every process's sockets: the
 *    link fd is close-on-exec; do not pass it on.
 *  - fn is called once per (pid, cookie) pair: a process holding a socket
 *    at several fds (dup(), a thread with a private fd table) is reported
 *    once, with the first fd met. A socket held by several processes (fork,
 *    SCM_RIGHTS) is reported once per process. LISTEN sockets are not
 *    reported; every other state is. The walk is not a snapshot: a socket
 *    opened or closed during the pass may or may not be reported.
 *  - A pass sees the processes of the caller's pid namespace (all of them
 *    on a host), pids numbered as that namespace numbers them: what `ss -p`
 *    run beside the caller prints. comm is the process's (its group
 *    leader's), NUL-terminated.
 *  - The iterator fd is read in chunks as large as the kernel hands out
 *    (its seq_file buffer: 8 pages, ~800 records, per read()); no syscall
 *    per record.
 *  - One handle, one pass at a time: not thread-safe. libbpf's print
 *    callback is set to ours only inside cb_owners_open() and restored
 *    before it returns, so it coexists with the loader's.
 */
#ifndef CONNBEAT_OWNERS_H
#define CONNBEAT_OWNERS_H

#include <stdbool.h>
#include <stdint.h>

struct cb_owner {
	uint64_t cookie; /* socket cookie: SO_COOKIE, sock_diag idiag_cookie */
	uint32_t pid;    /* tgid */
	uint32_t netns;  /* the socket's netns inode */
	int32_t fd;      /* an fd of pid's that holds it (the first met) */
	uint8_t family;  /* 4 or 6 */
	uint8_t tcp_state; /* enum cb_tcp_state; never LISTEN */
	char comm[16];   /* NUL-terminated */
};

struct cb_owners;

/* Load the iterator program and create its link (needs the privileges
 * connbeatd has at start-up: call before it drops capabilities). 0 or
 * -errno with one clear log line saying what failed and what to do (e.g.
 * a kernel without BPF iterators / task_file). `verbose` shows libbpf's
 * debug messages (the verifier log). */
int cb_owners_open(struct cb_owners **out, bool verbose);

/* Free everything. NULL is fine. */
void cb_owners_close(struct cb_owners *o);

/* One pass: every (process, TCP socket) pair now, fn once each; fn returns
 * 0 to go on, <0 to stop (the pass then returns that value). Works without
 * any capability (see the contract above). Returns the number of pairs
 * reported, or -errno (-EPROTO: a record of another layout; logged, rate
 * limited). After an error fn may have seen part of the pairs; such a pass
 * is not counted in the stats. */
typedef int (*cb_owner_fn)(const struct cb_owner *o, void *ctx);
int cb_owners_pass(struct cb_owners *o, cb_owner_fn fn, void *ctx);

/* Passes completed, and the last completed pass's duration (wall clock,
 * callbacks included) and pairs reported (for metrics). NULL pointers are
 * skipped. */
void cb_owners_stats(const struct cb_owners *o, uint64_t *passes, uint64_t *last_ns,
		     uint64_t *last_records);

#endif /* CONNBEAT_OWNERS_H */
