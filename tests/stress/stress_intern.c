// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * stress_intern — the intern table (user/core/intern.h) under concurrent
 * gets and puts, as the ingest and reconcile threads create and free
 * sessions of the same namespaces at once: the lock-free paths (a key
 * already interned, a reference that is not the last) against the locked
 * ones (a new key, the last reference, freeing and reusing ids).
 *
 * Four threads each hold up to HOLD references at a time over a small set
 * of keys, so that counts keep hitting 0 (the id is freed) and ids keep
 * being reused for other keys. Every id a thread holds must name its key
 * for as long as it holds it; at the end, with every reference put, the
 * table is empty. Run under ThreadSanitizer by `make check`. Prints TAP.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "core/intern.h"

#define THREADS 4
#define ROUNDS 200000
#define KEYS 6
#define HOLD 3

static struct cb_intern *table;
static atomic_ulong wrong, zero_ids;

static void *worker(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	uint64_t held_key[HOLD] = { 0 };
	uint16_t held_id[HOLD] = { 0 };

	for (int n = 0; n < ROUNDS; n++) {
		int slot;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		slot = (int)((seed >> 33) % HOLD);
		if (held_id[slot]) {
			if (cb_intern_key(table, held_id[slot]) != held_key[slot])
				atomic_fetch_add(&wrong, 1);
			cb_intern_put(table, held_id[slot]);
			held_id[slot] = 0;
		} else {
			uint64_t key = 1000 + (seed >> 40) % KEYS;
			uint16_t id = cb_intern_get(table, key);

			if (!id)
				atomic_fetch_add(&zero_ids, 1);
			else if (cb_intern_key(table, id) != key || cb_intern_find(table, key) != id)
				atomic_fetch_add(&wrong, 1);
			held_key[slot] = key;
			held_id[slot] = id;
		}
	}
	for (int i = 0; i < HOLD; i++)
		cb_intern_put(table, held_id[i]);
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS];

	table = cb_intern_new();
	if (!table) {
		printf("not ok 1 - table created\n");
		return 1;
	}
	for (uintptr_t i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)(i + 1));
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	printf("%sok 1 - every id held names its key, while held (%lu wrong)\n",
	       atomic_load(&wrong) ? "not " : "", atomic_load(&wrong));
	printf("%sok 2 - a key always gets an id (%lu got none)\n",
	       atomic_load(&zero_ids) ? "not " : "", atomic_load(&zero_ids));
	printf("%sok 3 - with every reference put the table is empty (%u ids in use)\n",
	       cb_intern_count(table) ? "not " : "", cb_intern_count(table));
	for (uint64_t k = 1000; k < 1000 + KEYS; k++)
		if (cb_intern_find(table, k)) {
			printf("not ok 4 - no key is left interned (%llu is)\n", (unsigned long long)k);
			cb_intern_free(table);
			return 1;
		}
	printf("ok 4 - no key is left interned\n");
	cb_intern_free(table);
	return 0;
}
