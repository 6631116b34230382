// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* log.c — see log.h. */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static const char *log_prog = "connbeat";
/* changed on SIGHUP (verbose) while other threads log */
static _Atomic int log_max = CB_LOG_INFO;

static const char *const level_name[] = {
	[CB_LOG_ERROR] = "error",
	[CB_LOG_WARN] = "warning",
	[CB_LOG_INFO] = "info",
	[CB_LOG_DEBUG] = "debug",
};

void cb_log_init(const char *prog, enum cb_log_level max_level)
{
	log_prog = prog;
	cb_log_set_level(max_level);
}

void cb_log_set_level(enum cb_log_level max_level)
{
	atomic_store_explicit(&log_max, (int)max_level, memory_order_relaxed);
}

enum cb_log_level cb_log_level(void)
{
	return (enum cb_log_level)atomic_load_explicit(&log_max, memory_order_relaxed);
}

static void vlog(enum cb_log_level level, const char *fmt, va_list ap, uint64_t suppressed)
{
	char buf[1024];
	int n;

	/* One write per message so lines from several threads do not interleave. */
	n = snprintf(buf, sizeof(buf), "%s: %s: ", log_prog, level_name[level]);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	if ((size_t)n >= sizeof(buf) - 64)
		n = sizeof(buf) - 64;
	if (suppressed)
		n += snprintf(buf + n, sizeof(buf) - n, " (%llu similar messages suppressed)",
			      (unsigned long long)suppressed);
	fprintf(stderr, "%s\n", buf);
}

void cb_log(enum cb_log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > atomic_load_explicit(&log_max, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap, 0);
	va_end(ap);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cb_log_ratelimited(struct cb_ratelimit *rl, enum cb_log_level level, const char *fmt, ...)
{
	uint64_t now = mono_ms(), start = atomic_load_explicit(&rl->window_start_ms, memory_order_relaxed);
	uint64_t suppressed = 0;
	va_list ap;

	if ((int)level > atomic_load_explicit(&log_max, memory_order_relaxed))
		return;
	/* Benign race: two threads may both open a new window; at worst a
	 * couple of extra lines get through. */
	if (now - start >= rl->interval_ms) {
		atomic_store_explicit(&rl->window_start_ms, now, memory_order_relaxed);
		atomic_store_explicit(&rl->printed, 0, memory_order_relaxed);
		suppressed = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
	}
	if (atomic_fetch_add_explicit(&rl->printed, 1, memory_order_relaxed) >= rl->burst) {
		atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
		return;
	}
	va_start(ap, fmt);
	vlog(level, fmt, ap, suppressed);
	va_end(ap);
}
