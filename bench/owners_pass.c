// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * owners_pass — what one owners pass (user/kernel/owners.c, the task_file
 * iterator) costs as the host's socket count grows.
 *
 *  1. The host as it is (no load): the fixed cost of walking every task's
 *     files.
 *  2. tests/tools/hold holding COUNT/10 loopback connections (both ends:
 *     COUNT/5 sockets), then COUNT (default 50 000: 100 000 sockets),
 *     spread over processes by hold itself (20 000 open files each at
 *     most). For each: one warm-up pass, then PASSES timed passes: median,
 *     min and max; the pairs that name hold's processes must be exactly
 *     its sockets (every end, accepted ones included, never its listeners).
 *  Baseline in the same run: what `ss -p` does instead, a walk of
 *  /proc/PID/fd with one readlink() per fd (median of 3), at both sizes.
 *
 * Expect somewhat more than linear growth: per socket the pass reads three
 * cold objects (file, struct socket, struct sock), and 10 000 sockets' worth
 * still partly fits the caches and TLB while 100 000 do not.
 *
 * Prints "bench: NAME VALUE UNIT" lines; NAME carries the socket count
 * (owners_pass_ms_100k for 100 000 sockets). Needs root; without it, says
 * so and exits 0 (benchmarks report, they do not fail). Exit 1 when hold
 * cannot open its connections or a pass misses or invents a socket.
 *
 *   build/bench/owners_pass [--count CONNECTIONS] [--passes N]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "kernel/owners.h"

#define MAX_PASSES 101
#define MAX_HOLD_PROCS 1024

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* "100k" for 100000, "1500" for 1500: the size in a figure's name. */
static const char *size_tag(long sockets, char *buf, size_t len)
{
	if (sockets >= 1000 && sockets % 1000 == 0)
		snprintf(buf, len, "%ldk", sockets / 1000);
	else
		snprintf(buf, len, "%ld", sockets);
	return buf;
}

/* ---- hold: the load ---- */

struct hold {
	pid_t pid;
	FILE *out;
	pid_t procs[MAX_HOLD_PROCS]; /* its children, which hold the sockets */
	int nprocs;
};

/* hold's children: the processes whose parent is hold (from /proc). */
static int hold_children(struct hold *h)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return -errno;
	h->nprocs = 0;
	while ((de = readdir(d)) && h->nprocs < MAX_HOLD_PROCS) {
		char path[300], buf[512], *p;
		int fd, ppid;
		ssize_t n;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
		p = strrchr(buf, ')');
		if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == h->pid)
			h->procs[h->nprocs++] = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return 0;
}

/* Start `hold --count n` and wait for its "hold: ready" line. */
static int hold_start(const char *bin, long n, struct hold *h)
{
	char count[32], line[8192];
	int p[2];

	memset(h, 0, sizeof(*h));
	snprintf(count, sizeof(count), "%ld", n);
	if (pipe(p))
		return -errno;
	h->pid = fork();
	if (h->pid < 0)
		return -errno;
	if (h->pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		execl(bin, "hold", "--count", count, "--seconds", "600", (char *)NULL);
		fprintf(stderr, "owners_pass: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	h->out = fdopen(p[0], "r");
	while (h->out && fgets(line, sizeof(line), h->out)) {
		if (!strncmp(line, "hold: ready", 11))
			return hold_children(h);
	}
	fprintf(stderr, "owners_pass: hold --count %ld ended before it was ready\n", n);
	return -EIO;
}

static void hold_stop(struct hold *h)
{
	if (h->pid > 0) {
		kill(h->pid, SIGTERM);
		waitpid(h->pid, NULL, 0);
	}
	if (h->out)
		fclose(h->out);
	h->pid = 0;
	h->out = NULL;
}

/* ---- the passes ---- */

struct tally {
	const struct hold *h;
	long total;   /* every pair of the host */
	long of_hold; /* pairs naming one of hold's processes */
};

static int on_owner(const struct cb_owner *o, void *ctx)
{
	struct tally *t = ctx;

	t->total++;
	for (int i = 0; t->h && i < t->h->nprocs; i++) {
		if ((pid_t)o->pid == t->h->procs[i]) {
			t->of_hold++;
			break;
		}
	}
	return 0;
}

struct timing {
	double med, min, max;
	struct tally last;
};

static int time_passes(struct cb_owners *o, const struct hold *h, int passes, struct timing *tm)
{
	double ms[MAX_PASSES];
	int n;

	for (int i = -1; i < passes; i++) { /* i = -1: warm-up */
		struct tally t = { .h = h };
		double t0 = now_ms();

		n = cb_owners_pass(o, on_owner, &t);
		if (n < 0) {
			fprintf(stderr, "owners_pass: pass failed: %s\n", strerror(-n));
			return n;
		}
		if (i >= 0)
			ms[i] = now_ms() - t0;
		tm->last = t;
	}
	qsort(ms, passes, sizeof(ms[0]), cmp_double);
	tm->med = ms[passes / 2];
	tm->min = ms[0];
	tm->max = ms[passes - 1];
	return 0;
}

/* ---- the baseline: ss -p's /proc walk ---- */

/* Every /proc/PID/fd entry read with readlink(), as ss -p does to map
 * socket inodes to processes. Returns the socket links seen. */
static long procfs_walk(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	long sockets = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[300], link[64];
		struct dirent *fe;
		DIR *fd_dir;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		fd_dir = opendir(path);
		if (!fd_dir)
			continue;
		while ((fe = readdir(fd_dir))) {
			ssize_t n;

			if (fe->d_name[0] == '.')
				continue;
			n = readlinkat(dirfd(fd_dir), fe->d_name, link, sizeof(link) - 1);
			if (n > 7 && !memcmp(link, "socket:", 7))
				sockets++;
		}
		closedir(fd_dir);
	}
	closedir(d);
	return sockets;
}

static double time_procfs(long *sockets)
{
	double ms[3];

	for (int i = 0; i < 3; i++) {
		double t0 = now_ms();

		*sockets = procfs_walk();
		ms[i] = now_ms() - t0;
	}
	qsort(ms, 3, sizeof(ms[0]), cmp_double);
	return ms[1];
}

/* ---- one size ---- */

struct size_result {
	long sockets;
	struct timing tm;
	double procfs_ms;
};

static int measure(struct cb_owners *o, const char *hold_bin, long conns, int passes,
		   struct size_result *r)
{
	struct hold h;
	char tag[32];
	long procfs_sockets = 0;
	int err;

	r->sockets = 2 * conns;
	size_tag(r->sockets, tag, sizeof(tag));
	err = hold_start(hold_bin, conns, &h);
	if (err) {
		hold_stop(&h);
		return err;
	}
	err = time_passes(o, &h, passes, &r->tm);
	if (!err)
		r->procfs_ms = time_procfs(&procfs_sockets);
	hold_stop(&h);
	if (err)
		return err;
	printf("# %ld connections (%ld sockets) held by %d hold processes; %ld pairs host-wide; "
	       "the /proc walk saw %ld sockets of every kind\n",
	       conns, r->sockets, h.nprocs, r->tm.last.total, procfs_sockets);
	printf("bench: owners_pass_ms_%s %.2f ms\n", tag, r->tm.med);
	printf("# owners_pass_ms_%s over %d passes: min %.2f ms, max %.2f ms\n", tag, passes,
	       r->tm.min, r->tm.max);
	printf("bench: owners_records_%s %ld records\n", tag, r->tm.last.of_hold);
	printf("bench: owners_procfs_walk_ms_%s %.2f ms\n", tag, r->procfs_ms);
	if (r->tm.med > 0)
		printf("bench: owners_procfs_vs_pass_ratio_%s %.1f x\n", tag,
		       r->procfs_ms / r->tm.med);
	fflush(stdout);
	if (r->tm.last.of_hold != r->sockets) {
		fprintf(stderr, "owners_pass: the pass named %ld sockets of hold's processes, "
				"hold holds %ld\n",
			r->tm.last.of_hold, r->sockets);
		return -EPROTO;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "passes", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *build = getenv("CONNBEAT_BUILD");
	long count = 50000;
	int passes = 5, c, err;
	struct size_result small, big;
	struct timing base;
	struct cb_owners *o;
	char hold_bin[512], tag[32], small_tag[32];

	while ((c = getopt_long(argc, argv, "n:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			count = atol(optarg);
			break;
		case 'p':
			passes = atoi(optarg);
			break;
		case 'h':
			printf("usage: %s [--count CONNECTIONS] [--passes N]\n", argv[0]);
			return 0;
		default:
			fprintf(stderr, "usage: %s [--count CONNECTIONS] [--passes N]\n", argv[0]);
			return 2;
		}
	}
	if (count < 10 || count > 1000000 || passes < 1 || passes > MAX_PASSES) {
		fprintf(stderr, "owners_pass: need --count 10..1000000 and --passes 1..%d\n",
			MAX_PASSES);
		return 2;
	}
	if (geteuid() != 0) {
		printf("# owners_pass: skipped, needs root (loads a BPF iterator)\n");
		return 0;
	}
	snprintf(hold_bin, sizeof(hold_bin), "%s/tests/tools/hold", build ? build : "build");
	if (access(hold_bin, X_OK)) {
		fprintf(stderr, "owners_pass: %s: %s (run: make bench)\n", hold_bin,
			strerror(errno));
		return 1;
	}
	cb_log_init("owners_pass", CB_LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	if (cb_owners_open(&o, false))
		return 1;

	/* 1. the host as it is */
	err = time_passes(o, NULL, passes, &base);
	if (!err) {
		printf("bench: owners_pass_ms_idle %.2f ms\n", base.med);
		printf("# owners_pass_ms_idle: %ld pairs host-wide, min %.2f ms, max %.2f ms\n",
		       base.last.total, base.min, base.max);
		fflush(stdout);
	}
	/* 2. a tenth of the load, then all of it */
	if (!err)
		err = measure(o, hold_bin, count / 10, passes, &small);
	if (!err)
		err = measure(o, hold_bin, count, passes, &big);
	if (!err && small.tm.med > 0) {
		size_tag(big.sockets, tag, sizeof(tag));
		size_tag(small.sockets, small_tag, sizeof(small_tag));
		printf("bench: owners_pass_growth_%s_vs_%s %.1f x\n", tag, small_tag,
		       big.tm.med / small.tm.med);
		printf("bench: owners_pass_ns_per_socket_%s %.0f ns\n", tag,
		       big.tm.med * 1e6 / (double)big.sockets);
	}
	cb_owners_close(o);
	return err ? 1 : 0;
}
