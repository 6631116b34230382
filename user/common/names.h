/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * names.h — the names of TCP states and drain states, both ways
 * (style.md #19: enum-indexed tables with designated initializers).
 *
 * Output spelling is the contract of design.md §5: TCP states as the kernel
 * and `ss` name them with underscores ("ESTABLISHED", "CLOSE_WAIT"), drain
 * states in lower case ("active", "stale", "draining", "closed").
 *
 * Input is forgiving: case-insensitive, '-' and '_' interchangeable, and a
 * few documented aliases ("estab", "synsent"...). States that are never a
 * session (LISTEN, NEW_SYN_RECV) are refused with a message that says so.
 * Parsers return 0 or -EINVAL and, on error, put a message naming the bad
 * word and the valid ones into `err`.
 */
#ifndef CONNBEAT_NAMES_H
#define CONNBEAT_NAMES_H

#include <stddef.h>

/* "ESTABLISHED", "CLOSE_WAIT", ...; NULL when unknown (0, ≥ CB_TCP_MAX_STATES). */
const char *cb_tcp_state_name(unsigned int state);

/* "active", "stale", "draining", "closed"; NULL when unknown. */
const char *cb_drain_state_name(unsigned int state);

/* A TCP state a session can be in: "established", "close-wait", "CLOSE_WAIT",
 * "estab", "time-wait", ... → enum cb_tcp_state. */
int cb_tcp_state_parse(const char *word, unsigned int *state, char *err, size_t errlen);

/* "active" | "stale" | "draining" | "closed" (any case) → enum cb_drain_state. */
int cb_drain_state_parse(const char *word, unsigned int *state, char *err, size_t errlen);

#endif /* CONNBEAT_NAMES_H */
