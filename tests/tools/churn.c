// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * churn — open and close loopback TCP connections as fast as it can, for
 * load tests and the end-to-end benchmark.
 *
 *   churn [--seconds S] [--count N] [--threads T] [--bytes B] [--family 4|6]
 *         [--server-first] [--ready]
 *
 * Each thread has its own listener on 127.0.0.1 (or ::1) and loops:
 * connect, accept, optionally send B bytes one way and read them, close
 * both ends. By default the client closes first (the client end goes to
 * TIME_WAIT); with --server-first the accepted end closes first and the
 * client reads the server's FIN (end of file) before it closes, as a client
 * of a server that hangs up does (the server end goes to TIME_WAIT, the
 * client end through CLOSE_WAIT and LAST_ACK). It stops after S seconds or
 * N connections in all (whichever comes first; both bounded) and prints
 *   churn: connections N seconds S rate R ports A,B,...
 * (the listening ports, so that tests can compare per port). With
 * --ready it first prints "churn: listening ports A,B,..." and waits for
 * a line on stdin before it starts (a test can set things up in between).
 * Exit 0, or 1 when a system call fails (named on stderr).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double seconds = 10;
static long max_count = 10 * 1000 * 1000;
static int nthreads = 2;
static int nbytes;
static int family = 4;
static bool server_first;
static _Atomic long made;
static _Atomic bool failed;

/* One listener per thread, made before the threads start. */
struct worker_arg {
	int lfd;
	struct sockaddr_storage ss;
	socklen_t len;
	double end;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int listener(struct sockaddr_storage *ss, socklen_t *len)
{
	int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(ss, 0, sizeof(*ss));
	if (family == 6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*s4);
	}
	if (bind(fd, (struct sockaddr *)ss, *len) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void fail(const char *what)
{
	if (!atomic_exchange(&failed, true))
		fprintf(stderr, "churn: %s failed: %s\n", what, strerror(errno));
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port :
						 ((const struct sockaddr_in *)ss)->sin_port);
}

static void *worker(void *arg)
{
	struct worker_arg *w = arg;
	struct sockaddr_storage ss = w->ss;
	socklen_t len = w->len;
	double end = w->end;
	char *buf = nbytes ? calloc(1, nbytes) : NULL;
	int lfd = w->lfd;
	long i = 0;

	while (!atomic_load(&failed)) {
		int c, a;

		/* check the clock every 64 connections: cheap, and bounded */
		if ((i++ & 63) == 0 && now_s() >= end)
			break;
		if (atomic_fetch_add(&made, 1) >= max_count) {
			atomic_fetch_sub(&made, 1);
			break;
		}
		c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&ss, len)) {
			fail("connect");
			break;
		}
		a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (a < 0) {
			fail("accept");
			break;
		}
		if (nbytes) {
			int got = 0, n;

			if (write(c, buf, nbytes) != nbytes) {
				fail("write");
				break;
			}
			while (got < nbytes && (n = read(a, buf, nbytes - got)) > 0)
				got += n;
		}
		if (server_first) {
			char eof;

			close(a);
			if (read(c, &eof, 1) != 0) { /* the FIN: end of file, nothing else */
				fail("read (waiting for the server's FIN)");
				close(c);
				break;
			}
			close(c);
		} else {
			close(c);
			close(a);
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' }, { "count", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' }, { "bytes", required_argument, NULL, 'b' },
		{ "family", required_argument, NULL, 'f' },  { "ready", no_argument, NULL, 'r' },
		{ "server-first", no_argument, NULL, 'S' },  { "help", no_argument, NULL, 'h' },
		{},
	};
	static struct worker_arg args[64];
	pthread_t th[64];
	double start, end, took;
	bool ready = false;
	char ports[64 * 7] = "", line[16];
	int c;

	while ((c = getopt_long(argc, argv, "s:n:t:b:f:rSh", opts, NULL)) != -1) {
		switch (c) {
		case 's': seconds = atof(optarg); break;
		case 'n': max_count = atol(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'b': nbytes = atoi(optarg); break;
		case 'f': family = atoi(optarg); break;
		case 'r': ready = true; break;
		case 'S': server_first = true; break;
		case 'h':
			printf("usage: churn [--seconds S] [--count N] [--threads T] [--bytes B] "
			       "[--family 4|6] [--server-first] [--ready]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (seconds <= 0 || seconds > 3600 || max_count <= 0 || nthreads < 1 || nthreads > 64 ||
	    nbytes < 0 || nbytes > (1 << 20) || (family != 4 && family != 6)) {
		fprintf(stderr, "churn: bad arguments (seconds 0-3600, threads 1-64, bytes ≤ 1 MiB, "
				"family 4 or 6)\n");
		return 2;
	}
	for (int i = 0; i < nthreads; i++) {
		args[i].lfd = listener(&args[i].ss, &args[i].len);
		if (args[i].lfd < 0) {
			fprintf(stderr, "churn: listen failed: %s\n", strerror(errno));
			return 1;
		}
		snprintf(ports + strlen(ports), sizeof(ports) - strlen(ports), "%s%u", i ? "," : "",
			 port_of(&args[i].ss));
	}
	if (ready) {
		printf("churn: listening ports %s\n", ports);
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 0; /* nobody wants the churn any more */
	}
	start = now_s();
	end = start + seconds;
	for (int i = 0; i < nthreads; i++)
		args[i].end = end;
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, &args[i])) {
			fprintf(stderr, "churn: cannot start a thread\n");
			return 1;
		}
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	took = now_s() - start;
	for (int i = 0; i < nthreads; i++)
		close(args[i].lfd);
	printf("churn: connections %ld seconds %.3f rate %.0f ports %s\n", atomic_load(&made),
	       took, atomic_load(&made) / took, ports);
	return atomic_load(&failed) ? 1 : 0;
}
