/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * caps.h — give up privileges once the daemon has loaded what needs them.
 *
 * After the BPF programs are loaded and attached, the maps are open, bpffs
 * is mounted and the sockets are bound, nothing connbeatd does needs a
 * capability: BPF map reads and program info go through file descriptors it
 * already holds (only BPF_MAP_CREATE and BPF_PROG_LOAD are gated), sock_diag
 * dumps and /proc reads are unprivileged. So every capability is dropped —
 * effective, permitted, inheritable, ambient and the bounding set — and
 * no_new_privs is set. The process keeps uid 0, so it can still read its
 * root-owned config file and remove its own socket.
 */
#ifndef CONNBEAT_CAPS_H
#define CONNBEAT_CAPS_H

/* 0 or -errno (logged). */
int cb_caps_drop_all(void);

/* Number of capabilities in the effective set right now (for tests and the
 * startup log). -errno on failure. */
int cb_caps_effective_count(void);

#endif /* CONNBEAT_CAPS_H */
