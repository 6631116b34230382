/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * log.h — one logger for the daemon and the CLI.
 *
 * Messages go to stderr as "<prog>: <level>: <text>". Every message names
 * the operation, the object and the cause, and where it can, what to do next
 * (style.md #24). Warnings that can fire on a hot path go through
 * cb_log_ratelimited(), which lets at most a burst through per interval and
 * counts what it suppressed.
 */
#ifndef CONNBEAT_LOG_H
#define CONNBEAT_LOG_H

#include <stdatomic.h>
#include <stdint.h>

enum cb_log_level {
	CB_LOG_ERROR = 0,
	CB_LOG_WARN = 1,
	CB_LOG_INFO = 2,
	CB_LOG_DEBUG = 3,
};

/* Set the program name used as prefix (default "connbeat") and the highest
 * level that is printed (default CB_LOG_INFO). */
void cb_log_init(const char *prog, enum cb_log_level max_level);
/* Any thread, any time (SIGHUP's verbose). */
void cb_log_set_level(enum cb_log_level max_level);
enum cb_log_level cb_log_level(void);

void cb_log(enum cb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define cb_err(...) cb_log(CB_LOG_ERROR, __VA_ARGS__)
#define cb_warn(...) cb_log(CB_LOG_WARN, __VA_ARGS__)
#define cb_info(...) cb_log(CB_LOG_INFO, __VA_ARGS__)
#define cb_dbg(...) cb_log(CB_LOG_DEBUG, __VA_ARGS__)

/* A rate limit: at most `burst` messages per `interval_ms`. Zero-initialise
 * with CB_RATELIMIT_INIT; safe to share between threads. */
struct cb_ratelimit {
	uint32_t interval_ms;
	uint32_t burst;
	_Atomic uint64_t window_start_ms;
	_Atomic uint32_t printed;
	_Atomic uint64_t suppressed;
};
#define CB_RATELIMIT_INIT(interval, n) { .interval_ms = (interval), .burst = (n) }

/* Like cb_log() but silent once `rl` is exhausted; the next message that gets
 * through says how many were suppressed. */
void cb_log_ratelimited(struct cb_ratelimit *rl, enum cb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* CONNBEAT_LOG_H */
