// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tests of user/kernel/owners.c (the task_file iterator pass) against the
 * real kernel, as root: forked children with their own pid and comm hold
 * loopback sockets, in our netns and in a netns of their own, and tell us
 * over a pipe what they hold (fds, SO_COOKIE); the pass must name exactly
 * those (pid, cookie) pairs with the right comm, netns, fd, family and
 * state, never a listener. Then: a socket shared by two processes, dup()ed
 * fds and a thread with a private fd table (reported once; the raw stream
 * read straight from the skeleton shows what the kernel itself skips), and
 * passes after the capabilities are dropped.
 *
 * Deterministic: every child signals readiness over a pipe and waits for
 * EOF on another; nothing sleeps. A child that fails writes a message
 * instead of its report and exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockets.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "connbeat_owners.h" /* <>: see user/kernel/owners.c */
#include "connbeat_abi.h"
#include "owners.skel.h"
#include "common/log.h"
#include "kernel/owners.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* ---- what a child reports ---- */

#define MAX_SOCKS 16

struct held {
	uint64_t cookie;
	int32_t fd;
	uint8_t family;
	bool listener; /* must not be reported */
	bool own_netns; /* made after unshare(CLONE_NEWNET) */
};

struct report {
	char err[128]; /* non-empty: the child failed, and why */
	int32_t pid;
	int32_t pid2; /* a second process holding shared[] (or 0) */
	int nheld;
	struct held held[MAX_SOCKS];
	int nshared; /* indices into held[] the second process holds too */
	int shared[MAX_SOCKS];
};

struct child {
	pid_t pid;
	int go; /* write end: closing it lets the child exit */
	struct report rep;
};

static struct cb_owners *owners;

/* Every test needs root (the group setup opens the pass only as root):
 * skip loudly without it. */
#define NEED_ROOT()                                                                 \
	do {                                                                        \
		if (!owners) {                                                      \
			fprintf(stderr, "test_owners: not root: loading the owners " \
					"iterator needs root\n");                   \
			skip();                                                     \
		}                                                                   \
	} while (0)

static int write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* In a child: report a failure and leave. */
static __attribute__((noreturn, format(printf, 3, 4))) void child_fail(int ready,
								      struct report *rep,
								      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep->err, sizeof(rep->err), fmt, ap);
	va_end(ap);
	if (!rep->err[0])
		rep->err[0] = '?';
	(void)write_full(ready, rep, sizeof(*rep));
	_exit(1);
}

/* Block until the parent closes its end of `go` (EOF), or dies. */
static void wait_go(int go)
{
	char c;

	while (read(go, &c, 1) < 0 && errno == EINTR)
		;
}

static int add_held(struct report *rep, int fd, int family, bool listener, bool own_netns)
{
	struct held *h;

	if (rep->nheld >= MAX_SOCKS) {
		errno = ENOBUFS; /* a test that holds more: raise MAX_SOCKS */
		return -1;
	}
	h = &rep->held[rep->nheld++];
	*h = (struct held){ .cookie = cookie_of(fd), .fd = fd, .family = family == AF_INET ? 4 : 6,
			    .listener = listener, .own_netns = own_netns };
	return h->cookie ? 0 : -1;
}

/* A loopback listener, a client connected to it and the accepted end. */
static int loopback_pair(int family, int *lfd, int *cfd, int *afd)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	*lfd = socket(family, SOCK_STREAM, 0);
	if (*lfd < 0 || bind(*lfd, (struct sockaddr *)&ss, len) || listen(*lfd, 4) ||
	    getsockname(*lfd, (struct sockaddr *)&ss, &len))
		return -1;
	*cfd = socket(family, SOCK_STREAM, 0);
	/* connect() returns once the handshake is done, and accept() only
	 * hands out an established socket: both ends are ESTABLISHED now. */
	if (*cfd < 0 || connect(*cfd, (struct sockaddr *)&ss, len))
		return -1;
	*afd = accept(*lfd, NULL, NULL);
	return *afd < 0 ? -1 : 0;
}

typedef void (*child_fn)(int ready, int go, struct report *rep);

/* Fork a child running fn; return once it has reported (or failed). */
static void spawn(struct child *c, child_fn fn)
{
	int ready[2], go[2];

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		struct report rep = { 0 };

		close(ready[0]);
		close(go[1]);
		rep.pid = getpid();
		fn(ready[1], go[0], &rep);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	c->go = go[1];
	memset(&c->rep, 0, sizeof(c->rep));
	if (read_full(ready[0], &c->rep, sizeof(c->rep)))
		snprintf(c->rep.err, sizeof(c->rep.err), "child exited without a report");
	close(ready[0]);
	if (c->rep.err[0]) {
		close(c->go);
		waitpid(c->pid, NULL, 0);
		fail_msg("child %d: %s", (int)c->pid, c->rep.err);
	}
}

/* Let the child (and any process of its) exit, and reap it. */
static void finish(struct child *c)
{
	int st = 0;

	close(c->go);
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static uint32_t netns_of(pid_t pid)
{
	char path[64], link[64];
	unsigned long ino = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	n = readlink(path, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_int_equal(sscanf(link, "net:[%lu]", &ino), 1);
	return (uint32_t)ino;
}

/* ---- what a pass reports ---- */

/* The pass's pairs of the pids we care about (the host may hold many
 * more: other tests, other users), and every listener cookie seen. */
struct found {
	pid_t pids[4];
	int npids;
	struct cb_owner o[64];
	int n;
	uint64_t forbidden[MAX_SOCKS * 2]; /* listener cookies */
	int nforbidden;
	int forbidden_hits;
	int listen_state; /* any pair in LISTEN, whoever holds it */
};

static int on_owner(const struct cb_owner *o, void *ctx)
{
	struct found *f = ctx;

	f->listen_state += o->tcp_state == CB_TCP_LISTEN;
	for (int i = 0; i < f->nforbidden; i++)
		f->forbidden_hits += o->cookie == f->forbidden[i];
	for (int i = 0; i < f->npids; i++) {
		if ((pid_t)o->pid == f->pids[i] && f->n < (int)(sizeof(f->o) / sizeof(f->o[0]))) {
			f->o[f->n++] = *o;
			break;
		}
	}
	return 0;
}

static void forbid_listeners(struct found *f, const struct report *rep)
{
	for (int i = 0; i < rep->nheld; i++)
		if (rep->held[i].listener)
			f->forbidden[f->nforbidden++] = rep->held[i].cookie;
}

/* How many pairs name (pid, cookie); the last one in *out. */
static int count_pair(const struct found *f, pid_t pid, uint64_t cookie, struct cb_owner *out)
{
	int n = 0;

	for (int i = 0; i < f->n; i++) {
		if ((pid_t)f->o[i].pid == pid && f->o[i].cookie == cookie) {
			n++;
			if (out)
				*out = f->o[i];
		}
	}
	return n;
}

static void run_pass(struct found *f)
{
	uint64_t passes0, passes, ns, records;
	int n;

	cb_owners_stats(owners, &passes0, NULL, NULL);
	n = cb_owners_pass(owners, on_owner, f);
	assert_true(n >= 0);
	cb_owners_stats(owners, &passes, &ns, &records);
	assert_int_equal(passes, passes0 + 1);
	assert_int_equal(records, (uint64_t)n);
	assert_true(ns > 0);
	assert_int_equal(f->listen_state, 0);
	assert_int_equal(f->forbidden_hits, 0);
}

/* ---- accepted, connected, v4 and v6, and another netns ---- */

static void child_netns(int ready, int go, struct report *rep)
{
	int l, c, a;

	if (prctl(PR_SET_NAME, "cbown-netns"))
		child_fail(ready, rep, "prctl: %s", strerror(errno));
	if (loopback_pair(AF_INET, &l, &c, &a) || add_held(rep, l, AF_INET, true, false) ||
	    add_held(rep, c, AF_INET, false, false) || add_held(rep, a, AF_INET, false, false))
		child_fail(ready, rep, "IPv4 pair: %s", strerror(errno));
	if (loopback_pair(AF_INET6, &l, &c, &a) || add_held(rep, l, AF_INET6, true, false) ||
	    add_held(rep, c, AF_INET6, false, false) || add_held(rep, a, AF_INET6, false, false))
		child_fail(ready, rep, "IPv6 pair: %s", strerror(errno));
	/* New sockets go to the new netns; the ones above stay in ours. */
	if (unshare(CLONE_NEWNET) || lo_up())
		child_fail(ready, rep, "a netns of our own (unshare, lo up): %s", strerror(errno));
	if (loopback_pair(AF_INET, &l, &c, &a) || add_held(rep, l, AF_INET, true, true) ||
	    add_held(rep, c, AF_INET, false, true) || add_held(rep, a, AF_INET, false, true))
		child_fail(ready, rep, "IPv4 pair in the new netns: %s", strerror(errno));
	if (write_full(ready, rep, sizeof(*rep)))
		_exit(1);
	wait_go(go);
}

static void test_accepted_connected_netns(void **state)
{
	struct found f = { 0 };
	struct child c;
	uint32_t ours, theirs;

	(void)state;
	NEED_ROOT();
	spawn(&c, child_netns);
	ours = netns_of(getpid());
	theirs = netns_of(c.pid);
	assert_int_not_equal(ours, theirs);
	f.pids[f.npids++] = c.pid;
	forbid_listeners(&f, &c.rep);
	run_pass(&f);
	for (int i = 0; i < c.rep.nheld; i++) {
		const struct held *h = &c.rep.held[i];
		struct cb_owner o;

		if (h->listener) {
			assert_int_equal(count_pair(&f, c.pid, h->cookie, NULL), 0);
			continue;
		}
		assert_int_equal(count_pair(&f, c.pid, h->cookie, &o), 1);
		assert_string_equal(o.comm, "cbown-netns");
		assert_int_equal(o.fd, h->fd);
		assert_int_equal(o.family, h->family);
		assert_int_equal(o.tcp_state, CB_TCP_ESTABLISHED);
		assert_int_equal(o.netns, h->own_netns ? theirs : ours);
	}
	/* two pairs in ours, one in theirs, no listener: 6 sockets */
	assert_int_equal(f.n, 6);
	finish(&c);
}

/* ---- a socket in two processes, dup()ed fds ---- */

static void child_shared(int ready, int go, struct report *rep)
{
	int l, c, a, gready[2];
	pid_t g;
	char ok;

	if (prctl(PR_SET_NAME, "cbown-parent"))
		child_fail(ready, rep, "prctl: %s", strerror(errno));
	if (loopback_pair(AF_INET, &l, &c, &a) || add_held(rep, c, AF_INET, false, false) ||
	    add_held(rep, a, AF_INET, false, false))
		child_fail(ready, rep, "IPv4 pair: %s", strerror(errno));
	close(l);
	/* Both processes will hold c and a. */
	rep->shared[rep->nshared++] = 0;
	rep->shared[rep->nshared++] = 1;
	if (pipe(gready))
		child_fail(ready, rep, "pipe: %s", strerror(errno));
	g = fork();
	if (g < 0)
		child_fail(ready, rep, "fork: %s", strerror(errno));
	if (g == 0) {
		close(gready[0]);
		close(ready);
		ok = prctl(PR_SET_NAME, "cbown-child") ? 'n' : 'y';
		(void)write_full(gready[1], &ok, 1);
		wait_go(go);
		_exit(0);
	}
	close(gready[1]);
	if (read_full(gready[0], &ok, 1) || ok != 'y')
		child_fail(ready, rep, "the second process did not start");
	rep->pid2 = g;
	/* The parent also holds c at a second fd: still one pair. */
	if (dup(c) < 0)
		child_fail(ready, rep, "dup: %s", strerror(errno));
	if (write_full(ready, rep, sizeof(*rep)))
		_exit(1);
	wait_go(go);
	waitpid(g, NULL, 0);
}

static void test_shared_socket(void **state)
{
	struct found f = { 0 };
	struct child c;

	(void)state;
	NEED_ROOT();
	spawn(&c, child_shared);
	f.pids[f.npids++] = c.pid;
	f.pids[f.npids++] = c.rep.pid2;
	run_pass(&f);
	for (int i = 0; i < c.rep.nshared; i++) {
		const struct held *h = &c.rep.held[c.rep.shared[i]];
		struct cb_owner o;

		assert_int_equal(count_pair(&f, c.pid, h->cookie, &o), 1);
		assert_string_equal(o.comm, "cbown-parent");
		assert_int_equal(o.fd, h->fd); /* the lowest fd, met first */
		assert_int_equal(count_pair(&f, c.rep.pid2, h->cookie, &o), 1);
		assert_string_equal(o.comm, "cbown-child");
		assert_int_equal(o.fd, h->fd);
	}
	assert_int_equal(f.n, 4);
	finish(&c);
}

/* ---- threads: shared and private fd tables ---- */

struct thread_arg {
	int unshare_files;
	int ready;  /* write 'y' or 'n' here once set up */
	int go;
};

static void *holder_thread(void *p)
{
	struct thread_arg *t = p;
	char ok = 'y';

	/* A private copy of the fd table: the iterator visits this thread
	 * on its own, with the same sockets at the same fds. */
	if (t->unshare_files && unshare(CLONE_FILES))
		ok = 'n';
	if (prctl(PR_SET_NAME, t->unshare_files ? "cbown-private" : "cbown-shared"))
		ok = 'n';
	(void)write_full(t->ready, &ok, 1);
	wait_go(t->go);
	return NULL;
}

static void child_threads(int ready, int go, struct report *rep)
{
	struct thread_arg args[2];
	pthread_t th[2];
	int l, c, a, tready[2];
	char ok;

	if (prctl(PR_SET_NAME, "cbown-threads"))
		child_fail(ready, rep, "prctl: %s", strerror(errno));
	if (loopback_pair(AF_INET, &l, &c, &a) || add_held(rep, c, AF_INET, false, false) ||
	    add_held(rep, a, AF_INET, false, false))
		child_fail(ready, rep, "IPv4 pair: %s", strerror(errno));
	close(l);
	if (pipe(tready))
		child_fail(ready, rep, "pipe: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		args[i] = (struct thread_arg){ .unshare_files = i, .ready = tready[1], .go = go };
		if (pthread_create(&th[i], NULL, holder_thread, &args[i]))
			child_fail(ready, rep, "pthread_create failed");
	}
	for (int i = 0; i < 2; i++)
		if (read_full(tready[0], &ok, 1) || ok != 'y')
			child_fail(ready, rep, "a thread failed to set itself up");
	if (write_full(ready, rep, sizeof(*rep)))
		_exit(1);
	wait_go(go);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
}

/* The raw record stream of one iterator pass, straight from the skeleton:
 * how many records name (pid, cookie), and the comm of the last one. */
static int raw_count(pid_t pid, uint64_t cookie, char comm[16])
{
	struct owners_bpf *skel = owners_bpf__open_and_load();
	struct bpf_link *link;
	struct cb_owner_rec r;
	int fd, n = 0;
	static char buf[1 << 16];
	size_t have = 0;
	ssize_t got;

	assert_non_null(skel);
	link = bpf_program__attach_iter(skel->progs.cb_owners, NULL);
	assert_non_null(link);
	fd = bpf_iter_create(bpf_link__fd(link));
	assert_true(fd >= 0);
	while ((got = read(fd, buf + have, sizeof(buf) - have)) > 0 ||
	       (got < 0 && (errno == EAGAIN || errno == EINTR))) {
		size_t off = 0;

		if (got < 0)
			continue;
		have += (size_t)got;
		for (; off + sizeof(r) <= have; off += sizeof(r)) {
			memcpy(&r, buf + off, sizeof(r));
			assert_int_equal(r.version, CB_OWNERS_ABI_VERSION);
			assert_int_equal(r.size, sizeof(r));
			if ((pid_t)r.pid == pid && r.cookie == cookie) {
				n++;
				memcpy(comm, r.comm, 16);
			}
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	assert_int_equal(got, 0);
	assert_int_equal(have, 0);
	close(fd);
	bpf_link__destroy(link);
	owners_bpf__destroy(skel);
	return n;
}

static void test_threads(void **state)
{
	struct found f = { 0 };
	struct child c;
	char comm[16] = "";

	(void)state;
	NEED_ROOT();
	spawn(&c, child_threads);
	f.pids[f.npids++] = c.pid;
	run_pass(&f);
	for (int i = 0; i < c.rep.nheld; i++) {
		const struct held *h = &c.rep.held[i];
		struct cb_owner o;

		/* The kernel skips the thread that shares the leader's table
		 * but visits the one with a private copy: two raw records,
		 * both under the tgid and the leader's comm... */
		assert_int_equal(raw_count(c.pid, h->cookie, comm), 2);
		assert_string_equal(comm, "cbown-threads");
		/* ...folded into one pair by the pass. */
		assert_int_equal(count_pair(&f, c.pid, h->cookie, &o), 1);
		assert_string_equal(o.comm, "cbown-threads");
		assert_int_equal(o.fd, h->fd);
	}
	assert_int_equal(f.n, 2);
	finish(&c);
}

/* ---- passes without capabilities ---- */

#define CAPS_DAEMON                                                                   \
	((1ull << CAP_SYS_ADMIN) | (1ull << CAP_SYS_PTRACE) | (1ull << CAP_NET_ADMIN))

static int cap_last(void)
{
	int last = CAP_LAST_CAP;

	while (prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0)
		last++;
	return last;
}

/* Keep only `keep` in every set: bounding (first: dropping from it needs
 * CAP_SETPCAP), ambient, then effective, permitted, inheritable. */
static int caps_keep(uint64_t keep)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };
	int last = cap_last();

	for (int c = 0; c <= last; c++)
		if (!(keep & (1ull << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno != EINVAL)
			return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		data[i].effective = data[i].permitted = (uint32_t)(keep >> (32 * i));
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

/* The effective set and the bounding set, as the kernel reports them. */
static int caps_now(uint64_t *eff, uint64_t *bnd)
{
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");
	unsigned long long v;

	*eff = *bnd = ~0ull;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "CapEff: %llx", &v) == 1)
			*eff = v;
		else if (sscanf(line, "CapBnd: %llx", &v) == 1)
			*bnd = v;
	}
	fclose(f);
	return 0;
}

struct caps_result {
	char err[128];
	uint64_t eff, bnd;
	int pass;     /* cb_owners_pass()'s result */
	int found;    /* pairs naming our own socket */
	int open_err; /* cb_owners_open() from there: needs privileges */
};

struct own_sock {
	pid_t pid;
	uint64_t cookie;
	int found;
};

static int on_own(const struct cb_owner *o, void *ctx)
{
	struct own_sock *s = ctx;

	s->found += (pid_t)o->pid == s->pid && o->cookie == s->cookie;
	return 0;
}

/* In a forked child: drop to `keep` (or become nobody, with no capability
 * left at all), then run a pass that must find our own connected socket. */
static void caps_child(uint64_t keep, bool nobody, int cfd, int out)
{
	struct caps_result r = { 0 };
	struct own_sock s = { .pid = getpid(), .cookie = cookie_of(cfd) };
	struct cb_owners *o2 = NULL;
	int err;

	if (nobody) {
		/* All uids non-zero: the kernel clears every capability. */
		err = setresuid(65534, 65534, 65534) ? -errno : 0;
		if (!err && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
			err = -errno;
	} else {
		err = caps_keep(keep);
	}
	if (err) {
		snprintf(r.err, sizeof(r.err), "dropping capabilities: %s", strerror(-err));
		goto out;
	}
	if ((err = caps_now(&r.eff, &r.bnd))) {
		snprintf(r.err, sizeof(r.err), "reading /proc/self/status: %s", strerror(-err));
		goto out;
	}
	r.pass = cb_owners_pass(owners, on_own, &s);
	r.found = s.found;
	r.open_err = cb_owners_open(&o2, false);
	cb_owners_close(o2);
out:
	(void)write_full(out, &r, sizeof(r));
	_exit(0);
}

static void run_caps_child(uint64_t keep, bool nobody, struct caps_result *r)
{
	int l, c, a, p[2], st;
	pid_t pid;

	assert_int_equal(loopback_pair(AF_INET, &l, &c, &a), 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		caps_child(keep, nobody, c, p[1]);
	}
	close(p[1]);
	memset(r, 0, sizeof(*r));
	if (read_full(p[0], r, sizeof(*r)))
		snprintf(r->err, sizeof(r->err), "the child exited without a report");
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(l);
	close(c);
	close(a);
	if (r->err[0])
		fail_msg("%s", r->err);
}

static void test_pass_after_caps_drop(void **state)
{
	struct caps_result r;

	(void)state;
	NEED_ROOT();
	run_caps_child(CAPS_DAEMON, false, &r);
	/* exactly the three, in the bounding set too */
	assert_int_equal(r.eff, CAPS_DAEMON);
	assert_int_equal(r.bnd, CAPS_DAEMON);
	assert_true(r.pass > 0);
	assert_int_equal(r.found, 1);
	/* CAP_SYS_ADMIN still allows loading a tracing program */
	assert_int_equal(r.open_err, 0);
}

static void test_pass_without_any_capability(void **state)
{
	struct caps_result r;

	(void)state;
	NEED_ROOT();
	run_caps_child(0, true, &r);
	assert_int_equal(r.eff, 0);
	/* BPF_ITER_CREATE only wants the link fd: the pass still works... */
	assert_true(r.pass > 0);
	assert_int_equal(r.found, 1);
	/* ...while loading the program is refused, and says so. */
	assert_int_equal(r.open_err, -EPERM);
}

/* ---- a reader in a pid namespace of its own ---- */

struct pidns_result {
	char err[128];
	int32_t mypid;  /* getpid() there: 1 */
	int pass;       /* pairs reported */
	int mine;       /* pairs naming (mypid, one of our two cookies) */
	int others;     /* pairs of any other pid */
};

struct pidns_ctx {
	pid_t pid;
	uint64_t cookie[2];
	struct pidns_result *r;
};

static int on_pidns(const struct cb_owner *o, void *ctx)
{
	struct pidns_ctx *p = ctx;

	if ((pid_t)o->pid == p->pid && (o->cookie == p->cookie[0] || o->cookie == p->cookie[1]))
		p->r->mine++;
	else if ((pid_t)o->pid != p->pid)
		p->r->others++;
	return 0;
}

/* pid 1 of a new pid namespace: hold a pair, run a pass with the handle
 * inherited from the test (the link fd), report. */
static void pidns_init(int out)
{
	struct pidns_result r = { .mypid = getpid() };
	struct pidns_ctx p = { .pid = getpid(), .r = &r };
	int l, c, a;

	if (loopback_pair(AF_INET, &l, &c, &a)) {
		snprintf(r.err, sizeof(r.err), "IPv4 pair: %s", strerror(errno));
	} else {
		p.cookie[0] = cookie_of(c);
		p.cookie[1] = cookie_of(a);
		r.pass = cb_owners_pass(owners, on_pidns, &p);
	}
	(void)write_full(out, &r, sizeof(r));
	_exit(0);
}

static void test_pid_namespace(void **state)
{
	struct pidns_result r = { 0 };
	int p[2], st;
	pid_t pid;

	(void)state;
	NEED_ROOT();
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pid_t g;

		close(p[0]);
		/* Our children go to a new pid namespace; its first is pid 1. */
		if (unshare(CLONE_NEWPID)) {
			snprintf(r.err, sizeof(r.err), "unshare(CLONE_NEWPID): %s",
				 strerror(errno));
			(void)write_full(p[1], &r, sizeof(r));
			_exit(1);
		}
		g = fork();
		if (g == 0)
			pidns_init(p[1]);
		_exit(g > 0 && waitpid(g, NULL, 0) == g ? 0 : 1);
	}
	close(p[1]);
	if (read_full(p[0], &r, sizeof(r)))
		snprintf(r.err, sizeof(r.err), "the child exited without a report");
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (r.err[0])
		fail_msg("%s", r.err);
	assert_int_equal(r.mypid, 1);
	/* its own two sockets, under the pid it knows itself by, and nothing
	 * of the processes outside its namespace */
	assert_int_equal(r.pass, 2);
	assert_int_equal(r.mine, 2);
	assert_int_equal(r.others, 0);
}

/* ---- a cookie nobody asked for yet ---- */

struct by_fd {
	pid_t pid;
	int fd[2];
	uint64_t cookie[2];
	int hits[2];
};

static int on_by_fd(const struct cb_owner *o, void *ctx)
{
	struct by_fd *b = ctx;

	for (int i = 0; i < 2; i++) {
		if ((pid_t)o->pid == b->pid && o->fd == b->fd[i]) {
			b->cookie[i] = o->cookie;
			b->hits[i]++;
		}
	}
	return 0;
}

static void test_fresh_cookie(void **state)
{
	struct by_fd b = { .pid = getpid() };
	int l, c, a;

	(void)state;
	NEED_ROOT();
	/* Fresh sockets, no SO_COOKIE yet: unless some other BPF program
	 * asked already, the pass is what makes the kernel generate the
	 * cookie (the helper path of sock_cookie()), and SO_COOKIE must then
	 * return that same value. */
	assert_int_equal(loopback_pair(AF_INET6, &l, &c, &a), 0);
	b.fd[0] = c;
	b.fd[1] = a;
	assert_true(cb_owners_pass(owners, on_by_fd, &b) >= 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(b.hits[i], 1);
		assert_true(b.cookie[i] != 0);
		assert_int_equal(b.cookie[i], cookie_of(b.fd[i]));
	}
	close(l);
	close(c);
	close(a);
}

/* ---- the callback stops a pass ---- */

static int stop_at_first(const struct cb_owner *o, void *ctx)
{
	(*(int *)ctx)++;
	return -ECANCELED;
}

static void test_callback_stops(void **state)
{
	int l, c, a, calls = 0;
	uint64_t passes0, passes;

	(void)state;
	NEED_ROOT();
	assert_int_equal(loopback_pair(AF_INET, &l, &c, &a), 0); /* at least one pair */
	cb_owners_stats(owners, &passes0, NULL, NULL);
	assert_int_equal(cb_owners_pass(owners, stop_at_first, &calls), -ECANCELED);
	assert_int_equal(calls, 1);
	cb_owners_stats(owners, &passes, NULL, NULL);
	assert_int_equal(passes, passes0); /* a pass cut short is not counted */
	close(l);
	close(c);
	close(a);
}

static int setup(void **state)
{
	(void)state;
	cb_log_init("test_owners", CB_LOG_WARN);
	if (geteuid() != 0)
		return 0; /* every test skips */
	return cb_owners_open(&owners, false) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	cb_owners_close(owners);
	owners = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted_connected_netns),
		cmocka_unit_test(test_shared_socket),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_pass_after_caps_drop),
		cmocka_unit_test(test_pass_without_any_capability),
		cmocka_unit_test(test_pid_namespace),
		cmocka_unit_test(test_fresh_cookie),
		cmocka_unit_test(test_callback_stops),
	};

	/* A child that fails mid-test must not leave the parent writing to
	 * a closed pipe. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("owners", tests, setup, teardown);
}
