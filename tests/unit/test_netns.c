// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for netns.h against the real kernel (root): two named network
 * namespaces (`ip netns add cbtest-PID-a`, `-b`) and an unnamed one held by
 * a child process, created in the group setup and removed in its teardown.
 *
 * What "really entered" means here: inside cb_netns_run_in() the thread's
 * /proc/thread-self/ns/net is the target, and a TCP listener made there is
 * what sock_diag (which answers for the netns of its socket) lists there and
 * nowhere else. What "pinned nothing" means: after the last process of a
 * netns exits, the kernel destroys it, which we see as RTM_DELNSID for an
 * nsid we gave it — nsids do not hold their netns, so that message comes only
 * once no fd, socket or thread of ours holds it.
 *
 * The functions run inside a netns never assert: a failed assertion would
 * longjmp out of run_in and leave this thread in the foreign netns. They
 * record what they saw and the test asserts after coming back.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/capability.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockets.h"

#include "kernel/netns.h"
#include "kernel/sock_diag.h"

#pragma GCC poison u8 u16 u32 u64

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* ---- helpers ---------------------------------------------------------------- */

/* An unnamed netns: a child that unshare()s and waits for EOF on a pipe.
 * It also dies with us (PDEATHSIG, and EOF when our end closes). */
struct child {
	pid_t pid;
	int hold; /* write end: closing it lets the child exit */
	uint32_t ino;
};

static uint32_t link_ino(const char *path)
{
	char buf[64];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	unsigned long v;

	if (n < 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "net:[%lu]", &v) != 1)
		return 0;
	return (uint32_t)v;
}

static uint32_t stat_ino(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint32_t)st.st_ino;
}

static uint32_t thread_ino(void)
{
	return link_ino("/proc/thread-self/ns/net");
}

static int spawn_child(struct child *c)
{
	int go[2], ready[2];
	char path[64], b = 0;

	if (pipe2(go, O_CLOEXEC) || pipe2(ready, O_CLOEXEC))
		return -errno;
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0) {
		/* Keep only our two ends: an inherited write end of another
		 * child's pipe would keep that child from ever seeing EOF. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != go[0] && fd != ready[1])
				close(fd);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		b = unshare(CLONE_NEWNET) ? 'E' : 'R';
		if (write(ready[1], &b, 1) != 1)
			_exit(1);
		while (read(go[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	if (read(ready[0], &b, 1) != 1)
		b = 0;
	close(ready[0]);
	c->hold = go[1];
	if (b != 'R') {
		fprintf(stderr, "test_netns: the child could not unshare(CLONE_NEWNET) (%c)\n",
			b ? b : '?');
		close(c->hold);
		waitpid(c->pid, NULL, 0);
		c->pid = 0;
		return -EPERM;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)c->pid);
	c->ino = link_ino(path);
	return c->ino ? 0 : -ENOENT;
}

static void reap_child(struct child *c)
{
	if (c->pid <= 0)
		return;
	close(c->hold);
	waitpid(c->pid, NULL, 0);
	c->pid = 0;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

/* ---- the group's namespaces ------------------------------------------------- */

static struct {
	char name_a[64], name_b[64], stale[80];
	uint32_t ino_a, ino_b, self;
	bool made_a, made_b;
	struct child c, dying; /* dying: test_dies_with_last_process's */
	pid_t main_tid;
} g;

static int group_teardown(void **state)
{
	reap_child(&g.dying);
	reap_child(&g.c);
	if (g.made_a)
		sh("ip netns del %s", g.name_a);
	if (g.made_b)
		sh("ip netns del %s", g.name_b);
	if (g.stale[0])
		unlink(g.stale);
	return 0;
}

static int group_setup(void **state)
{
	char path[128];
	int err;

	if (geteuid() != 0) {
		fprintf(stderr, "test_netns: needs root (ip netns add, setns): failing\n");
		return -1;
	}
	g.main_tid = (pid_t)syscall(SYS_gettid);
	err = cb_netns_init();
	if (err) {
		fprintf(stderr, "test_netns: cb_netns_init: %s\n", strerror(-err));
		return -1;
	}
	g.self = cb_netns_self();
	snprintf(g.name_a, sizeof(g.name_a), "cbtest-%d-a", (int)getpid());
	snprintf(g.name_b, sizeof(g.name_b), "cbtest-%d-b", (int)getpid());
	g.made_a = !sh("ip netns add %s", g.name_a);
	g.made_b = !sh("ip netns add %s", g.name_b);
	if (!g.made_a || !g.made_b) {
		fprintf(stderr, "test_netns: ip netns add failed (root? iproute2?)\n");
		goto fail;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", g.name_a);
	g.ino_a = stat_ino(path);
	snprintf(path, sizeof(path), "/run/netns/%s", g.name_b);
	g.ino_b = stat_ino(path);
	/* what a failed `ip netns add` leaves: a plain file, no namespace */
	snprintf(g.stale, sizeof(g.stale), "/run/netns/cbtest-%d-stale", (int)getpid());
	err = open(g.stale, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (err < 0) {
		fprintf(stderr, "test_netns: create %s: %s\n", g.stale, strerror(errno));
		g.stale[0] = '\0';
		goto fail;
	}
	close(err);
	err = spawn_child(&g.c);
	if (err) {
		fprintf(stderr, "test_netns: an unnamed netns in a child: %s\n", strerror(-err));
		goto fail;
	}
	if (!g.self || !g.ino_a || !g.ino_b || g.ino_a == g.ino_b || g.ino_a == g.self ||
	    g.ino_b == g.self || g.c.ino == g.self) {
		fprintf(stderr, "test_netns: namespaces not distinct: self %u a %u b %u c %u\n",
			g.self, g.ino_a, g.ino_b, g.c.ino);
		goto fail;
	}
	return 0;
fail:
	group_teardown(state);
	return -1;
}

/* ---- discover --------------------------------------------------------------- */

enum { NS_A, NS_B, NS_C, NS_SELF, NS_N };

struct seen {
	uint32_t want[NS_N];
	struct cb_netns_info got[NS_N];
	int hits[NS_N];
	uint32_t all[4096];
	int calls;
	bool dup;
	uint32_t reject; /* an inode that must not appear */
	bool rejected_seen;
};

static int on_ns(const struct cb_netns_info *ns, void *ctx)
{
	struct seen *s = ctx;

	for (int i = 0; i < s->calls && i < 4096; i++)
		if (s->all[i] == ns->inode)
			s->dup = true;
	if (s->calls < 4096)
		s->all[s->calls] = ns->inode;
	s->calls++;
	for (int i = 0; i < NS_N; i++)
		if (s->want[i] == ns->inode) {
			s->hits[i]++;
			s->got[i] = *ns;
		}
	if (s->reject && ns->inode == s->reject)
		s->rejected_seen = true;
	return 0;
}

static void discover_ours(struct seen *s)
{
	uint64_t unreadable = 0;
	int n;

	memset(s, 0, sizeof(*s));
	s->want[NS_A] = g.ino_a;
	s->want[NS_B] = g.ino_b;
	s->want[NS_C] = g.c.ino;
	s->want[NS_SELF] = g.self;
	n = cb_netns_discover(on_ns, s, &unreadable);
	assert_true(n > 0);
	assert_int_equal(n, s->calls);
	assert_false(s->dup);
}

static void test_init_self(void **state)
{
	assert_int_not_equal(cb_netns_self(), 0);
	assert_int_equal(cb_netns_self(), stat_ino("/proc/self/ns/net"));
	assert_int_equal(cb_netns_self(), thread_ino());
	assert_int_equal(cb_netns_init(), 0); /* again: a no-op */
	assert_int_equal(cb_netns_self(), g.self);
}

static int stop_first(const struct cb_netns_info *ns, void *ctx)
{
	(*(int *)ctx)++;
	return -ECANCELED;
}

static void test_discover(void **state)
{
	char path[128];
	struct seen s;
	int fds = count_fds(), calls = 0;

	discover_ours(&s);
	for (int i = 0; i < NS_N; i++)
		assert_int_equal(s.hits[i], 1);
	/* the named ones: the inode `ip netns` mounted, the name, no process */
	snprintf(path, sizeof(path), "/run/netns/%s", g.name_a);
	assert_int_equal(s.got[NS_A].inode, stat_ino(path));
	assert_string_equal(s.got[NS_A].name, g.name_a);
	assert_int_equal(s.got[NS_A].pid, 0);
	assert_string_equal(s.got[NS_B].name, g.name_b);
	assert_int_equal(s.got[NS_B].pid, 0);
	/* the unnamed one: reached through its only process */
	assert_string_equal(s.got[NS_C].name, "");
	assert_int_equal(s.got[NS_C].pid, g.c.pid);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)g.c.pid);
	assert_int_equal(s.got[NS_C].inode, link_ino(path));
	/* ours: some process is in it, and its link says so (unless that
	 * process has exited since: other work runs on this machine) */
	assert_true(s.got[NS_SELF].pid > 0);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)s.got[NS_SELF].pid);
	if (link_ino(path))
		assert_int_equal(link_ino(path), g.self);

	/* the placeholder file in /run/netns is no netns */
	memset(&s, 0, sizeof(s));
	s.reject = stat_ino(g.stale);
	assert_int_not_equal(s.reject, 0);
	assert_true(cb_netns_discover(on_ns, &s, NULL) > 0);
	assert_false(s.rejected_seen);

	/* fn stops the walk, and its error is the result */
	assert_int_equal(cb_netns_discover(stop_first, &calls, NULL), -ECANCELED);
	assert_int_equal(calls, 1);
	/* no fn: a count (of at least ours: others may come and go meanwhile) */
	assert_true(cb_netns_discover(NULL, NULL, NULL) >= NS_N);
	assert_int_equal(count_fds(), fds);
}

/* ---- run_in: listeners seen only where they were made ---------------------- */

struct listen_ctx {
	uint16_t port; /* in: 0 for any; out: the port bound */
	int fd;
	uint64_t cookie;
	uint32_t inside; /* /proc/thread-self/ns/net while in fn */
};

static int make_listener(void *ctx)
{
	struct listen_ctx *l = ctx;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int err;

	l->inside = thread_ino();
	l->fd = -1;
	err = lo_up();
	if (err)
		return err;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(l->port);
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	len = sizeof(l->cookie);
	if (bind(l->fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(l->fd, 4) ||
	    getsockopt(l->fd, SOL_SOCKET, SO_COOKIE, &l->cookie, &len))
		return -errno;
	len = sizeof(sin);
	if (getsockname(l->fd, (struct sockaddr *)&sin, &len))
		return -errno;
	l->port = ntohs(sin.sin_port);
	return 0;
}

struct dump_ctx {
	uint64_t cookie[NS_N];
	int found[NS_N];
	uint32_t inside;
};

static int on_listener(const struct cb_diag_sock *s, void *ctx)
{
	struct dump_ctx *d = ctx;

	for (int i = 0; i < NS_N; i++)
		if (d->cookie[i] && s->cookie == d->cookie[i])
			d->found[i]++;
	return 0;
}

static int dump_listeners(void *ctx)
{
	struct dump_ctx *d = ctx;

	d->inside = thread_ino();
	return cb_sock_diag_dump(1u << CB_TCP_LISTEN, on_listener, ctx, -1);
}

static void test_run_in_listeners(void **state)
{
	struct listen_ctx l[NS_N] = { 0 };
	struct seen s;
	int fds = count_fds();

	discover_ours(&s);
	/* One port for all three: binding it again in b and c works only
	 * because they are other namespaces than a. */
	for (int i = NS_A; i <= NS_C; i++) {
		l[i].port = i == NS_A ? 0 : l[NS_A].port;
		assert_int_equal(cb_netns_run_in(&s.got[i], make_listener, &l[i]), 0);
		assert_int_equal(l[i].inside, s.want[i]);
		assert_int_equal(thread_ino(), g.self); /* back home */
		assert_true(l[i].fd >= 0);
		assert_int_not_equal(l[i].port, 0);
	}
	assert_int_equal(l[NS_B].port, l[NS_A].port);

	for (int where = 0; where < NS_N; where++) {
		struct dump_ctx d = { 0 };

		for (int i = NS_A; i <= NS_C; i++)
			d.cookie[i] = l[i].cookie;
		assert_int_equal(cb_netns_run_in(&s.got[where], dump_listeners, &d), 0);
		assert_int_equal(d.inside, s.want[where]);
		assert_int_equal(thread_ino(), g.self);
		for (int i = NS_A; i <= NS_C; i++) {
			if (d.found[i] != (i == where))
				fail_msg("listener of netns %u seen %d times in netns %u",
					 s.want[i], d.found[i], s.want[where]);
		}
	}
	for (int i = NS_A; i <= NS_C; i++)
		close(l[i].fd);
	assert_int_equal(count_fds(), fds);
}

/* ---- run_in on a worker thread: only that thread moves ---------------------- */

struct thread_ctx {
	struct cb_netns_info ns;
	uint32_t inside, main_inside, after;
	int ret;
};

static int look_around(void *ctx)
{
	struct thread_ctx *t = ctx;
	char path[64];

	t->inside = thread_ino();
	snprintf(path, sizeof(path), "/proc/self/task/%d/ns/net", (int)g.main_tid);
	t->main_inside = link_ino(path);
	return 0;
}

static void *worker(void *arg)
{
	struct thread_ctx *t = arg;

	t->ret = cb_netns_run_in(&t->ns, look_around, t);
	t->after = thread_ino();
	return NULL;
}

static void test_run_in_thread(void **state)
{
	struct thread_ctx t = { .ns = { .inode = g.ino_a } };
	pthread_t th;

	snprintf(t.ns.name, sizeof(t.ns.name), "%s", g.name_a);
	assert_int_equal(pthread_create(&th, NULL, worker, &t), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(t.ret, 0);
	assert_int_equal(t.inside, g.ino_a);
	assert_int_equal(t.main_inside, g.self); /* setns moved the worker only */
	assert_int_equal(t.after, g.self);
}

/* ---- run_in refuses what no longer leads where it says ---------------------- */

static int count_call(void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

static int echo_inside(void *ctx)
{
	*(uint32_t *)ctx = thread_ino();
	return 42; /* fn's result is run_in's */
}

struct nest_ctx {
	struct cb_netns_info other;
	int inner, calls;
};

static int nest(void *ctx)
{
	struct nest_ctx *n = ctx;

	n->inner = cb_netns_run_in(&n->other, count_call, &n->calls);
	return 0;
}

static void test_run_in_stale(void **state)
{
	struct cb_netns_info ns = { 0 };
	int fds = count_fds(), calls = 0;
	uint32_t inside = 0;
	pid_t gone;

	/* a pid that now lives elsewhere (as a reused pid would): refused */
	ns.inode = g.ino_a;
	ns.pid = getpid();
	assert_int_equal(cb_netns_run_in(&ns, count_call, &calls), -ESRCH);
	/* ... and a name that leads to another netns does not help */
	snprintf(ns.name, sizeof(ns.name), "%s", g.name_b);
	assert_int_equal(cb_netns_run_in(&ns, count_call, &calls), -ESRCH);
	assert_int_equal(calls, 0);
	/* a name that leads to the right one does */
	snprintf(ns.name, sizeof(ns.name), "%s", g.name_a);
	assert_int_equal(cb_netns_run_in(&ns, echo_inside, &inside), 42);
	assert_int_equal(inside, g.ino_a);
	assert_int_equal(thread_ino(), g.self);

	/* a pid that is gone: refused */
	gone = fork();
	assert_true(gone >= 0);
	if (gone == 0)
		_exit(0);
	assert_int_equal(waitpid(gone, NULL, 0), gone);
	ns = (struct cb_netns_info){ .inode = g.c.ino, .pid = gone };
	assert_int_equal(cb_netns_run_in(&ns, count_call, &calls), -ESRCH);
	/* an inode nobody has, by a name nobody has */
	ns = (struct cb_netns_info){ .inode = 1 };
	snprintf(ns.name, sizeof(ns.name), "cbtest-%d-none", (int)getpid());
	assert_int_equal(cb_netns_run_in(&ns, count_call, &calls), -ESRCH);
	/* the placeholder file: no namespace behind it */
	ns = (struct cb_netns_info){ .inode = stat_ino(g.stale) };
	snprintf(ns.name, sizeof(ns.name), "cbtest-%d-stale", (int)getpid());
	assert_int_equal(cb_netns_run_in(&ns, count_call, &calls), -ESRCH);
	/* a name that would leave /run/netns */
	ns = (struct cb_netns_info){ .inode = g.ino_a };
	snprintf(ns.name, sizeof(ns.name), "../netns/cbtest-%d-a", (int)getpid());
	assert_int_equal(cb_netns_run_in(&ns, count_call, &calls), -EINVAL);
	assert_int_equal(calls, 0);

	/* our own: just called, whatever the pid */
	ns = (struct cb_netns_info){ .inode = g.self };
	assert_int_equal(cb_netns_run_in(&ns, count_call, &calls), 0);
	assert_int_equal(calls, 1);

	/* not nested: from inside a, neither b nor "our own" (which it is not
	 * in at that moment) */
	{
		struct nest_ctx n = { .other = { .inode = g.ino_b } };

		ns = (struct cb_netns_info){ .inode = g.ino_a };
		snprintf(ns.name, sizeof(ns.name), "%s", g.name_a);
		snprintf(n.other.name, sizeof(n.other.name), "%s", g.name_b);
		assert_int_equal(cb_netns_run_in(&ns, nest, &n), 0);
		assert_int_equal(n.inner, -EBUSY);
		n.other = (struct cb_netns_info){ .inode = g.self };
		assert_int_equal(cb_netns_run_in(&ns, nest, &n), 0);
		assert_int_equal(n.inner, -EBUSY);
		assert_int_equal(n.calls, 0);
		/* and once back, it works again */
		assert_int_equal(cb_netns_run_in(&n.other, count_call, &n.calls), 0);
		assert_int_equal(n.calls, 1);
	}

	assert_int_equal(thread_ino(), g.self);
	assert_int_equal(count_fds(), fds);
}

/* ---- run_in without CAP_SYS_ADMIN: refused going in, stranded going back ---- */

static int set_sys_admin(bool on)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	/* capset(2) on pid 0 changes the calling thread only */
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	if (on)
		data[CAP_SYS_ADMIN / 32].effective |= 1u << (CAP_SYS_ADMIN % 32);
	else
		data[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

static int drop_sys_admin(void *ctx)
{
	return set_sys_admin(false);
}

struct caps_ctx {
	struct cb_netns_info ns, self;
	int drop, eperm, raise, stranded, stranded_again, stranded_self, calls;
	uint32_t after_eperm, after_stranded;
};

static void *caps_worker(void *arg)
{
	struct caps_ctx *t = arg;

	t->drop = set_sys_admin(false);
	t->eperm = cb_netns_run_in(&t->ns, count_call, &t->calls);
	t->after_eperm = thread_ino();
	t->raise = set_sys_admin(true);
	/* fn gives up CAP_SYS_ADMIN inside: setns back must fail */
	t->stranded = cb_netns_run_in(&t->ns, drop_sys_admin, NULL);
	t->after_stranded = thread_ino();
	t->stranded_again = cb_netns_run_in(&t->ns, count_call, &t->calls);
	t->stranded_self = cb_netns_run_in(&t->self, count_call, &t->calls);
	return NULL; /* the thread ends where it is stranded, pinning nothing after */
}

static void test_run_in_caps(void **state)
{
	struct caps_ctx t = { .ns = { .inode = g.ino_b }, .self = { .inode = g.self } };
	int fds = count_fds(), calls = 0;
	pthread_t th;

	snprintf(t.ns.name, sizeof(t.ns.name), "%s", g.name_b);
	assert_int_equal(pthread_create(&th, NULL, caps_worker, &t), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(t.drop, 0);
	assert_int_equal(t.eperm, -EPERM);
	assert_int_equal(t.after_eperm, g.self);
	assert_int_equal(t.raise, 0);
	assert_int_equal(t.stranded, -ENOTRECOVERABLE);
	assert_int_equal(t.after_stranded, g.ino_b);
	assert_int_equal(t.stranded_again, -ENOTRECOVERABLE);
	assert_int_equal(t.stranded_self, -ENOTRECOVERABLE);
	assert_int_equal(t.calls, 0);
	/* stranded is per thread: this one still works */
	assert_int_equal(cb_netns_run_in(&t.ns, count_call, &calls), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(thread_ino(), g.self);
	assert_int_equal(count_fds(), fds);
}

/* ---- resolve and name ------------------------------------------------------- */

static void resolves(const char *arg, uint32_t want)
{
	char err[256] = "untouched";
	uint32_t ino = 0;
	int ret = cb_netns_resolve(arg, &ino, err, sizeof(err));

	if (ret || ino != want)
		fail_msg("resolve '%s': %d (%s), inode %u, want %u", arg, ret, err, ino, want);
	assert_string_equal(err, "");
}

static void refuses(const char *arg, int want, const char *msg_part)
{
	char err[256] = "";
	uint32_t ino = 7;
	int ret = cb_netns_resolve(arg, &ino, err, sizeof(err));

	if (ret != want || !strstr(err, msg_part))
		fail_msg("resolve '%s': %d (%s), want %d with '%s'", arg, ret, err, want,
			 msg_part);
	assert_int_equal(ino, 7); /* untouched */
	/* and without a buffer for the message */
	assert_int_equal(cb_netns_resolve(arg, &ino, NULL, 0), want);
}

static void test_resolve(void **state)
{
	char arg[128], msg[256];
	int fds = count_fds();

	/* inodes */
	snprintf(arg, sizeof(arg), "%u", g.ino_a);
	resolves(arg, g.ino_a);
	snprintf(arg, sizeof(arg), "%u", g.c.ino); /* reachable through its process */
	resolves(arg, g.c.ino);
	snprintf(arg, sizeof(arg), "%u", g.self);
	resolves(arg, g.self);
	/* names */
	resolves(g.name_a, g.ino_a);
	resolves(g.name_b, g.ino_b);
	/* paths */
	snprintf(arg, sizeof(arg), "/run/netns/%s", g.name_b);
	resolves(arg, g.ino_b);
	snprintf(arg, sizeof(arg), "/proc/%d/ns/net", (int)g.c.pid);
	resolves(arg, g.c.ino);
	resolves("/proc/self/ns/net", g.self);

	/* nothing there */
	refuses("1", -ENOENT, "no network namespace with inode 1 (taken as an inode");
	snprintf(arg, sizeof(arg), "cbtest-%d-none", (int)getpid());
	snprintf(msg, sizeof(msg), "no network namespace named '%s' (taken as a name", arg);
	refuses(arg, -ENOENT, msg);
	snprintf(arg, sizeof(arg), "cbtest-%d-stale", (int)getpid());
	refuses(arg, -ENOENT, "not a namespace file");
	refuses("/nonexistent/ns", -ENOENT, "(taken as a path: /nonexistent/ns: No such file");
	refuses("/proc/self/status", -ENOENT, "not a namespace file");
	refuses("/proc/self/ns/mnt", -ENOENT, "not a network namespace");
	/* malformed */
	refuses("", -EINVAL, "expected an inode, a name under /run/netns or a path");
	refuses(".", -EINVAL, "is not a network namespace");
	refuses("..", -EINVAL, "is not a network namespace");
	refuses("blue\n", -EINVAL, "is not a network namespace");
	refuses("0", -EINVAL, "out of range");
	refuses("4294967296", -EINVAL, "out of range");
	refuses("99999999999999999999999", -EINVAL, "out of range");
	assert_int_equal(count_fds(), fds);
}

static void test_name(void **state)
{
	char buf[64] = "x";

	assert_int_equal(cb_netns_name(g.ino_a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, g.name_a);
	assert_int_equal(cb_netns_name(g.ino_b, buf, sizeof(buf)), 0);
	assert_string_equal(buf, g.name_b);
	assert_int_equal(cb_netns_name(g.c.ino, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(cb_netns_name(stat_ino(g.stale), buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(cb_netns_name(g.ino_a, buf, 4), -ERANGE);
	assert_int_equal(cb_netns_name(g.ino_a, buf, 0), -EINVAL);
}

/* ---- a netns we worked in dies with its last process ------------------------ */

/* Give netns of `pid` an nsid in ours (an nsid does not hold its netns: the
 * kernel drops it, with RTM_DELNSID, when the netns is destroyed). */
static int assign_nsid(pid_t pid, int32_t *nsid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned int seq = (unsigned int)time(NULL);
	int ret = -EPROTO;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	/* RTM_NEWNSID (acked), then RTM_GETNSID to learn which one it got */
	for (int step = 0; step < 2; step++) {
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
		struct rtgenmsg *rt;
		struct nlattr *a;
		ssize_t n;

		nlh->nlmsg_type = step == 0 ? RTM_NEWNSID : RTM_GETNSID;
		nlh->nlmsg_flags = NLM_F_REQUEST | (step == 0 ? NLM_F_ACK : 0);
		nlh->nlmsg_seq = ++seq;
		rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
		rt->rtgen_family = AF_UNSPEC;
		if (step == 0)
			mnl_attr_put_u32(nlh, NETNSA_NSID, (uint32_t)-1); /* any free one */
		mnl_attr_put_u32(nlh, NETNSA_PID, (uint32_t)pid);
		if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ||
		    (n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) < 0) {
			ret = -errno;
			goto out;
		}
		nlh = (struct nlmsghdr *)buf;
		if (!mnl_nlmsg_ok(nlh, (int)n) || nlh->nlmsg_seq != seq)
			goto out;
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			ret = ((const struct nlmsgerr *)mnl_nlmsg_get_payload(nlh))->error;
			if (ret || step == 1)
				goto out;
			ret = -EPROTO;
			continue;
		}
		if (step == 0 || nlh->nlmsg_type != RTM_NEWNSID)
			goto out;
		mnl_attr_for_each(a, nlh, sizeof(*rt))
			if (mnl_attr_get_type(a) == NETNSA_NSID) {
				*nsid = (int32_t)mnl_attr_get_u32(a);
				ret = *nsid >= 0 ? 0 : -EPROTO;
			}
	}
out:
	mnl_socket_close(nl);
	return ret;
}

/* Wait until the kernel announces RTM_DELNSID for nsid, or give up after
 * timeout_ms: the condition is the kernel's cleanup_net() having run. */
static bool wait_delnsid(struct mnl_socket *mon, int32_t nsid, int timeout_ms)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct pollfd p = { .fd = mnl_socket_get_fd(mon), .events = POLLIN };

	while (poll(&p, 1, timeout_ms) == 1) {
		ssize_t n = mnl_socket_recvfrom(mon, buf, sizeof(buf));
		struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
		int len = (int)n;

		if (n < 0)
			return false;
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			struct nlattr *a;

			if (nlh->nlmsg_type != RTM_DELNSID)
				continue;
			mnl_attr_for_each(a, nlh, sizeof(struct rtgenmsg))
				if (mnl_attr_get_type(a) == NETNSA_NSID &&
				    (int32_t)mnl_attr_get_u32(a) == nsid)
					return true;
		}
	}
	return false;
}

static void test_dies_with_last_process(void **state)
{
	struct child *c = &g.dying; /* reaped by the teardown if we fail early */
	struct listen_ctx l = { 0 };
	struct dump_ctx d = { 0 };
	struct mnl_socket *mon;
	struct seen s;
	char arg[32], err[256];
	int fds = count_fds(), group = RTNLGRP_NSID;
	int32_t nsid = -1;
	uint32_t ino;
	pid_t pid;

	assert_int_equal(spawn_child(c), 0);
	mon = mnl_socket_open(NETLINK_ROUTE);
	assert_non_null(mon);
	assert_int_equal(mnl_socket_bind(mon, 0, MNL_SOCKET_AUTOPID), 0);
	assert_int_equal(mnl_socket_setsockopt(mon, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)),
			 0);
	assert_int_equal(assign_nsid(c->pid, &nsid), 0);

	/* work in it the way the daemon does: discover, enter, dump, leave */
	memset(&s, 0, sizeof(s));
	s.want[0] = c->ino;
	assert_true(cb_netns_discover(on_ns, &s, NULL) > 0);
	assert_int_equal(s.hits[0], 1);
	assert_int_equal(s.got[0].pid, c->pid);
	assert_int_equal(cb_netns_run_in(&s.got[0], make_listener, &l), 0);
	assert_int_equal(l.inside, c->ino);
	d.cookie[0] = l.cookie;
	assert_int_equal(cb_netns_run_in(&s.got[0], dump_listeners, &d), 0);
	assert_int_equal(d.found[0], 1);
	close(l.fd); /* the test's own socket in there: it would pin it */
	assert_int_equal(thread_ino(), g.self);

	ino = c->ino;
	pid = c->pid;
	reap_child(c);
	if (!wait_delnsid(mon, nsid, 60000))
		fail_msg("netns %u (nsid %d) was not destroyed after its last process exited: "
			 "something still holds it",
			 ino, nsid);
	mnl_socket_close(mon);

	/* gone for discover, resolve and run_in */
	memset(&s, 0, sizeof(s));
	s.want[0] = ino;
	assert_true(cb_netns_discover(on_ns, &s, NULL) > 0);
	assert_int_equal(s.hits[0], 0);
	snprintf(arg, sizeof(arg), "%u", ino);
	assert_int_equal(cb_netns_resolve(arg, &ino, err, sizeof(err)), -ENOENT);
	assert_int_equal(cb_netns_run_in(&(struct cb_netns_info){ .inode = ino, .pid = pid },
					 count_call, &(int){ 0 }),
			 -ESRCH);
	assert_int_equal(count_fds(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_self),
		cmocka_unit_test(test_discover),
		cmocka_unit_test(test_run_in_listeners),
		cmocka_unit_test(test_run_in_thread),
		cmocka_unit_test(test_run_in_stale),
		cmocka_unit_test(test_run_in_caps),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_dies_with_last_process),
	};

	return cmocka_run_group_tests_name("netns", tests, group_setup, group_teardown);
}
