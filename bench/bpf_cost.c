// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bpf_cost — what connbeat's BPF programs cost, measured on loopback.
 *
 *  1. Full-rate connection churn without the programs (baseline), then with
 *     them attached and a reader draining both rings the way the daemon will
 *     (cb_rings_poll + cb_record_check): connections per second and ratio.
 *  2. Per program, from bpf_prog_info with BPF stats enabled through
 *     bpf_enable_stats(BPF_STATS_RUN_TIME) — an fd, so the global
 *     kernel.bpf_stats_enabled is restored when we exit, even on a crash:
 *     the median over 100 ms intervals of run_time_ns/run_cnt, the overall
 *     mean, and recursion_misses.
 *  3. Completeness: OPEN and CLOSE records seen for the churn's connections
 *     (both sides) against the number made, and ring drops.
 *  4. A bulk transfer on one connection: per-run cost of the heartbeat path.
 *  Baseline in the same run: a bare counter (one per-CPU array increment,
 *  loaded from raw instructions here) on the same tracepoints, so each
 *  program's cost is also printed as a ratio to what any program costs.
 *
 * Prints "bench: NAME VALUE UNIT" lines. Needs root; without it, says so and
 * exits 0 (benchmarks report, they do not fail).
 *
 *   build/bench/bpf_cost [-n CONNECTIONS] [-t THREADS] [-b BULK_MIB] [-w WRITE_SIZE]
 *   build/bench/bpf_cost -H
 *
 * -H holds the bare counters alone on all of connbeat's tracepoints, says
 * "ready:" and waits for SIGINT or SIGTERM: the floor of any tracer there,
 * for bench/overhead.sh to run a workload against (its churn_floor).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "kernel/loader.h"
#include "common/log.h"
#include "kernel/record.h"

#define MSG 16
#define SAMPLE_MS 100
#define MAX_SAMPLES 4096

static uint16_t server_port;
static int listen_fd = -1;
static _Atomic long conns_left;
static _Atomic bool stop_servers;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int read_full(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

/* ---- churn: connect, 16 B request, 16 B reply, client closes first ---- */

static void *server_thread(void *arg)
{
	char buf[MSG];

	(void)arg;
	while (!atomic_load(&stop_servers)) {
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0)
			continue;
		if (read_full(fd, buf, MSG) == 0 && write(fd, buf, MSG) == MSG)
			(void)read(fd, buf, 1); /* wait for the client's FIN */
		close(fd);
	}
	return NULL;
}

static void *client_thread(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(server_port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[MSG] = "connbeat-bench!";
	long *failures = arg;

	while (atomic_fetch_sub(&conns_left, 1) > 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
		    write(fd, buf, MSG) != MSG || read_full(fd, buf, MSG))
			(*failures)++;
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

static int start_listener(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int one = 1;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };

	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd < 0)
		return -errno;
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* accept() wakes up now and then, so the servers can stop. */
	setsockopt(listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(listen_fd, 4096) ||
	    getsockname(listen_fd, (struct sockaddr *)&sin, &len))
		return -errno;
	server_port = ntohs(sin.sin_port);
	return 0;
}

/* Returns connections per second; *failed counts failed connections. */
static double churn(long n, int threads, long *failed)
{
	pthread_t srv[16], cli[16];
	long fails[16] = { 0 };
	double t0, t1;

	atomic_store(&conns_left, n);
	atomic_store(&stop_servers, false);
	for (int i = 0; i < threads; i++)
		pthread_create(&srv[i], NULL, server_thread, NULL);
	t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_create(&cli[i], NULL, client_thread, &fails[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(cli[i], NULL);
	t1 = now_s();
	atomic_store(&stop_servers, true);
	for (int i = 0; i < threads; i++)
		pthread_join(srv[i], NULL);
	*failed = 0;
	for (int i = 0; i < threads; i++)
		*failed += fails[i];
	return n / (t1 - t0);
}

/* ---- the reader: what the daemon's ingest will do, minus the session map ---- */

struct reader {
	struct cb_loader *l;
	struct ring_buffer *rb;
	_Atomic bool stop;
	uint64_t records, invalid, opens, closes, destroys;
};

static int on_record(void *ctx, void *data, size_t len)
{
	struct reader *r = ctx;
	const struct cb_record *rec = data;

	r->records++;
	if (cb_record_check(data, len, NULL)) {
		r->invalid++;
		return 0;
	}
	/* Only the churn's connections: clients connect to server_port,
	 * accepted sockets are bound to it. */
	if (rec->tuple.dport != server_port && rec->tuple.sport != server_port)
		return 0;
	if (rec->kind == CB_REC_OPEN)
		r->opens++;
	else if (rec->kind == CB_REC_CLOSE) {
		r->closes++;
		if (rec->flags & CB_RF_FROM_DESTROY)
			r->destroys++;
	}
	return 0;
}

static void *reader_thread(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(&r->stop))
		cb_rings_poll(r->rb, 10);
	while (ring_buffer__consume(r->rb) > 0)
		;
	return NULL;
}

/* ---- the bare-counter baseline ---- */

/* Every tracepoint connbeat's programs attach to, each with a bare counter
 * of its own (program names are 15 characters at most). */
static const struct {
	const char *tp, *bare, *prog;
} bare_tps[] = {
	{ "inet_sock_set_state", "bare_set_state", "cb_set_state" },
	{ "tcp_probe", "bare_probe", "cb_probe" },
	{ "tcp_destroy_sock", "bare_destroy", "cb_destroy" },
	{ "tcp_receive_reset", "bare_rst_recv", "cb_rst_recv" },
	{ "tcp_send_reset", "bare_rst_send", "cb_rst_send" },
};
#define N_BARE (sizeof(bare_tps) / sizeof(bare_tps[0]))
static int bare_prog_fd[N_BARE], bare_link_fd[N_BARE], bare_map_fd = -1;

#define INSN(c, d, s_, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s_), \
						 .off = (o), .imm = (i) })

/* r0 = lookup(per-CPU array, 0); if (r0) lock *r0 += 1; return 0 */
static int load_bare(const struct btf *vmlinux, const char *tp)
{
	char tname[64];
	struct bpf_insn insns[] = {
		INSN(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, bare_map_fd),
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 2, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1),
		INSN(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_0, BPF_REG_1, 0, BPF_ADD),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	int id;

	snprintf(tname, sizeof(tname), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(vmlinux, tname, BTF_KIND_TYPEDEF);
	if (id < 0)
		return id;
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_TRACE_RAW_TP,
		    .attach_btf_id = id);
	return bpf_prog_load(BPF_PROG_TYPE_TRACING, "bare_counter", "GPL", insns,
			     sizeof(insns) / sizeof(insns[0]), &o);
}

static int attach_bare(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();

	if (!vmlinux) {
		fprintf(stderr, "bpf_cost: cannot read the kernel's BTF (%s): is "
				"/sys/kernel/btf/vmlinux there?\n", strerror(errno));
		return -1;
	}
	bare_map_fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "bare", 4, 8, 1, NULL);
	for (size_t i = 0; i < N_BARE; i++) {
		bare_prog_fd[i] = load_bare(vmlinux, bare_tps[i].tp);
		if (bare_prog_fd[i] < 0 ||
		    (bare_link_fd[i] = bpf_raw_tracepoint_open(NULL, bare_prog_fd[i])) < 0) {
			fprintf(stderr, "bpf_cost: bare counter on %s: %s\n", bare_tps[i].tp,
				strerror(errno));
			btf__free(vmlinux);
			return -1;
		}
	}
	btf__free(vmlinux);
	return 0;
}

static void detach_bare(void)
{
	for (size_t i = 0; i < N_BARE; i++) {
		close(bare_link_fd[i]);
		close(bare_prog_fd[i]);
	}
	close(bare_map_fd);
}

/* Our programs' statistics, then the bare counters'. */
static int collect(struct cb_loader *l, struct cb_prog_stats *out)
{
	int n = cb_loader_prog_stats(l, out, CB_LOADER_MAX_PROGS - N_BARE);

	for (size_t i = 0; n >= 0 && bare_map_fd >= 0 && i < N_BARE; i++, n++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		bpf_obj_get_info_by_fd(bare_prog_fd[i], &info, &len);
		snprintf(out[n].name, sizeof(out[n].name), "%s", bare_tps[i].bare);
		out[n].fd = bare_prog_fd[i];
		out[n].run_cnt = info.run_cnt;
		out[n].run_time_ns = info.run_time_ns;
		out[n].recursion_misses = info.recursion_misses;
	}
	return n;
}

/* ---- per-program sampling ---- */

struct sampler {
	struct cb_loader *l;
	_Atomic bool stop;
	int nprog;
	struct cb_prog_stats first[CB_LOADER_MAX_PROGS], last[CB_LOADER_MAX_PROGS];
	double samples[CB_LOADER_MAX_PROGS][MAX_SAMPLES];
	int nsamples[CB_LOADER_MAX_PROGS];
};

static void *sampler_thread(void *arg)
{
	struct sampler *s = arg;
	struct cb_prog_stats prev[CB_LOADER_MAX_PROGS], cur[CB_LOADER_MAX_PROGS];
	struct timespec ts = { .tv_sec = 0, .tv_nsec = SAMPLE_MS * 1000000L };

	s->nprog = collect(s->l, s->first);
	memcpy(prev, s->first, sizeof(prev));
	while (!atomic_load(&s->stop)) {
		nanosleep(&ts, NULL);
		if (collect(s->l, cur) != s->nprog)
			break;
		for (int i = 0; i < s->nprog; i++) {
			uint64_t runs = cur[i].run_cnt - prev[i].run_cnt;

			/* Intervals with too few runs say nothing about the median. */
			if (runs >= 100 && s->nsamples[i] < MAX_SAMPLES)
				s->samples[i][s->nsamples[i]++] =
					(double)(cur[i].run_time_ns - prev[i].run_time_ns) / runs;
		}
		memcpy(prev, cur, sizeof(prev));
	}
	collect(s->l, s->last);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(struct sampler *s, int i)
{
	if (!s->nsamples[i])
		return 0;
	qsort(s->samples[i], s->nsamples[i], sizeof(double), cmp_double);
	return s->samples[i][s->nsamples[i] / 2];
}

/* Which bare counter shares this program's tracepoint. */
static const char *bare_for(const char *prog)
{
	for (size_t i = 0; i < N_BARE; i++)
		if (!strcmp(bare_tps[i].prog, prog))
			return bare_tps[i].bare;
	return NULL;
}

static void report_progs(struct sampler *s, const char *tag)
{
	double med[CB_LOADER_MAX_PROGS] = { 0 };

	for (int i = 0; i < s->nprog; i++)
		med[i] = median(s, i);
	for (int i = 0; i < s->nprog; i++) {
		const char *bare = bare_for(s->last[i].name);

		for (int j = 0; bare && j < s->nprog; j++)
			if (!strcmp(s->last[j].name, bare) && med[i] > 0 && med[j] > 0)
				printf("bench: bpf_vs_bare_ratio_%s_%s %.2f x\n", tag,
				       s->last[i].name, med[i] / med[j]);
	}
	for (int i = 0; i < s->nprog; i++) {
		uint64_t runs = s->last[i].run_cnt - s->first[i].run_cnt;
		uint64_t ns = s->last[i].run_time_ns - s->first[i].run_time_ns;
		uint64_t miss = s->last[i].recursion_misses - s->first[i].recursion_misses;
		const char *name = s->last[i].name;

		if (!runs)
			continue;
		if (med[i] > 0)
			printf("bench: bpf_ns_per_run_%s_%s %.0f ns\n", tag, name, med[i]);
		printf("bench: bpf_ns_per_run_mean_%s_%s %.0f ns\n", tag, name, (double)ns / runs);
		printf("bench: bpf_runs_%s_%s %llu runs\n", tag, name, (unsigned long long)runs);
		printf("bench: bpf_recursion_misses_%s_%s %llu runs\n", tag, name,
		       (unsigned long long)miss);
	}
}

/* ---- bulk: one connection, the heartbeat path only ---- */

struct bulk {
	int fd;
	uint64_t bytes;
};

static void *bulk_reader(void *arg)
{
	struct bulk *b = arg;
	static char buf[1 << 16];
	ssize_t r;

	while ((r = read(b->fd, buf, sizeof(buf))) > 0)
		b->bytes += r;
	return NULL;
}

static double bulk_transfer(uint64_t bytes, size_t wsize)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(server_port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static char buf[1 << 16];
	struct bulk b = { 0 };
	pthread_t th;
	uint64_t sent = 0;
	double t0;
	int c = socket(AF_INET, SOCK_STREAM, 0);

	if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)))
		return 0;
	do
		b.fd = accept(listen_fd, NULL, NULL);
	while (b.fd < 0 && errno == EAGAIN);
	pthread_create(&th, NULL, bulk_reader, &b);
	t0 = now_s();
	while (sent < bytes) {
		ssize_t w = write(c, buf, wsize);

		if (w <= 0)
			break;
		sent += w;
	}
	close(c);
	pthread_join(th, NULL);
	close(b.fd);
	return b.bytes / (now_s() - t0) / (1 << 20);
}

int main(int argc, char **argv)
{
	struct cb_loader_opts opts = { .max_sessions = CB_DEFAULT_MAX_SESSIONS };
	long n = 100000, failed0 = 0, failed1 = 0;
	int threads = 2, bulk_mib = 2048, wsize = 65536, opt, stats_fd, err, sig;
	bool hold = false;
	struct reader rd = { 0 };
	struct sampler *smp;
	struct cb_loader *l;
	pthread_t rth, sth;
	double rate0, rate1, mibs;
	uint64_t st[CB_STAT_MAX];
	char pin[64];

	while ((opt = getopt(argc, argv, "n:t:b:w:H")) != -1) {
		switch (opt) {
		case 'H':
			hold = true;
			break;
		case 'n':
			n = atol(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'b':
			bulk_mib = atoi(optarg);
			break;
		case 'w':
			wsize = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n CONNECTIONS] [-t THREADS] [-b BULK_MIB] [-w WRITE_SIZE]\n"
				"       %s -H   (hold bare counters until SIGINT/SIGTERM)\n",
				argv[0], argv[0]);
			return 2;
		}
	}
	if (threads < 1 || threads > 16 || n < 1 || wsize < 1 || wsize > 65536)
		return 2;
	if (geteuid() != 0) {
		printf("# bpf_cost: skipped, needs root (loads BPF programs)\n");
		return 0;
	}
	cb_log_init("bpf_cost", CB_LOG_WARN);
	if (hold) {
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		if (attach_bare())
			return 1;
		printf("ready: bare counters on %zu tracepoints\n", N_BARE);
		fflush(stdout);
		sigwait(&set, &sig);
		detach_bare();
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((err = start_listener())) {
		fprintf(stderr, "bpf_cost: listener: %s\n", strerror(-err));
		return 1;
	}

	/* 1. Baseline: no programs. A warm-up run first (page cache, TIME_WAIT
	 * population comparable in both runs). */
	churn(n / 10, threads, &failed0);
	rate0 = churn(n, threads, &failed0);

	/* 2. The same with the programs and a reader. */
	snprintf(pin, sizeof(pin), "/sys/fs/bpf/connbeat-bench-%d", getpid());
	opts.pin_dir = pin;
	if (cb_loader_open(&opts, &l) || cb_loader_attach(l))
		return 1;
	rd.l = l;
	rd.rb = cb_loader_rings(l, on_record, &rd, on_record, &rd);
	if (!rd.rb)
		return 1;
	if (attach_bare())
		fprintf(stderr, "bpf_cost: no bare-counter baseline\n");
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0)
		fprintf(stderr, "bpf_cost: cannot enable BPF stats: %s\n", strerror(errno));
	smp = calloc(1, sizeof(*smp));
	smp->l = l;
	pthread_create(&rth, NULL, reader_thread, &rd);
	pthread_create(&sth, NULL, sampler_thread, smp);
	rate1 = churn(n, threads, &failed1);
	atomic_store(&smp->stop, true);
	pthread_join(sth, NULL);
	/* Let the last closes (server side, after the client's FIN) land. */
	usleep(200000);
	atomic_store(&rd.stop, true);
	pthread_join(rth, NULL);

	printf("bench: churn_conns %ld conns\n", n);
	printf("bench: churn_rate_bare %.0f conn/s\n", rate0);
	printf("bench: churn_rate_connbeat %.0f conn/s\n", rate1);
	printf("bench: churn_connbeat_vs_bare_ratio %.3f x\n", rate1 / rate0);
	printf("bench: churn_failed_conns %ld conns\n", failed0 + failed1);
	report_progs(smp, "churn");
	printf("bench: churn_open_missing %lld records\n", (long long)(2 * n) - (long long)rd.opens);
	printf("bench: churn_close_missing %lld records\n",
	       (long long)(2 * n) - (long long)rd.closes);
	printf("bench: churn_close_from_destroy %llu records\n", (unsigned long long)rd.destroys);
	printf("bench: churn_invalid_records %llu records\n", (unsigned long long)rd.invalid);
	if (cb_loader_stats(l, st) == 0) {
		printf("bench: churn_events_dropped %llu records\n",
		       (unsigned long long)st[CB_STAT_EVENTS_DROPPED]);
		printf("bench: churn_beats_dropped %llu records\n",
		       (unsigned long long)st[CB_STAT_BEATS_DROPPED]);
	}

	/* 4. Bulk transfer: the heartbeat path (tcp_probe). */
	memset(smp, 0, sizeof(*smp));
	smp->l = l;
	atomic_store(&rd.stop, false);
	pthread_create(&rth, NULL, reader_thread, &rd);
	pthread_create(&sth, NULL, sampler_thread, smp);
	mibs = bulk_transfer((uint64_t)bulk_mib << 20, wsize);
	atomic_store(&smp->stop, true);
	pthread_join(sth, NULL);
	atomic_store(&rd.stop, true);
	pthread_join(rth, NULL);
	printf("bench: bulk_throughput_connbeat %.0f MiB/s\n", mibs);
	report_progs(smp, "bulk");

	if (stats_fd >= 0)
		close(stats_fd); /* BPF stats back to what they were */
	if (bare_map_fd >= 0)
		detach_bare();
	cb_loader_close(l);
	/* The bench's own pins go with it. */
	for (const char *m = "heartbeats\0events\0beats\0stats\0lost\0"; *m; m += strlen(m) + 1) {
		char p[128];

		snprintf(p, sizeof(p), "%s/%s", pin, m);
		unlink(p);
	}
	rmdir(pin);
	free(smp);
	return 0;
}
