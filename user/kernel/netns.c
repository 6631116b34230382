// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* netns.c — see netns.h. */
#include "kernel/netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#pragma GCC poison u8 u16 u32 u64

#define NETNS_RUN_DIR "/run/netns"

/* Written once by cb_netns_init() before any thread uses them, read-only after. */
static int self_fd = -1;
static uint32_t self_ino;
static dev_t nsfs_dev; /* every namespace file lives on the one nsfs superblock */

/* Set when a thread could not get back to self_fd: it must not be trusted
 * with any further work, not even work "in our own netns". */
static __thread bool stranded;
/* Set while the thread is in a foreign netns: a nested run_in would come
 * back to ours, not to the outer one, and the outer fn would go on in the
 * wrong netns. */
static __thread bool away;

int cb_netns_init(void)
{
	struct stat st;
	int fd;

	if (self_fd >= 0)
		return 0;
	/* thread-self, not self: /proc/self/ns is the main thread's, and "our
	 * own" is where the caller stands */
	fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int err = -errno;

		close(fd);
		return err;
	}
	self_ino = (uint32_t)st.st_ino;
	nsfs_dev = st.st_dev;
	self_fd = fd;
	return 0;
}

uint32_t cb_netns_self(void)
{
	return self_ino;
}

/* The device of nsfs, to tell a mounted namespace from the plain file it is
 * mounted on (or that a failed `ip netns add` leaves behind). */
static int get_nsfs_dev(dev_t *dev)
{
	struct stat st;

	if (self_fd >= 0) {
		*dev = nsfs_dev;
		return 0;
	}
	if (stat("/proc/thread-self/ns/net", &st))
		return -errno;
	*dev = st.st_dev;
	return 0;
}

/* "net:[4026531840]" -> 4026531840 */
static int parse_link(const char *s, uint32_t *ino)
{
	unsigned long long v;
	char *end;

	if (strncmp(s, "net:[", 5) || s[5] < '0' || s[5] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s + 5, &end, 10);
	if (errno || v == 0 || v > UINT32_MAX || strcmp(end, "]"))
		return -EINVAL;
	*ino = (uint32_t)v;
	return 0;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* ---- the namespaces of one scan: an array in discovery order, indexed by
 * an open-addressing table of inodes (slot = array index + 1, 0 = empty) so
 * de-duplication stays O(1) per process however many pods there are ------ */

struct ns_set {
	struct cb_netns_info *v;
	size_t n, cap;
	uint32_t *slot;
	size_t mask;
};

static size_t ino_hash(uint32_t ino)
{
	/* murmur3's finaliser: namespace inodes are consecutive numbers */
	ino ^= ino >> 16;
	ino *= 0x85ebca6bu;
	ino ^= ino >> 13;
	ino *= 0xc2b2ae35u;
	ino ^= ino >> 16;
	return ino;
}

static struct cb_netns_info *set_find(const struct ns_set *s, uint32_t ino)
{
	if (!s->slot)
		return NULL;
	for (size_t i = ino_hash(ino) & s->mask; s->slot[i]; i = (i + 1) & s->mask)
		if (s->v[s->slot[i] - 1].inode == ino)
			return &s->v[s->slot[i] - 1];
	return NULL;
}

static int set_grow(struct ns_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 16, mask = cap * 2 - 1;
	struct cb_netns_info *v;
	uint32_t *slot;

	v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	slot = calloc(mask + 1, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	for (size_t k = 0; k < s->n; k++) {
		size_t i = ino_hash(v[k].inode) & mask;

		while (slot[i])
			i = (i + 1) & mask;
		slot[i] = (uint32_t)(k + 1);
	}
	free(s->slot);
	s->slot = slot;
	s->mask = mask;
	s->cap = cap;
	return 0;
}

/* Add ino unless present; *out is its entry either way. */
static int set_add(struct ns_set *s, uint32_t ino, struct cb_netns_info **out)
{
	struct cb_netns_info *e = set_find(s, ino);
	size_t i;
	int err;

	if (e) {
		*out = e;
		return 0;
	}
	if (s->n == s->cap) { /* load stays <= 1/2 */
		err = set_grow(s);
		if (err)
			return err;
	}
	e = &s->v[s->n];
	memset(e, 0, sizeof(*e));
	e->inode = ino;
	for (i = ino_hash(ino) & s->mask; s->slot[i]; i = (i + 1) & s->mask)
		;
	s->slot[i] = (uint32_t)(++s->n);
	*out = e;
	return 0;
}

static void set_free(struct ns_set *s)
{
	free(s->v);
	free(s->slot);
}

/* One readlink per process: the link names the netns without opening it,
 * so nothing is pinned, and it is the cheapest call that tells. */
static int scan_procs(struct ns_set *s, uint64_t *unreadable)
{
	char path[32], link[64];
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		struct cb_netns_info *e;
		uint32_t ino;
		ssize_t n;

		if (!all_digits(de->d_name) || strlen(de->d_name) > 10)
			continue;
		snprintf(path, sizeof(path), "%s/ns/net", de->d_name);
		n = readlinkat(dirfd(d), path, link, sizeof(link) - 1);
		if (n < 0) {
			/* ENOENT: gone since readdir, or a zombie (no nsproxy
			 * left); ESRCH likewise. EACCES: ptrace access denied
			 * (on a host whose pid 1 holds capabilities we lack,
			 * even root gets it). */
			if (errno == EACCES || errno == EPERM) {
				if (unreadable)
					(*unreadable)++;
			} else if (errno != ENOENT && errno != ESRCH) {
				err = -errno;
				break;
			}
			continue;
		}
		link[n] = '\0';
		if (parse_link(link, &ino))
			continue; /* not a netns link: nothing we know how to use */
		err = set_add(s, ino, &e);
		if (err)
			break;
		if (!e->pid)
			e->pid = (int32_t)strtol(de->d_name, NULL, 10);
	}
	if (!err && errno)
		err = -errno;
	closedir(d);
	return err;
}

/* One stat per name. */
static int scan_names(struct ns_set *s, dev_t dev)
{
	static struct cb_ratelimit long_name_rl = CB_RATELIMIT_INIT(60000, 1);
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = opendir(NETNS_RUN_DIR);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((errno = 0, de = readdir(d))) {
		struct cb_netns_info *e;
		struct stat st;
		size_t len;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0)) {
			if (errno == ENOENT) /* deleted since readdir */
				continue;
			err = -errno;
			break;
		}
		if (st.st_dev != dev)
			continue; /* a file with no namespace mounted on it */
		len = strlen(de->d_name);
		if (len >= sizeof(e->name)) {
			/* run_in could not reach it by this name: keep it only
			 * if a process reaches it */
			if (!set_find(s, (uint32_t)st.st_ino))
				cb_log_ratelimited(&long_name_rl, CB_LOG_WARN,
						   "netns %s/%s: name longer than %zu bytes, "
						   "skipped (no process is in it to reach it by)",
						   NETNS_RUN_DIR, de->d_name, sizeof(e->name) - 1);
			continue;
		}
		err = set_add(s, (uint32_t)st.st_ino, &e);
		if (err)
			break;
		/* readdir order is arbitrary: keep the smallest name, the one
		 * cb_netns_name() picks too */
		if (!e->name[0] || strcmp(de->d_name, e->name) < 0)
			memcpy(e->name, de->d_name, len + 1);
	}
	if (!err && errno)
		err = -errno;
	closedir(d);
	return err;
}

int cb_netns_discover(cb_netns_fn fn, void *ctx, uint64_t *unreadable)
{
	struct ns_set s = { 0 };
	dev_t dev = 0;
	int err, ret;

	err = get_nsfs_dev(&dev);
	if (err)
		return err;
	/* Processes first, so that a named netns with processes keeps its
	 * first pid; the whole scan ends before fn runs, so a slow fn does not
	 * stretch the snapshot and may itself call discover. */
	err = scan_procs(&s, unreadable);
	if (!err)
		err = scan_names(&s, dev);
	for (size_t i = 0; !err && fn && i < s.n; i++)
		if ((ret = fn(&s.v[i], ctx)) < 0)
			err = ret;
	if (!err)
		err = (int)s.n;
	set_free(&s);
	return err;
}

/* A name fit for /run/netns/NAME, as iproute2 checks it (invalid_name() in
 * ip/ipnetns.c), plus no control characters (a quoting accident). */
static bool valid_name(const char *name)
{
	if (!*name || strlen(name) > NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Open path and check it is netns `ino`: the fd, -ESRCH (gone, or another
 * netns now), -EPERM or -errno. */
static int open_checked(const char *path, uint32_t ino)
{
	struct stat st;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT || err == ESRCH)
			return -ESRCH;
		return err == EACCES ? -EPERM : -err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (st.st_dev != nsfs_dev || (uint32_t)st.st_ino != ino) {
		close(fd);
		return -ESRCH;
	}
	return fd;
}

int cb_netns_run_in(const struct cb_netns_info *ns, int (*fn)(void *ctx), void *ctx)
{
	char path[sizeof(NETNS_RUN_DIR) + sizeof(ns->name) + 1];
	int fd = -ESRCH, ret;

	if (stranded)
		return -ENOTRECOVERABLE;
	if (away)
		return -EBUSY;
	if (self_fd < 0 || !ns || !fn || strnlen(ns->name, sizeof(ns->name)) == sizeof(ns->name) ||
	    (ns->name[0] && !valid_name(ns->name)))
		return -EINVAL;
	if (ns->inode == self_ino)
		return fn(ctx);

	if (ns->pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)ns->pid);
		fd = open_checked(path, ns->inode);
	}
	/* The pid is only a way in: gone, reused by a process elsewhere, or
	 * not ours to read, the name may still reach the same netns. */
	if (fd < 0 && ns->name[0]) {
		snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, ns->name);
		fd = open_checked(path, ns->inode);
	}
	if (fd < 0)
		return fd;

	ret = setns(fd, CLONE_NEWNET) ? -errno : 0;
	/* The thread's own reference holds the netns while we are in it: the
	 * fd has done its job, and must not outlive this call. */
	close(fd);
	if (ret)
		return ret;

	away = true;
	ret = fn(ctx);
	away = false;

	if (setns(self_fd, CLONE_NEWNET)) {
		int err = errno;

		stranded = true;
		cb_err("setns back to the daemon's netns %u from netns %u failed: %s; this thread "
		       "stays in netns %u and is no longer used (lost CAP_SYS_ADMIN?)",
		       self_ino, ns->inode, strerror(err), ns->inode);
		return -ENOTRECOVERABLE;
	}
	return ret;
}

/* ---- cb_netns_resolve ---------------------------------------------------- */

struct find_ino {
	uint32_t ino;
	bool found;
};

static int match_ino(const struct cb_netns_info *ns, void *ctx)
{
	struct find_ino *f = ctx;

	if (ns->inode != f->ino)
		return 0;
	f->found = true;
	return -ECANCELED; /* found: stop */
}

/* path is a netns file: its inode, or why not in `why` (-ENOENT when it is
 * not one, -errno when it cannot be looked at). */
static int netns_file(const char *path, dev_t dev, uint32_t *inode, char *why, size_t whylen)
{
	struct stat st;
	int fd, type, e;

	if (stat(path, &st)) {
		e = errno;
		snprintf(why, whylen, "%s: %s", path, strerror(e));
		return e == ENOENT || e == ENOTDIR ? -ENOENT : -e;
	}
	if (st.st_dev != dev) {
		snprintf(why, whylen, "%s is not a namespace file (nothing from nsfs there)", path);
		return -ENOENT;
	}
	/* /proc/PID/ns/mnt lives on nsfs too: ask its kind. The fd lives for
	 * this one ioctl. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(why, whylen, "open %s: %s", path, strerror(e));
		return e == ENOENT ? -ENOENT : -e;
	}
	type = ioctl(fd, NS_GET_NSTYPE);
	e = errno;
	close(fd);
	if (type < 0) {
		snprintf(why, whylen, "ioctl(NS_GET_NSTYPE) on %s: %s", path, strerror(e));
		return -e;
	}
	if (type != CLONE_NEWNET) {
		snprintf(why, whylen, "%s is a namespace, but not a network namespace", path);
		return -ENOENT;
	}
	*inode = (uint32_t)st.st_ino;
	return 0;
}

#define ERR(...) (err && errlen ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)

int cb_netns_resolve(const char *arg, uint32_t *inode, char *err, size_t errlen)
{
	char path[sizeof(NETNS_RUN_DIR) + NAME_MAX + 2], why[PATH_MAX + 128];
	struct find_ino f = { 0 };
	unsigned long long v;
	dev_t dev = 0;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!arg || !inode) {
		ERR("no network namespace given");
		return -EINVAL;
	}
	if (!*arg || (!strchr(arg, '/') && !valid_name(arg))) {
		ERR("'%s' is not a network namespace: expected an inode, a name under %s or a "
		    "path such as /proc/PID/ns/net",
		    arg, NETNS_RUN_DIR);
		return -EINVAL;
	}
	ret = get_nsfs_dev(&dev);
	if (ret) {
		ERR("cannot read /proc/thread-self/ns/net: %s", strerror(-ret));
		return ret;
	}

	if (strchr(arg, '/')) {
		ret = netns_file(arg, dev, inode, why, sizeof(why));
		if (ret)
			ERR("no network namespace at %s (taken as a path: %s)", arg, why);
		return ret;
	}

	snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, arg);
	if (!all_digits(arg)) {
		ret = netns_file(path, dev, inode, why, sizeof(why));
		if (ret)
			ERR("no network namespace named '%s' (taken as a name under %s: %s)", arg,
			    NETNS_RUN_DIR, why);
		return ret;
	}

	errno = 0;
	v = strtoull(arg, NULL, 10);
	if (errno || v == 0 || v > UINT32_MAX) {
		ERR("'%s' is not a network namespace (taken as an inode: out of range, 1 to %u)",
		    arg, UINT32_MAX);
		return -EINVAL;
	}
	f.ino = (uint32_t)v;
	ret = cb_netns_discover(match_ino, &f, NULL);
	if (f.found) {
		*inode = f.ino;
		return 0;
	}
	if (ret < 0) {
		ERR("cannot look for a network namespace with inode %s: listing them failed: %s",
		    arg, strerror(-ret));
		return ret;
	}
	/* `ip netns add 42` is legal: a name made of digits */
	if (!netns_file(path, dev, inode, why, sizeof(why)))
		return 0;
	ERR("no network namespace with inode %s (taken as an inode: no process is in one, no "
	    "name under %s refers to one, and %s is no name either)",
	    arg, NETNS_RUN_DIR, path);
	return -ENOENT;
}

int cb_netns_name(uint32_t inode, char *buf, size_t len)
{
	char best[NAME_MAX + 1] = "";
	struct dirent *de;
	dev_t dev = 0;
	DIR *d;
	int err;

	if (!buf || !len)
		return -EINVAL;
	buf[0] = '\0';
	err = get_nsfs_dev(&dev);
	if (err)
		return err;
	d = opendir(NETNS_RUN_DIR);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((errno = 0, de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0)) {
			if (errno == ENOENT)
				continue;
			err = -errno;
			break;
		}
		if (st.st_dev == dev && (uint32_t)st.st_ino == inode &&
		    (!best[0] || strcmp(de->d_name, best) < 0))
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	if (!err && errno)
		err = -errno;
	closedir(d);
	if (err)
		return err;
	if (strlen(best) >= len)
		return -ERANGE;
	memcpy(buf, best, strlen(best) + 1);
	return 0;
}
