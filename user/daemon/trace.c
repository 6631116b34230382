// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* trace.c — see trace.h. */
#include "daemon/trace.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "common/log.h"
#include "kernel/record.h"

/* Kernel-style typedefs must not leak into user code (style.md #10). */
#pragma GCC poison u8 u16 u32 u64

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

struct trace_ring {
	const char *name;
	FILE *out;
	uint64_t seen;
	uint64_t invalid;
	bool out_closed;
};

static struct cb_ratelimit invalid_rl = CB_RATELIMIT_INIT(1000, 5);

static int on_record(void *ctx, void *data, size_t len)
{
	struct trace_ring *t = ctx;
	char line[512];
	const char *why;
	int n;

	if (cb_record_check(data, len, &why)) {
		t->invalid++;
		cb_log_ratelimited(&invalid_rl, CB_LOG_WARN,
				   "%s ring: dropped an invalid record (%s, %zu bytes)", t->name,
				   why, len);
		return 0;
	}
	t->seen++;
	if (t->out_closed)
		return 0;
	n = cb_record_format(data, line, sizeof(line) - 1);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (fwrite(line, 1, n, t->out) != (size_t)n) {
		/* The reader went away (e.g. `| head`): stop printing, keep
		 * draining, exit normally. */
		t->out_closed = true;
		exiting = 1;
		return -EPIPE;
	}
	return 0;
}

static int install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* No SA_RESTART: the poll returns -EINTR and the loop sees `exiting`. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return -errno;
	/* A closed stdout shows up as EPIPE from fwrite, not as a signal. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int cb_trace_run(struct cb_loader *l, FILE *out)
{
	struct trace_ring ev = { .name = CB_MAP_EVENTS, .out = out };
	struct trace_ring bt = { .name = CB_MAP_BEATS, .out = out };
	uint64_t st[CB_STAT_MAX];
	struct ring_buffer *rb;
	int err;

	exiting = 0;
	err = install_signals();
	if (err) {
		cb_err("cannot install signal handlers: %s", strerror(-err));
		return err;
	}
	rb = cb_loader_rings(l, on_record, &ev, on_record, &bt);
	if (!rb)
		return -errno;
	cb_info("tracing (pin dir %s); one line per kernel record on stdout, Ctrl-C to stop",
		cb_loader_pin_dir(l));

	while (!exiting) {
		err = cb_rings_poll(rb, CB_TRACE_POLL_MS);
		if (err == -EINTR || err == -EPIPE)
			err = 0;
		if (err < 0) {
			cb_err("reading the rings failed: %s", strerror(-err));
			break;
		}
		if (err > 0 && fflush(out) == EOF && !ev.out_closed) {
			ev.out_closed = bt.out_closed = true;
			exiting = 1;
		}
		err = 0;
	}

	/* Stop the producers first, so that the drain terminates; then read
	 * what they left. */
	cb_loader_detach(l);
	ev.out_closed = bt.out_closed = ev.out_closed || bt.out_closed;
	while (ring_buffer__consume(rb) > 0)
		;
	if (!ev.out_closed)
		fflush(out);

	if (cb_loader_stats(l, st) == 0) {
		fprintf(stderr,
			"connbeatd: trace: read: events %llu, beats %llu, invalid %llu; "
			"since the maps were created: events emitted %llu dropped %llu, "
			"beats emitted %llu dropped %llu, "
			"heartbeats seeded %llu insert failures %llu\n",
			(unsigned long long)ev.seen, (unsigned long long)bt.seen,
			(unsigned long long)(ev.invalid + bt.invalid),
			(unsigned long long)st[CB_STAT_EVENTS_EMITTED],
			(unsigned long long)st[CB_STAT_EVENTS_DROPPED],
			(unsigned long long)st[CB_STAT_BEATS_EMITTED],
			(unsigned long long)st[CB_STAT_BEATS_DROPPED],
			(unsigned long long)st[CB_STAT_MAP_SEEDED],
			(unsigned long long)st[CB_STAT_MAP_UPDATE_FAILED]);
	}
	return err;
}
