// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* wheel.c — see wheel.h. */
#include "core/wheel.h"

#include <string.h>

#define SLOT_MASK (CB_WHEEL_SLOTS - 1)

void cb_wheel_init(struct cb_wheel *w, uint64_t now_tick)
{
	memset(w, 0, sizeof(*w));
	w->cursor = now_tick;
}

uint64_t __cb_wheel_link(struct cb_wheel *w, struct cb_session_links *links, cb_sidx_t idx,
			 uint64_t tick)
{
	struct cb_session_links *s = &links[idx];
	uint32_t slot;
	cb_sidx_t first;

	if (tick < w->cursor)
		tick = w->cursor;
	else if (tick > w->cursor + CB_WHEEL_SLOTS - 1)
		tick = w->cursor + CB_WHEEL_SLOTS - 1; /* parked: re-slotted when due */
	slot = tick & SLOT_MASK;
	first = w->head[slot];
	s->wnext = first;
	s->wprev = CB_WHEEL_HEAD | slot;
	if (first)
		links[first].wprev = idx;
	w->head[slot] = idx;
	w->linked++;
	return tick;
}

void __cb_wheel_unlink(struct cb_wheel *w, struct cb_session_links *links, cb_sidx_t idx)
{
	struct cb_session_links *s = &links[idx];

	if (s->wprev & CB_WHEEL_HEAD)
		w->head[s->wprev & SLOT_MASK] = s->wnext;
	else
		links[s->wprev].wnext = s->wnext;
	if (s->wnext)
		links[s->wnext].wprev = s->wprev;
	s->wnext = s->wprev = CB_SIDX_NIL;
	w->linked--;
}

cb_sidx_t __cb_wheel_pop_due(struct cb_wheel *w, struct cb_session_links *links,
			      uint64_t now_tick)
{
	uint32_t skipped = 0;

	if (!w->linked) {
		if (w->cursor <= now_tick)
			w->cursor = now_tick + 1;
		return CB_SIDX_NIL;
	}
	while (w->cursor <= now_tick) {
		cb_sidx_t idx = w->head[w->cursor & SLOT_MASK];

		if (idx) {
			__cb_wheel_unlink(w, links, idx);
			return idx;
		}
		if (++skipped >= CB_WHEEL_SLOTS) {
			/* A whole revolution of empty slots: everything linked
			 * lies ahead of now (only possible after the clock jumped
			 * past the horizon while parked entries were re-slotted
			 * relative to an old cursor). Nothing is due. */
			w->cursor = now_tick + 1;
			break;
		}
		w->cursor++;
	}
	return CB_SIDX_NIL;
}
