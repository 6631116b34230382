/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * comm.h — interned process names.
 *
 * A session keeps the 16-byte name of its owning process as a 16-bit id:
 * 2 bytes instead of 16 in a record that must stay under 128 bytes. Names
 * are few (hundreds of distinct programs on a host, not one per
 * connection) and never change once interned, so a name's storage is
 * stable for the life of the table: readers (dumps) look an id up without
 * any lock. Interning takes a mutex; it happens once per session that gets
 * an owner. When the table is full, cb_comm_intern() returns 0 ("unknown")
 * and counts it.
 */
#ifndef CONNBEAT_COMM_H
#define CONNBEAT_COMM_H

#include <stdint.h>

#define CB_COMM_MAX 65535u

struct cb_comm_table;

struct cb_comm_table *cb_comm_new(void);
void cb_comm_free(struct cb_comm_table *t);

/* The id of `name` (up to 16 bytes, NUL-padded or not), interning it if
 * new; 0 for an empty name or a full table. */
uint16_t cb_comm_intern(struct cb_comm_table *t, const char *name);

/* The NUL-terminated name of an id; "" for 0 or an unknown id. */
const char *cb_comm_name(const struct cb_comm_table *t, uint16_t id);

uint32_t cb_comm_count(const struct cb_comm_table *t);

uint64_t cb_comm_full_misses(const struct cb_comm_table *t);

#endif /* CONNBEAT_COMM_H */
