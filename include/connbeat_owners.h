/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * connbeat_owners.h — the ABI between the owners iterator
 * (bpf/owners.bpf.c, SEC("iter/task_file")) and its reader
 * (user/kernel/owners.c): the record the program writes with
 * bpf_seq_write() for every (process, TCP socket) pair it meets in the fd
 * tables, and that userspace reads back from the iterator fd.
 *
 * Contract:
 *  - Only __u8..__u64 fields, explicit padding, no pointers, no bool; the
 *    layout is pinned with _Static_assert on both sides (as in
 *    connbeat_abi.h), so a mismatch breaks the build.
 *  - The stream is a plain sequence of records of exactly
 *    sizeof(struct cb_owner_rec) bytes, no framing in between. Each record
 *    starts with the ABI version and its own size, so the reader rejects a
 *    stream from another build before it trusts a field.
 *  - One record per (task with its own fd table, fd) that holds a TCP socket
 *    over IPv4/IPv6 in any state but LISTEN. Threads sharing their group
 *    leader's fd table are skipped by the kernel's iterator itself; the
 *    reader folds the remaining repeats (dup()ed fds, a thread with a
 *    private copy of the table) into one (pid, cookie) pair.
 *  - cookie is the socket cookie (sock_gen_cookie(): the same value as
 *    bpf_get_socket_cookie() in connbeat.bpf.c, SO_COOKIE and sock_diag's
 *    idiag_cookie). pid is the thread-group id as the reader's pid
 *    namespace numbers it (the iterator walks that namespace's tasks
 *    only), comm the group leader's: what `ss -p` beside the reader prints
 *    (from /proc/PID/stat). netns is the socket's network namespace inode
 *    (readlink /proc/PID/ns/net), family 4 or 6 as in struct cb_tuple,
 *    tcp_state the kernel's numbering (enum cb_tcp_state).
 *  - Bump CB_OWNERS_ABI_VERSION on any change of layout or meaning.
 */
#ifndef CONNBEAT_OWNERS_ABI_H
#define CONNBEAT_OWNERS_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define CB_OWNERS_ABI_VERSION 1
#define CB_OWNERS_COMM_LEN 16

struct cb_owner_rec {
	__u8 version;   /* CB_OWNERS_ABI_VERSION */
	__u8 size;      /* sizeof(struct cb_owner_rec) */
	__u8 family;    /* 4 or 6 */
	__u8 tcp_state; /* enum cb_tcp_state; never CB_TCP_LISTEN */
	__u32 pid;      /* tgid, in the reader's pid namespace */
	__u64 cookie;
	__u32 netns;    /* the socket's netns inode */
	__s32 fd;       /* the fd number in that task's table */
	__u8 comm[CB_OWNERS_COMM_LEN]; /* the group leader's comm, NUL-padded */
};

_Static_assert(sizeof(struct cb_owner_rec) == 40, "cb_owner_rec layout");
_Static_assert(__builtin_offsetof(struct cb_owner_rec, pid) == 4, "cb_owner_rec.pid");
_Static_assert(__builtin_offsetof(struct cb_owner_rec, cookie) == 8, "cb_owner_rec.cookie");
_Static_assert(__builtin_offsetof(struct cb_owner_rec, netns) == 16, "cb_owner_rec.netns");
_Static_assert(__builtin_offsetof(struct cb_owner_rec, fd) == 20, "cb_owner_rec.fd");
_Static_assert(__builtin_offsetof(struct cb_owner_rec, comm) == 24, "cb_owner_rec.comm");

#endif /* CONNBEAT_OWNERS_ABI_H */
