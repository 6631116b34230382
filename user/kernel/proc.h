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

#endif /* CONNBEAT_PROC_H */
