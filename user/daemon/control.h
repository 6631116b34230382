/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * control.h — the control socket's transport: a root-only Unix stream socket
 * and one thread per connected client.
 *
 * Contract:
 *  - The socket's directory is created 0700 when missing; the socket is
 *    bound 0600. A socket file left by a dead daemon is replaced; one that
 *    still answers is refused (-EADDRINUSE): another daemon is serving it.
 *  - Every client's credentials are read with SO_PEERCRED; `serve` decides
 *    what to do with a non-root peer (it answers with an error).
 *  - A client is served on its own thread, so a slow, stuck or vanished
 *    client only ever blocks itself: sends time out after CB_CONTROL_SEND_TIMEOUT_S
 *    and the client is dropped. Clients beyond CB_CONTROL_MAX_CLIENTS are
 *    closed at once.
 *  - cb_control_stop() stops accepting, shuts every client connection down
 *    (unblocking its thread) and waits for all client threads to finish.
 */
#ifndef CONNBEAT_CONTROL_H
#define CONNBEAT_CONTROL_H

#include <stdint.h>
#include <sys/socket.h>

#define CB_CONTROL_MAX_CLIENTS 64
#define CB_CONTROL_SEND_TIMEOUT_S 10
#define CB_CONTROL_IDLE_TIMEOUT_S 60

struct cb_control;

/* Serve one connected client until it is done; called on the client's own
 * thread. The transport closes `fd` afterwards. */
typedef void (*cb_control_serve_fn)(int fd, const struct ucred *peer, void *ctx);

/* Create the socket and start accepting. 0 or -errno (the error is logged
 * with what to do about it). */
int cb_control_start(struct cb_control **out, const char *path, cb_control_serve_fn serve,
		     void *ctx);
void cb_control_stop(struct cb_control *c);

/* Clients connected right now (a gauge for the metrics). */
unsigned cb_control_clients(const struct cb_control *c);
/* Clients served since start, and clients turned away (over the limit). */
uint64_t cb_control_accepted(const struct cb_control *c);
uint64_t cb_control_rejected(const struct cb_control *c);

#endif /* CONNBEAT_CONTROL_H */
