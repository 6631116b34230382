/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * wheel.h — a timing wheel of session indices (one per shard).
 *
 * One level of CB_WHEEL_SLOTS slots, each a tick wide (--tick, 100 ms by
 * default: 4096 slots cover ~6.8 minutes). A deadline beyond the horizon is
 * parked in the farthest slot and looked at again when that slot comes due
 * (lazy re-slotting, the kernel timer wheel's "coarsen far slots" without a
 * cascade): a session with a 2-hour timeout is touched about 17 times in
 * those 2 hours, a heartbeat never.
 *
 * Slot lists are doubly linked through cb_session_links.wnext/wprev (slab
 * indices into the shard's links array, never the records themselves), so a
 * session is unlinked in O(1) when its deadline must move earlier (e.g. it
 * closed and lingers less than its idle deadline). The first entry of a slot
 * has no predecessor: its wprev holds the slot number with CB_WHEEL_HEAD
 * set, so no extra field is needed to find the head, and wprev is 0 exactly
 * when the session is not in the wheel (cb_wheel_linked()).
 *
 * The cursor is the next tick to look at. Links are clamped to
 * [cursor, cursor + slots - 1], so nothing is ever linked behind the
 * cursor, and a clock that steps backwards simply finds nothing due. All
 * functions require the shard lock (the `__` prefix).
 */
#ifndef CONNBEAT_WHEEL_H
#define CONNBEAT_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/session.h"

#define CB_WHEEL_SLOTS 4096u
#define CB_WHEEL_HEAD 0x80000000u

struct cb_wheel {
	uint64_t cursor; /* next tick to process */
	uint64_t linked; /* sessions in the wheel */
	cb_sidx_t head[CB_WHEEL_SLOTS];
};

/* Start with the cursor at `now_tick`. */
void cb_wheel_init(struct cb_wheel *w, uint64_t now_tick);

/* Whether the session whose links these are is in a wheel. */
static inline bool cb_wheel_linked(const struct cb_session_links *l)
{
	return l->wprev != CB_SIDX_NIL;
}

/* Link links[idx] (not linked) to come due at `tick` (clamped, see above).
 * Returns the tick of the slot it went to. */
uint64_t __cb_wheel_link(struct cb_wheel *w, struct cb_session_links *links, cb_sidx_t idx,
			 uint64_t tick);

/* Unlink links[idx] (linked). */
void __cb_wheel_unlink(struct cb_wheel *w, struct cb_session_links *links, cb_sidx_t idx);

/*
 * Unlink and return the next session due at or before `now_tick`, advancing
 * the cursor over empty slots; CB_SIDX_NIL when nothing is due. Work per
 * call is bounded: at most one full revolution of empty slots is skipped
 * (then the wheel is known to hold nothing due and the cursor jumps to
 * now_tick + 1).
 */
cb_sidx_t __cb_wheel_pop_due(struct cb_wheel *w, struct cb_session_links *links,
			      uint64_t now_tick);

#endif /* CONNBEAT_WHEEL_H */
