/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * client.h — the CLI's end of the control socket: connect, send a request,
 * read reply frames. Every failure ends the program with a message that
 * says what happened and what to do, and the exit status of design.md §5:
 * 1 when the daemon cannot be reached or failed, 2 for a usage error (the
 * daemon refused a request as malformed: EINVAL).
 */
#ifndef CONNBEAT_CLIENT_H
#define CONNBEAT_CLIENT_H

#include <stdint.h>

#include "connbeat_proto.h"

#define EXIT_UNREACHABLE 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 3

/* Connect to the daemon at `path`, or exit 1 saying how to start it. */
int cb_client_connect(const char *path);
void cb_client_send(int fd, enum cb_msg_type type, const void *p, uint32_t len);
/* Read one reply frame into the shared buffer (cb_client_payload());
 * ERROR frames and protocol failures end the program. */
void cb_client_read(int fd, struct cb_frame_hdr *h);
const void *cb_client_payload(void);
/* Read an END frame's payload (after cb_client_read saw CB_MSG_END). */
void cb_client_end(const struct cb_frame_hdr *h, struct cb_end *end);
/* One value of `connbeat stats` (0 when absent). */
uint64_t cb_client_stat(int fd, const char *name);

#endif /* CONNBEAT_CLIENT_H */
