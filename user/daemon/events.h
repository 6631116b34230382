/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * events.h — `connbeat events`: a live stream of lifecycle events (open,
 * each TCP state change, close with duration, bytes, segments,
 * retransmits, RTT, owner, cgroup and how it ended) to any number of
 * clients.
 *
 * The ingest thread publishes every applied batch (cb_events_publish, its
 * after-apply hook), and the reconciler the closes it applies (a remnant's
 * end, a close the rings lost: the kernel reports neither); each
 * subscriber has a ring of its own that the publishers fill, one at a time
 * under the broker's lock, and the client's thread drains. Ingest never
 * waits: a full ring counts the event as missed for that client, and the
 * next frame tells it how many ("missed N events"). With no subscriber,
 * publishing costs one atomic load per batch. While someone subscribes, the
 * programs report every state change (the loader's all_states switch), not
 * only the first step of a close. A session's life streams at most one
 * close, and nothing after it: the reconciler's close of a socket whose
 * CLOSE was still in a ring and the kernel's own are one event.
 *
 * How it ended: RST received (a RESET record came first), RST sent (an
 * abort: CLOSE straight from ESTABLISHED or CLOSE_WAIT, or a RESET we
 * sent), else FIN.
 */
#ifndef CONNBEAT_EVENTS_H
#define CONNBEAT_EVENTS_H

#include <stdint.h>

#include "connbeat_abi.h"
#include "connbeat_proto.h"

#define CB_EVENTS_MAX_SUBSCRIBERS 16
#define CB_EVENTS_RING 16384 /* events a subscriber may fall behind by (2.6 MiB) */

struct cb_daemon;
struct cb_events;

int cb_events_new(struct cb_events **out, struct cb_daemon *d);
void cb_events_free(struct cb_events *b);

/* The ingest hook (cb_ingest_hook), and the reconciler's on_close: records
 * just applied. */
void cb_events_publish(struct cb_events *b, const struct cb_record *recs, unsigned int n);

/* Serve one subscriber on its connection until it hangs up. */
int cb_events_serve(struct cb_events *b, int fd, const struct cb_events_req *req);

struct cb_events_stats {
	uint64_t subscribers;
	uint64_t delivered;
	uint64_t missed;
};
void cb_events_stats(const struct cb_events *b, struct cb_events_stats *out);

#endif /* CONNBEAT_EVENTS_H */
