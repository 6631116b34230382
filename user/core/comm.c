// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* comm.c — see comm.h. */
#include "core/comm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SLOTS (2u * (CB_COMM_MAX + 1)) /* load ≤ 1/2 */

struct cb_comm_table {
	uint64_t serial; /* tells the per-thread caches one table from the next */
	pthread_mutex_t lock;
	_Atomic uint32_t count; /* ids 1..count are valid (published with release) */
	_Atomic uint64_t full_misses;
	uint16_t hash[HASH_SLOTS]; /* id, 0 = empty; under lock */
	char names[CB_COMM_MAX + 1][17];
};

struct cb_comm_table *cb_comm_new(void)
{
	/* ~1.3 MiB, mostly untouched pages until names arrive */
	static _Atomic uint64_t serials;
	struct cb_comm_table *t = calloc(1, sizeof(*t));

	if (t) {
		t->serial = atomic_fetch_add(&serials, 1) + 1;
		pthread_mutex_init(&t->lock, NULL);
	}
	return t;
}

void cb_comm_free(struct cb_comm_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static uint32_t fnv1a(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/*
 * Every OPEN with a process name interns it, so the common case — a name
 * already known — must not take the table's mutex (the ingest thread would
 * serialise on it with the reconcile thread). Interned names never change,
 * so a per-thread cache of name -> id is always right for its table.
 */
#define CACHE_SLOTS 64

struct comm_cache_ent {
	uint64_t serial; /* the table's; 0 = empty */
	char name[16];   /* NUL-padded */
	uint16_t id;
};

static __thread struct comm_cache_ent comm_cache[CACHE_SLOTS];

uint16_t cb_comm_intern(struct cb_comm_table *t, const char *name)
{
	size_t n = strnlen(name, 16);
	char key[16] = { 0 };
	struct comm_cache_ent *e;
	uint32_t h, i, id;

	if (!n)
		return 0;
	memcpy(key, name, n);
	h = fnv1a(name, n);
	e = &comm_cache[h % CACHE_SLOTS];
	if (e->serial == t->serial && memcmp(e->name, key, sizeof(key)) == 0)
		return e->id;

	pthread_mutex_lock(&t->lock);
	for (i = h % HASH_SLOTS; t->hash[i]; i = (i + 1) % HASH_SLOTS) {
		const char *c = t->names[t->hash[i]];

		if (strncmp(c, name, n) == 0 && c[n] == '\0') {
			id = t->hash[i];
			goto found;
		}
	}
	id = atomic_load_explicit(&t->count, memory_order_relaxed) + 1;
	if (id > CB_COMM_MAX) {
		pthread_mutex_unlock(&t->lock);
		atomic_fetch_add_explicit(&t->full_misses, 1, memory_order_relaxed);
		return 0;
	}
	memcpy(t->names[id], name, n);
	t->names[id][n] = '\0';
	t->hash[i] = (uint16_t)id;
	/* publish: a reader that sees the new count sees the name */
	atomic_store_explicit(&t->count, id, memory_order_release);
found:
	pthread_mutex_unlock(&t->lock);
	e->serial = t->serial;
	memcpy(e->name, key, sizeof(key));
	e->id = (uint16_t)id;
	return (uint16_t)id;
}

const char *cb_comm_name(const struct cb_comm_table *t, uint16_t id)
{
	if (!id || id > atomic_load_explicit(&((struct cb_comm_table *)t)->count,
					     memory_order_acquire))
		return "";
	return t->names[id];
}

uint32_t cb_comm_count(const struct cb_comm_table *t)
{
	return atomic_load_explicit(&((struct cb_comm_table *)t)->count, memory_order_relaxed);
}

uint64_t cb_comm_full_misses(const struct cb_comm_table *t)
{
	return atomic_load_explicit(&((struct cb_comm_table *)t)->full_misses,
				    memory_order_relaxed);
}
