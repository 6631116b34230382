/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * caps.h — give up privileges once the daemon has loaded what needs them.
 *
 * After the BPF programs are loaded and attached, the maps are open, bpffs
 * is mounted and the sockets are bound, connbeatd keeps only what its work
 * in every network namespace needs (design.md §7, connbeatd(8)):
 *   CAP_SYS_ADMIN   setns(2) into a network namespace, to make a sock_diag
 *                   socket there (kernel/netns.h): sock_diag answers for the
 *                   netns its socket was made in
 *   CAP_SYS_PTRACE  open and read /proc/PID/ns/net of processes of any uid,
 *                   to reach their namespaces
 *   CAP_NET_ADMIN   sock_diag's SOCK_DESTROY (`connbeat kill`), which the
 *                   kernel checks in the socket's own netns
 * Every other capability is dropped — effective, permitted, inheritable,
 * ambient and the bounding set — and no_new_privs is set. BPF map reads,
 * ring reads and iterator reads go through file descriptors it already
 * holds (only BPF_MAP_CREATE, BPF_PROG_LOAD and link creation are gated).
 * The process keeps uid 0, so it can still read its root-owned config file
 * and remove its own socket.
 */
#ifndef CONNBEAT_CAPS_H
#define CONNBEAT_CAPS_H

#include <linux/capability.h>

/* The capabilities connbeatd keeps (the list above), as a mask over
 * capability numbers. */
#define CB_CAPS_KEPT ((1ull << CAP_SYS_ADMIN) | (1ull << CAP_SYS_PTRACE) | (1ull << CAP_NET_ADMIN))

/* Keep only the capabilities in `keep` (a mask of capability numbers below
 * 64); 0 or -errno (logged). cb_caps_drop_all() keeps none. */
int cb_caps_keep_only(unsigned long long keep);
int cb_caps_drop_all(void);

/* Number of capabilities in the effective set right now (for tests and the
 * startup log). -errno on failure. */
int cb_caps_effective_count(void);
/* The effective set as a mask (capabilities below 64). */
long long cb_caps_effective_mask(void);

#endif /* CONNBEAT_CAPS_H */
