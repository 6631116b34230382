// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * hold — open N loopback TCP connections and keep them open, spread over
 * as many processes as the open-files limit needs (it cannot be raised
 * here: 20000 per process), for load tests and start-up benchmarks.
 *
 *   hold --count N [--seconds S] [--per-proc M]
 *
 * Each child process has its own listener on 127.0.0.1 and holds up to M
 * (default 9000) connections, both ends. When all of them are open the
 * parent prints
 *   hold: ready N connections (2N sockets) in P processes ports A,B,...
 * (the children's listening ports, so that tests can compare per port) and
 * flushes, then waits for SIGTERM/SIGINT or S seconds (default 600:
 * every load is bounded), tells the children to close everything, and
 * exits 0. Exit 1 when a child cannot open its share (named on stderr).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Hold n connections; write the listening port (2 bytes: one atomic pipe
 * write) to `ready` when done; pause. */
static int child(long n, int ready)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct rlimit rl;
	int lfd, one = 1;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, len) || listen(lfd, 4096) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len)) {
		fprintf(stderr, "hold: listen failed: %s\n", strerror(errno));
		return 1;
	}
	for (long i = 0; i < n && !stop; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (c < 0 || connect(c, (struct sockaddr *)&sa, len) ||
		    accept4(lfd, NULL, NULL, SOCK_CLOEXEC) < 0) {
			fprintf(stderr, "hold: connection %ld of %ld failed: %s (open files limit %lu)\n",
				i + 1, n, strerror(errno), (unsigned long)rl.rlim_cur);
			return 1;
		}
	}
	{
		uint16_t port = ntohs(sa.sin_port);

		if (write(ready, &port, sizeof(port)) != sizeof(port))
			return 1;
	}
	while (!stop)
		pause();
	return 0; /* exit closes everything */
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "per-proc", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	long count = 0, per = 9000, seconds = 600, nproc, got = 0, ok = 0;
	struct sigaction sa = { .sa_handler = on_signal };
	pid_t pids[1024];
	uint16_t ports[1024], port;
	int pfd[2], c, rc = 0;

	while ((c = getopt_long(argc, argv, "n:s:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': count = atol(optarg); break;
		case 's': seconds = atol(optarg); break;
		case 'p': per = atol(optarg); break;
		case 'h': printf("usage: hold --count N [--seconds S] [--per-proc M]\n"); return 0;
		default: return 2;
		}
	}
	nproc = count > 0 && per > 0 ? (count + per - 1) / per : 0;
	if (count <= 0 || per <= 0 || per > 9990 || nproc > 1024 || seconds <= 0) {
		fprintf(stderr, "hold: need --count N > 0, --per-proc ≤ 9990, at most 1024 processes\n");
		return 2;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (pipe(pfd))
		return 1;
	for (long i = 0; i < nproc; i++) {
		long n = i == nproc - 1 ? count - per * (nproc - 1) : per;

		pids[i] = fork();
		if (pids[i] == 0) {
			close(pfd[0]);
			_exit(child(n, pfd[1]));
		}
	}
	close(pfd[1]);
	while (got < nproc && read(pfd[0], &port, sizeof(port)) == sizeof(port))
		ports[got++] = port;
	if (got < nproc) {
		fprintf(stderr, "hold: %ld of %ld processes failed to open their connections\n",
			nproc - got, nproc);
		rc = 1;
	} else {
		printf("hold: ready %ld connections (%ld sockets) in %ld processes ports ", count,
		       2 * count, nproc);
		for (long i = 0; i < nproc; i++)
			printf("%s%u", i ? "," : "", ports[i]);
		printf("\n");
		fflush(stdout);
		sigaction(SIGALRM, &sa, NULL);
		alarm((unsigned)seconds);
		while (!stop)
			pause();
	}
	for (long i = 0; i < nproc; i++)
		kill(pids[i], SIGTERM);
	for (long i = 0; i < nproc; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	(void)ok;
	return rc;
}
