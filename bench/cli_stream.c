// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cli_stream — `connbeat list --json` over 1M sessions: wall time and the
 * CLI's peak memory, against the same at 10k sessions.
 *
 * A stand-in daemon on a private Unix socket answers one DUMP_REQ with N
 * rows (CB_ROWS_PER_FRAME per frame, built once: the server costs next to
 * nothing; a STATS before it with no entries), and $CONNBEAT_BUILD/connbeat
 * (default build/connbeat) is run against it with its output to /dev/null.
 * Prints
 *   bench: list_json_1M_s S s           (target ≤ 1 s)
 *   bench: cli_maxrss_1M_vs_10k_ratio R x   (constant memory: ≈ 1)
 * Needs no root and no BPF.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proto.h"

#pragma GCC poison u8 u16 u32 u64

struct server {
	int lfd;
	uint64_t rows;
};

static struct {
	struct cb_rows_hdr hdr;
	struct cb_row row[CB_ROWS_PER_FRAME];
} frame;

static void *serve(void *arg)
{
	struct server *s = arg;
	struct cb_frame_hdr h;
	char req[sizeof(struct cb_dump_req)];
	int fd = accept(s->lfd, NULL, NULL);
	struct cb_end end = { .rows = s->rows, .matched = s->rows };
	struct cb_stats_hdr none = { 0 };

	/* a STATS first, if the CLI asks (how many netns: its columns) */
	for (;;) {
		if (fd < 0 || cb_proto_read(fd, &h, req, sizeof(req), NULL))
			goto out;
		if (h.type == CB_MSG_DUMP_REQ)
			break;
		if (h.type != CB_MSG_STATS_REQ || cb_proto_write(fd, CB_MSG_STATS, &none, sizeof(none)))
			goto out;
	}
	for (uint64_t sent = 0; sent < s->rows;) {
		uint32_t n = s->rows - sent < CB_ROWS_PER_FRAME ? (uint32_t)(s->rows - sent) :
								  CB_ROWS_PER_FRAME;

		frame.hdr.count = n;
		if (cb_proto_write(fd, CB_MSG_ROWS, &frame,
				   sizeof(frame.hdr) + n * sizeof(struct cb_row)))
			goto out;
		sent += n;
	}
	cb_proto_write(fd, CB_MSG_END, &end, sizeof(end));
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run the CLI against `rows` rows; wall seconds and its max RSS (KiB). */
static int run(const char *cli, uint64_t rows, double *secs, long *maxrss)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct server s = { .rows = rows };
	struct rusage ru;
	pthread_t th;
	double t0;
	pid_t pid;
	int st;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/connbeat-cli-stream-%d.sock", getpid());
	unlink(sa.sun_path);
	s.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s.lfd < 0 || bind(s.lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s.lfd, 1)) {
		fprintf(stderr, "cli_stream: cannot listen on %s: %s\n", sa.sun_path,
			strerror(errno));
		return -1;
	}
	pthread_create(&th, NULL, serve, &s);
	t0 = now_s();
	pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execl(cli, cli, "--socket", sa.sun_path, "list", "--json", (char *)NULL);
		_exit(127);
	}
	if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "cli_stream: %s failed\n", cli);
		return -1;
	}
	*secs = now_s() - t0;
	*maxrss = ru.ru_maxrss;
	pthread_join(th, NULL);
	close(s.lfd);
	unlink(sa.sun_path);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *build = getenv("CONNBEAT_BUILD");
	char path[4096];
	const char *cli = argv[1];

	if (argc < 2) {
		snprintf(path, sizeof(path), "%s/connbeat", build ? build : "build");
		cli = path;
	}
	double t_big[3], t_small;
	long rss_big = 0, rss_small = 0, r;

	for (uint32_t i = 0; i < CB_ROWS_PER_FRAME; i++) {
		struct cb_row *w = &frame.row[i];

		w->cookie = 4096 + i;
		w->family = i % 3 ? 4 : 6;
		w->saddr[0] = 10, w->saddr[3] = (uint8_t)i;
		w->daddr[0] = 10, w->daddr[3] = (uint8_t)(i >> 8);
		if (w->family == 6)
			w->saddr[15] = w->daddr[15] = 1;
		w->sport = (uint16_t)(1024 + i);
		w->dport = 443;
		w->tcp_state = 1;
		w->state = i % 4;
		w->flags = i % 2 ? 2 : 0;
		w->pid = 1000 + i % 50;
		w->idle_ns = (uint64_t)i * 1000000007ull;
		w->tx_bytes = (uint64_t)i << 20;
		memcpy(w->comm, "worker", 7);
	}
	if (run(cli, 10000, &t_small, &rss_small))
		return 1;
	for (int k = 0; k < 3; k++) {
		if (run(cli, 1000000, &t_big[k], &r))
			return 1;
		if (r > rss_big)
			rss_big = r;
	}
	qsort(t_big, 3, sizeof(double), cmp_double);
	printf("# connbeat list --json: 10k rows %.3f s, max RSS %ld KiB; 1M rows %.3f s "
	       "(median of 3), max RSS %ld KiB\n",
	       t_small, rss_small, t_big[1], rss_big);
	printf("bench: list_json_1M_s %.3f s\n", t_big[1]);
	printf("bench: cli_maxrss_1M_vs_10k_ratio %.2f x\n", (double)rss_big / rss_small);
	return 0;
}
