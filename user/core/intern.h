/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * intern.h — 64-bit keys (network-namespace inodes, cgroup v2 ids) held as
 * 16-bit ids, so that a session names them in 2 bytes instead of 4 or 8
 * (the record must stay within 128 bytes: design.md §3).
 *
 * Keys are few next to sessions (the namespaces and cgroups of a host, not
 * one per connection). Each id counts the sessions that hold it: when the
 * last one lets go, the id is free again, so a host whose pods and cgroups
 * come and go for months never fills the table — freed ids are reused
 * oldest first, so an id changes meaning as late as possible. At 65534 ids
 * in use, new keys get id 0 ("unknown") and are counted.
 *
 * Reading a key by id takes no lock (a session that holds an id keeps it
 * from being reused). Getting a key already interned, and putting all but
 * the last reference, take no lock either (an atomic count: two threads
 * inserting sessions of the same netns do not serialise on it); a new key
 * and the last reference take the table's mutex.
 */
#ifndef CONNBEAT_INTERN_H
#define CONNBEAT_INTERN_H

#include <stdint.h>

/* Ids are 1..65534: 0 is "none", and 0xffff marks a deleted slot inside. */
#define CB_INTERN_MAX 65534u

struct cb_intern;

struct cb_intern *cb_intern_new(void);
void cb_intern_free(struct cb_intern *t);

/* The id of `key`, taking a reference; 0 for key 0 or a full table. */
uint16_t cb_intern_get(struct cb_intern *t, uint64_t key);
/* Drop a reference taken by cb_intern_get() (0 is ignored). */
void cb_intern_put(struct cb_intern *t, uint16_t id);
/* The id of `key` without taking a reference; 0 when it has none. */
uint16_t cb_intern_find(struct cb_intern *t, uint64_t key);
/* The key of an id; 0 for 0 or a free id. No lock. */
uint64_t cb_intern_key(const struct cb_intern *t, uint16_t id);
/* How many references an id holds (the sessions that name it). */
uint32_t cb_intern_refs(struct cb_intern *t, uint16_t id);
/* Ids in use, and keys that found the table full. */
uint32_t cb_intern_count(const struct cb_intern *t);
uint64_t cb_intern_full_misses(const struct cb_intern *t);

#endif /* CONNBEAT_INTERN_H */
