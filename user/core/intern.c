// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* intern.c — see intern.h. */
#include "core/intern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/session_map.h" /* cb_cookie_mix(): any 64-bit key mixes the same */

#define SLOTS (2u * (CB_INTERN_MAX + 1)) /* open addressing, load ≤ 1/2 */
#define TOMBSTONE 0xffffu               /* a deleted slot: probes go on past it
					 * (never an id: CB_INTERN_MAX is below) */
_Static_assert(CB_INTERN_MAX < TOMBSTONE, "an id is never the tombstone");

struct cb_intern {
	pthread_mutex_t lock;
	_Atomic uint64_t key[CB_INTERN_MAX + 1];  /* by id; 0 = free */
	_Atomic uint32_t refs[CB_INTERN_MAX + 1]; /* taken without the lock when > 0 */
	_Atomic uint16_t slot[SLOTS];             /* id, 0 empty, TOMBSTONE deleted;
						   * written under the lock */
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
 * probe sequence in *insert_at. Under lock; without it (the fast path of
 * get and find) a racing change can only make it miss, never lie: the id
 * it returns is checked against its key. */
static uint32_t probe(struct cb_intern *t, uint64_t key, uint32_t *insert_at)
{
	uint32_t i = (uint32_t)cb_cookie_mix(key) % SLOTS, first_free = SLOTS;

	for (uint32_t n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
		uint16_t id = atomic_load_explicit(&t->slot[i], memory_order_acquire);

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
		atomic_store_explicit(&t->slot[i], 0, memory_order_relaxed);
	t->tombstones = 0;
	for (uint32_t id = 1; id <= CB_INTERN_MAX; id++) {
		uint64_t key = atomic_load_explicit(&t->key[id], memory_order_relaxed);

		if (key && probe(t, key, &at) == SLOTS)
			atomic_store_explicit(&t->slot[at], (uint16_t)id, memory_order_release);
	}
}

/*
 * The fast path: a key already interned is found without the lock and its
 * count taken with a compare-and-swap that never raises it from 0 (an id at
 * 0 is being freed: the locked path decides). The key is checked again
 * after the count is taken: the id may have been freed and reused for
 * another key in between.
 */
static uint16_t get_fast(struct cb_intern *t, uint64_t key)
{
	uint32_t at, i = probe(t, key, &at), r;
	uint16_t id;

	if (i >= SLOTS)
		return 0;
	id = atomic_load_explicit(&t->slot[i], memory_order_acquire);
	if (!id || id == TOMBSTONE)
		return 0;
	r = atomic_load_explicit(&t->refs[id], memory_order_relaxed);
	while (r) {
		if (atomic_compare_exchange_weak_explicit(&t->refs[id], &r, r + 1,
							  memory_order_acquire,
							  memory_order_relaxed)) {
			if (atomic_load_explicit(&t->key[id], memory_order_acquire) == key)
				return id;
			cb_intern_put(t, id); /* someone else's now: give it back */
			return 0;
		}
	}
	return 0;
}

uint16_t cb_intern_get(struct cb_intern *t, uint64_t key)
{
	uint32_t at, i;
	uint16_t id;

	if (!key)
		return 0;
	id = get_fast(t, key);
	if (id)
		return id;
	pthread_mutex_lock(&t->lock);
	i = probe(t, key, &at);
	if (i < SLOTS) {
		/* (from 0 too: a put that took it there frees it only if it
		 * is still 0 once it holds the lock) */
		id = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
		atomic_fetch_add_explicit(&t->refs[id], 1, memory_order_relaxed);
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
	atomic_store_explicit(&t->refs[id], 1, memory_order_relaxed);
	atomic_store_explicit(&t->key[id], key, memory_order_release);
	if (atomic_load_explicit(&t->slot[at], memory_order_relaxed) == TOMBSTONE)
		t->tombstones--;
	atomic_store_explicit(&t->slot[at], id, memory_order_release);
	atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
out:
	pthread_mutex_unlock(&t->lock);
	return id;
}

void cb_intern_put(struct cb_intern *t, uint16_t id)
{
	uint32_t at, i, r;
	uint64_t key;

	if (!id)
		return;
	/* the last reference only takes the lock */
	r = atomic_load_explicit(&t->refs[id], memory_order_relaxed);
	do {
		if (!r)
			return; /* not ours to put: a bug elsewhere, ignored */
	} while (!atomic_compare_exchange_weak_explicit(&t->refs[id], &r, r - 1,
							memory_order_release,
							memory_order_relaxed));
	if (r != 1)
		return;
	pthread_mutex_lock(&t->lock);
	if (atomic_load_explicit(&t->refs[id], memory_order_acquire) ||
	    !atomic_load_explicit(&t->key[id], memory_order_relaxed))
		goto out; /* taken again meanwhile, or already freed */
	key = atomic_load_explicit(&t->key[id], memory_order_relaxed);
	i = probe(t, key, &at);
	if (i < SLOTS) {
		atomic_store_explicit(&t->slot[i], TOMBSTONE, memory_order_release);
		t->tombstones++;
	}
	atomic_store_explicit(&t->key[id], 0, memory_order_release);
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
	uint16_t id;

	if (!key)
		return 0;
	/* without the lock first; a miss (maybe in a race with a rebuild)
	 * is checked again under it */
	i = probe(t, key, &at);
	id = i < SLOTS ? atomic_load_explicit(&t->slot[i], memory_order_acquire) : 0;
	if (id && id != TOMBSTONE && atomic_load_explicit(&t->key[id], memory_order_acquire) == key)
		return id;
	pthread_mutex_lock(&t->lock);
	i = probe(t, key, &at);
	id = i < SLOTS ? atomic_load_explicit(&t->slot[i], memory_order_relaxed) : 0;
	pthread_mutex_unlock(&t->lock);
	return id;
}

uint64_t cb_intern_key(const struct cb_intern *t, uint16_t id)
{
	return atomic_load_explicit(&((struct cb_intern *)t)->key[id], memory_order_acquire);
}

uint32_t cb_intern_refs(struct cb_intern *t, uint16_t id)
{
	return id ? atomic_load_explicit(&t->refs[id], memory_order_relaxed) : 0;
}

uint32_t cb_intern_count(const struct cb_intern *t)
{
	return atomic_load_explicit(&((struct cb_intern *)t)->count, memory_order_relaxed);
}

uint64_t cb_intern_full_misses(const struct cb_intern *t)
{
	return atomic_load_explicit(&((struct cb_intern *)t)->full_misses, memory_order_relaxed);
}
