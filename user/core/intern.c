// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* intern.c — see intern.h. */
#include "core/intern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/session_map.h" /* cb_cookie_mix(): any 64-bit key mixes the same */

#define SLOTS (2u * (CB_INTERN_MAX + 1)) /* open addressing, load ≤ 1/2 */
#define TOMBSTONE 0xffffu               /* a deleted slot: probes go on past it */

struct cb_intern {
	pthread_mutex_t lock;
	_Atomic uint64_t key[CB_INTERN_MAX + 1]; /* by id; 0 = free */
	uint32_t refs[CB_INTERN_MAX + 1];        /* under lock */
	uint16_t slot[SLOTS];                    /* id, 0 empty, TOMBSTONE deleted */
	/* free ids, oldest first: a ring of CB_INTERN_MAX entries */
	uint16_t free_ring[CB_INTERN_MAX];
	uint32_t free_head, free_n;
	uint32_t next_new; /* ids never used yet start here */
	uint32_t tombstones;
	_Atomic uint32_t count;
	_Atomic uint64_t full_misses;
};

struct cb_intern *cb_intern_new(void)
{
	struct cb_intern *t = calloc(1, sizeof(*t));

	if (t) {
		pthread_mutex_init(&t->lock, NULL);
		t->next_new = 1;
	}
	return t;
}

void cb_intern_free(struct cb_intern *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* The slot holding key's id, or (when absent) the first free slot of its
 * probe sequence in *insert_at. Under lock. */
static uint32_t probe(struct cb_intern *t, uint64_t key, uint32_t *insert_at)
{
	uint32_t i = (uint32_t)cb_cookie_mix(key) % SLOTS, first_free = SLOTS;

	for (uint32_t n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
		uint16_t id = t->slot[i];

		if (!id) {
			if (first_free == SLOTS)
				first_free = i;
			break;
		}
		if (id == TOMBSTONE) {
			if (first_free == SLOTS)
				first_free = i;
			continue;
		}
		if (atomic_load_explicit(&t->key[id], memory_order_relaxed) == key) {
			*insert_at = SLOTS;
			return i;
		}
	}
	*insert_at = first_free;
	return SLOTS;
}

/* Keys come and go for months: once deleted slots are a quarter of the
 * table, probes get long; re-insert the live ids into a clean one. O(slots),
 * once per SLOTS/4 deletions at most. Under lock. */
static void rebuild(struct cb_intern *t)
{
	uint32_t at;

	for (uint32_t i = 0; i < SLOTS; i++)
		t->slot[i] = 0;
	t->tombstones = 0;
	for (uint32_t id = 1; id <= CB_INTERN_MAX; id++) {
		uint64_t key = atomic_load_explicit(&t->key[id], memory_order_relaxed);

		if (key && probe(t, key, &at) == SLOTS)
			t->slot[at] = (uint16_t)id;
	}
}

uint16_t cb_intern_get(struct cb_intern *t, uint64_t key)
{
	uint32_t at, i;
	uint16_t id;

	if (!key)
		return 0;
	pthread_mutex_lock(&t->lock);
	i = probe(t, key, &at);
	if (i < SLOTS) {
		id = t->slot[i];
		t->refs[id]++;
		goto out;
	}
	if (t->next_new <= CB_INTERN_MAX) {
		id = (uint16_t)t->next_new++;
	} else if (t->free_n) {
		id = t->free_ring[t->free_head];
		t->free_head = (t->free_head + 1) % CB_INTERN_MAX;
		t->free_n--;
	} else {
		atomic_fetch_add_explicit(&t->full_misses, 1, memory_order_relaxed);
		id = 0;
		goto out;
	}
	t->refs[id] = 1;
	atomic_store_explicit(&t->key[id], key, memory_order_release);
	if (t->slot[at] == TOMBSTONE)
		t->tombstones--;
	t->slot[at] = id;
	atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
out:
	pthread_mutex_unlock(&t->lock);
	return id;
}

void cb_intern_put(struct cb_intern *t, uint16_t id)
{
	uint32_t at, i;
	uint64_t key;

	if (!id)
		return;
	pthread_mutex_lock(&t->lock);
	if (!t->refs[id] || --t->refs[id])
		goto out;
	key = atomic_load_explicit(&t->key[id], memory_order_relaxed);
	i = probe(t, key, &at);
	if (i < SLOTS) {
		t->slot[i] = TOMBSTONE;
		t->tombstones++;
	}
	atomic_store_explicit(&t->key[id], 0, memory_order_relaxed);
	if (t->tombstones > SLOTS / 4)
		rebuild(t);
	t->free_ring[(t->free_head + t->free_n) % CB_INTERN_MAX] = id;
	t->free_n++;
	atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
out:
	pthread_mutex_unlock(&t->lock);
}

uint16_t cb_intern_find(struct cb_intern *t, uint64_t key)
{
	uint32_t at, i;
	uint16_t id = 0;

	if (!key)
		return 0;
	pthread_mutex_lock(&t->lock);
	i = probe(t, key, &at);
	if (i < SLOTS)
		id = t->slot[i];
	pthread_mutex_unlock(&t->lock);
	return id;
}

uint64_t cb_intern_key(const struct cb_intern *t, uint16_t id)
{
	return atomic_load_explicit(&((struct cb_intern *)t)->key[id], memory_order_acquire);
}

uint32_t cb_intern_refs(struct cb_intern *t, uint16_t id)
{
	uint32_t n;

	if (!id)
		return 0;
	pthread_mutex_lock(&t->lock);
	n = t->refs[id];
	pthread_mutex_unlock(&t->lock);
	return n;
}

uint32_t cb_intern_count(const struct cb_intern *t)
{
	return atomic_load_explicit(&((struct cb_intern *)t)->count, memory_order_relaxed);
}

uint64_t cb_intern_full_misses(const struct cb_intern *t)
{
	return atomic_load_explicit(&((struct cb_intern *)t)->full_misses, memory_order_relaxed);
}
