// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* comm.c — see comm.h. */
#include "comm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SLOTS (2u * (CB_COMM_MAX + 1)) /* load ≤ 1/2 */

struct cb_comm_table {
	pthread_mutex_t lock;
	_Atomic uint32_t count; /* ids 1..count are valid (published with release) */
	_Atomic uint64_t full_misses;
	uint16_t hash[HASH_SLOTS]; /* id, 0 = empty; under lock */
	char names[CB_COMM_MAX + 1][17];
};

struct cb_comm_table *cb_comm_new(void)
{
	/* ~1.3 MiB, mostly untouched pages until names arrive */
	struct cb_comm_table *t = calloc(1, sizeof(*t));

	if (t)
		pthread_mutex_init(&t->lock, NULL);
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

uint16_t cb_comm_intern(struct cb_comm_table *t, const char *name)
{
	size_t n = strnlen(name, 16);
	uint32_t i, id;

	if (!n)
		return 0;
	pthread_mutex_lock(&t->lock);
	for (i = fnv1a(name, n) % HASH_SLOTS; t->hash[i]; i = (i + 1) % HASH_SLOTS) {
		const char *c = t->names[t->hash[i]];

		if (strncmp(c, name, n) == 0 && c[n] == '\0') {
			id = t->hash[i];
			pthread_mutex_unlock(&t->lock);
			return (uint16_t)id;
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
	pthread_mutex_unlock(&t->lock);
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
