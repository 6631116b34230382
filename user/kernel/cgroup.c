// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cgroup.c — see cgroup.h. */
#include "kernel/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#pragma GCC poison u8 u16 u32 u64

#define NO_PARENT UINT32_MAX

/* ---- one walk's result: nodes (id, parent, name) and an id index -------- */

struct cg_node {
	uint64_t id;
	uint32_t parent;   /* index into nodes, NO_PARENT for the mount's root */
	uint32_t name_off; /* into names; the root's name is "" */
	uint16_t name_len;
};

struct cg_table {
	struct cg_node *nodes;
	uint32_t count, cap;
	char *names;
	size_t names_len, names_cap;
	uint32_t *slot; /* node index + 1, 0 = empty; load ≤ 1/2 */
	uint32_t mask;
};

/*
 * Ids asked for and not found. Without this, the sockets of a cgroup that
 * is gone (a socket can outlive its cgroup: passed on, or lingering after
 * its process) would trigger a walk every interval for as long as they
 * report. An id asked before a walk began and not found by that walk is
 * dead: ids are never reused, so it will not appear later, and asking
 * again costs nothing. An id asked while a walk runs stays pending (that
 * walk may have read its parent before it was made). Bounded: when the set
 * is half full it is emptied, which costs at most a walk per interval.
 */
#define UNKNOWN_SLOTS 1024u
#define DEAD UINT64_MAX

struct unknown {
	uint64_t id;  /* 0 = empty: kernfs ids start at 1 */
	uint64_t seq; /* c->rescans when first asked, or DEAD */
};

struct cb_cgroups {
	char mount[PATH_MAX]; /* "" when the host has no cgroup2 */
	int mnt_fd;           /* the mount's root, -1 without one */
	dev_t dev;            /* its st_dev: the walk stays on this filesystem */

	pthread_mutex_t lock;
	pthread_cond_t walked; /* a walk ended */
	bool walking;
	struct cg_table *table; /* under lock; replaced whole by a walk */
	uint64_t last_walk_ns;
	uint64_t interval_ns;
	uint64_t (*now_ns)(void *ctx);
	void *now_ctx;

	struct unknown *unknown; /* under lock: UNKNOWN_SLOTS, and as many to rebuild */
	struct unknown *unknown_next;
	uint32_t nunknown;

	_Atomic uint64_t rescans; /* walks started: a walk's sequence number */
	_Atomic uint64_t cached;
};

/* a walk per second at most, the same tree each time: say it once a minute */
static struct cb_ratelimit many_rl = CB_RATELIMIT_INIT(60000, 1);
static struct cb_ratelimit deep_rl = CB_RATELIMIT_INIT(60000, 1);

static uint64_t mono_ns(void *ctx)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Ids are small and consecutive (an idr): mix them before masking. */
static uint32_t id_hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (uint32_t)id;
}

static void table_free(struct cg_table *t)
{
	if (!t)
		return;
	free(t->nodes);
	free(t->names);
	free(t->slot);
	free(t);
}

static int table_add(struct cg_table *t, uint64_t id, uint32_t parent, const char *name,
		     size_t name_len)
{
	if (t->count == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 256;
		struct cg_node *n = realloc(t->nodes, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->nodes = n;
		t->cap = cap;
	}
	if (t->names_len + name_len > t->names_cap) {
		size_t cap = t->names_cap ? t->names_cap : 4096;
		char *s;

		while (cap < t->names_len + name_len)
			cap *= 2;
		s = realloc(t->names, cap);
		if (!s)
			return -ENOMEM;
		t->names = s;
		t->names_cap = cap;
	}
	if (name_len) /* the root's "" before any name was stored: names is NULL */
		memcpy(t->names + t->names_len, name, name_len);
	t->nodes[t->count] = (struct cg_node){
		.id = id,
		.parent = parent,
		.name_off = (uint32_t)t->names_len,
		.name_len = (uint16_t)name_len,
	};
	t->names_len += name_len;
	t->count++;
	return 0;
}

/* Built once the walk is over, when the count is known: no rehashing. */
static int table_index(struct cg_table *t)
{
	uint32_t n = 16;

	while (n < 2 * t->count)
		n <<= 1;
	t->slot = calloc(n, sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	t->mask = n - 1;
	for (uint32_t i = 0; i < t->count; i++) {
		uint32_t s = id_hash(t->nodes[i].id) & t->mask;

		/* an id twice would be a kernel bug: the first one wins */
		while (t->slot[s] && t->nodes[t->slot[s] - 1].id != t->nodes[i].id)
			s = (s + 1) & t->mask;
		if (!t->slot[s])
			t->slot[s] = i + 1;
	}
	return 0;
}

static const struct cg_node *table_find(const struct cg_table *t, uint64_t id)
{
	uint32_t s;

	if (!t || !t->slot)
		return NULL;
	for (s = id_hash(id) & t->mask; t->slot[s]; s = (s + 1) & t->mask) {
		if (t->nodes[t->slot[s] - 1].id == id)
			return &t->nodes[t->slot[s] - 1];
	}
	return NULL;
}

/* "/a/b" from the chain of parents; "/" for the root. */
static int table_path(const struct cg_table *t, const struct cg_node *n, char *buf, size_t len)
{
	const struct cg_node *chain[CB_CGROUP_MAX_DEPTH + 1];
	size_t depth = 0, need = 0, pos = 0;

	/* the walk links a node only to one it recorded before, one level up,
	 * and never deeper than the cap: the chain is finite and fits */
	for (; n->parent != NO_PARENT; n = &t->nodes[n->parent]) {
		chain[depth++] = n;
		need += 1 + n->name_len;
	}
	if (!need)
		need = 1; /* "/" */
	if (len < need + 1) {
		if (len)
			buf[0] = '\0';
		return -ENOSPC;
	}
	if (!depth)
		buf[pos++] = '/';
	while (depth--) {
		buf[pos++] = '/';
		memcpy(buf + pos, t->names + chain[depth]->name_off, chain[depth]->name_len);
		pos += chain[depth]->name_len;
	}
	buf[pos] = '\0';
	return 0;
}

/* ---- the unknown ids (under lock) ------------------------------------------ */

static struct unknown *unknown_slot(struct unknown *set, uint64_t id)
{
	uint32_t s = id_hash(id) & (UNKNOWN_SLOTS - 1);

	while (set[s].id && set[s].id != id)
		s = (s + 1) & (UNKNOWN_SLOTS - 1);
	return &set[s];
}

static void unknown_add(struct cb_cgroups *c, uint64_t id)
{
	struct unknown *u;

	if (c->nunknown >= UNKNOWN_SLOTS / 2) {
		memset(c->unknown, 0, UNKNOWN_SLOTS * sizeof(*c->unknown));
		c->nunknown = 0;
	}
	u = unknown_slot(c->unknown, id);
	if (!u->id) {
		*u = (struct unknown){ .id = id, .seq = atomic_load(&c->rescans) };
		c->nunknown++;
	}
}

/* After walk `seq` published t: what it found is known, what was asked
 * before it began and it did not find is dead, the rest stays pending. */
static void unknown_sweep(struct cb_cgroups *c, const struct cg_table *t, uint64_t seq)
{
	struct unknown *next = c->unknown_next;

	memset(next, 0, UNKNOWN_SLOTS * sizeof(*next));
	c->nunknown = 0;
	for (uint32_t i = 0; i < UNKNOWN_SLOTS; i++) {
		struct unknown u = c->unknown[i];

		if (!u.id || table_find(t, u.id))
			continue;
		if (u.seq < seq)
			u.seq = DEAD;
		*unknown_slot(next, u.id) = u;
		c->nunknown++;
	}
	c->unknown_next = c->unknown;
	c->unknown = next;
}

/* ---- the walk ------------------------------------------------------------ */

/* One level of the walk: a directory being read, in a buffer of its own
 * (the parent's entries wait while a child is walked). */
#define DENTS_BUF 8192

struct frame {
	int fd;
	uint32_t node;
	char *buf;
	size_t pos, len;
};

/* getdents64(2)'s record; glibc declares the call, not the struct. */
struct dent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* The next entry of f, or NULL at its end (or on a read error: a dying
 * cgroup answers ENODEV; what was read is kept, the next walk corrects). */
static const struct dent64 *frame_next(struct frame *f)
{
	const struct dent64 *d;

	if (f->pos >= f->len) {
		ssize_t n = getdents64(f->fd, f->buf, DENTS_BUF);

		if (n <= 0)
			return NULL;
		f->pos = 0;
		f->len = (size_t)n;
	}
	d = (const struct dent64 *)(f->buf + f->pos);
	f->pos += d->d_reclen;
	return d;
}

/*
 * Depth first with an explicit stack of open directories, one per level
 * (at most CB_CGROUP_MAX_DEPTH + 1 descriptors and 8 KiB buffers). Every
 * directory is read once and every child opened relative to its parent's
 * descriptor, so a walk costs O(entries) and never builds a path: per
 * cgroup an openat, an fstat, two getdents64 and a close. (opendir/readdir
 * would add an fstat and two fcntl per directory: 8 calls instead of 5.)
 *
 * What disappears during the walk, or cannot be opened, is skipped: a walk
 * is a snapshot and the next one corrects it. Only the root failing fails
 * the walk.
 */
static int walk(struct cb_cgroups *c, struct cg_table **out)
{
	struct frame stack[CB_CGROUP_MAX_DEPTH + 1] = { 0 };
	char *bufs[CB_CGROUP_MAX_DEPTH + 1] = { 0 };
	bool too_many = false, too_deep = false;
	struct cg_table *t;
	size_t depth = 0;
	struct stat st;
	int fd, err = 0;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	fd = openat(c->mnt_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	err = table_add(t, st.st_ino, NO_PARENT, "", 0);
	if (err)
		goto out;

	while (fd >= 0 || depth) {
		const struct dent64 *de;
		struct frame *top;

		if (fd >= 0) {
			/* push the directory just opened (and recorded) */
			if (!bufs[depth] && !(bufs[depth] = malloc(DENTS_BUF))) {
				err = -ENOMEM;
				goto out;
			}
			stack[depth] = (struct frame){ .fd = fd, .node = t->count - 1,
						       .buf = bufs[depth] };
			fd = -1;
			depth++;
		}
		top = &stack[depth - 1];
		de = frame_next(top);
		if (!de) {
			close(top->fd);
			depth--;
			continue;
		}
		/* kernfs fills d_type: most entries are control files */
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (depth > CB_CGROUP_MAX_DEPTH) {
			too_deep = true;
			continue;
		}
		if (t->count >= CB_CGROUP_MAX) {
			too_many = true;
			break;
		}
		fd = openat(top->fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone since it was read, or a file (DT_UNKNOWN) */
		/*
		 * The id is the st_ino of the directory actually opened. And
		 * something mounted on a cgroup directory is not a cgroup.
		 */
		if (fstat(fd, &st) < 0 || st.st_dev != c->dev) {
			close(fd);
			fd = -1;
			continue;
		}
		err = table_add(t, st.st_ino, top->node, de->d_name, strlen(de->d_name));
		if (err)
			goto out;
	}
	err = table_index(t);
	if (err)
		goto out;
	if (too_many)
		cb_log_ratelimited(&many_rl, CB_LOG_WARN,
				   "cgroups: more than %u cgroups under %s: the rest are not "
				   "cached and answer as unknown (cgroup null)",
				   CB_CGROUP_MAX, c->mount);
	if (too_deep)
		cb_log_ratelimited(&deep_rl, CB_LOG_WARN,
				   "cgroups: cgroups deeper than %u levels under %s are not "
				   "cached and answer as unknown (cgroup null)",
				   CB_CGROUP_MAX_DEPTH, c->mount);
out:
	while (depth)
		close(stack[--depth].fd);
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i <= CB_CGROUP_MAX_DEPTH; i++)
		free(bufs[i]);
	if (err)
		table_free(t);
	else
		*out = t;
	return err;
}

/*
 * Walk and publish, the lock held on entry and on return but dropped across
 * the walk so that lookups of known ids go on meanwhile. The caller has
 * checked that no walk runs.
 */
static int __rescan(struct cb_cgroups *c)
{
	struct cg_table *t = NULL, *old = NULL;
	uint64_t seq;
	int err;

	c->walking = true;
	c->last_walk_ns = c->now_ns(c->now_ctx);
	seq = atomic_fetch_add(&c->rescans, 1) + 1;
	pthread_mutex_unlock(&c->lock);

	err = walk(c, &t);

	pthread_mutex_lock(&c->lock);
	if (!err) {
		old = c->table;
		c->table = t;
		atomic_store(&c->cached, t->count);
		unknown_sweep(c, t, seq);
	}
	c->walking = false;
	pthread_cond_broadcast(&c->walked);
	if (old) {
		/* nobody else can hold it: lookups read the table under the lock */
		pthread_mutex_unlock(&c->lock);
		table_free(old);
		pthread_mutex_lock(&c->lock);
	}
	return err;
}

/* ---- the API --------------------------------------------------------------- */

static int mnt_open(struct cb_cgroups *c)
{
	struct statfs sfs;
	struct stat st;

	c->mnt_fd = open(c->mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->mnt_fd < 0)
		return -errno;
	/* mountinfo and the directory can disagree if something is mounted
	 * over the cgroup2 mount: trust the directory */
	if (fstatfs(c->mnt_fd, &sfs) < 0 || fstat(c->mnt_fd, &st) < 0)
		return -errno;
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return -ENOENT;
	c->dev = st.st_dev;
	return 0;
}

int cb_cgroups_open_mountinfo(const char *mountinfo, struct cb_cgroups **out)
{
	struct cb_cgroups *c;
	FILE *f;
	int err;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->mnt_fd = -1;
	c->interval_ns = CB_CGROUP_RESCAN_NS;
	c->now_ns = mono_ns;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->walked, NULL);

	/* no mount table (no /proc) is no cgroup2 we can find: -ENOENT too */
	f = fopen(mountinfo, "re");
	if (f) {
		err = cb_cgroup_find_mount(f, c->mount, sizeof(c->mount));
		fclose(f);
	} else {
		err = -errno;
	}
	if (!err)
		err = mnt_open(c);
	if (err == -ENOENT)
		goto none;
	if (err)
		goto fail;

	c->unknown = calloc(UNKNOWN_SLOTS, sizeof(*c->unknown));
	c->unknown_next = calloc(UNKNOWN_SLOTS, sizeof(*c->unknown_next));
	if (!c->unknown || !c->unknown_next) {
		err = -ENOMEM;
		goto fail;
	}
	pthread_mutex_lock(&c->lock);
	err = __rescan(c);
	pthread_mutex_unlock(&c->lock);
	if (err)
		goto fail;
	*out = c;
	return 0;
none:
	/* a handle all the same: every lookup answers -ENOENT */
	if (c->mnt_fd >= 0)
		close(c->mnt_fd);
	c->mnt_fd = -1;
	c->mount[0] = '\0';
	*out = c;
	return -ENOENT;
fail:
	cb_cgroups_close(c);
	return err;
}

int cb_cgroups_open(struct cb_cgroups **out)
{
	return cb_cgroups_open_mountinfo("/proc/self/mountinfo", out);
}

void cb_cgroups_close(struct cb_cgroups *c)
{
	if (!c)
		return;
	if (c->mnt_fd >= 0)
		close(c->mnt_fd);
	table_free(c->table);
	free(c->unknown);
	free(c->unknown_next);
	pthread_cond_destroy(&c->walked);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *cb_cgroups_mount(const struct cb_cgroups *c)
{
	return c->mount;
}

int cb_cgroups_path(struct cb_cgroups *c, uint64_t id, char *buf, size_t len)
{
	const struct cg_node *n;
	int err = -ENOENT;

	if (len)
		buf[0] = '\0';
	/* 0 is what the programs read for a socket without a cgroup */
	if (c->mnt_fd < 0 || !id)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	n = table_find(c->table, id);
	if (!n) {
		struct unknown *u = unknown_slot(c->unknown, id);

		if (u->id && u->seq == DEAD)
			goto out;
		if (!u->id)
			unknown_add(c, id);
		if (c->walking) {
			/* a walk started meanwhile may know it: wait for that one
			 * rather than start another */
			while (c->walking)
				pthread_cond_wait(&c->walked, &c->lock);
		} else if (c->now_ns(c->now_ctx) - c->last_walk_ns >= c->interval_ns) {
			__rescan(c); /* on failure the old cache stays */
		}
		n = table_find(c->table, id);
	}
	if (n)
		err = table_path(c->table, n, buf, len);
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

int cb_cgroups_rescan(struct cb_cgroups *c)
{
	int err;

	if (c->mnt_fd < 0)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	/* the running walk may have read a directory before the caller's
	 * change: wait for it, then walk again */
	while (c->walking)
		pthread_cond_wait(&c->walked, &c->lock);
	err = __rescan(c);
	pthread_mutex_unlock(&c->lock);
	return err;
}

int cb_cgroups_id(struct cb_cgroups *c, const char *path, uint64_t *id)
{
	char rel[PATH_MAX];
	struct stat st;
	size_t n;
	int err;

	err = cb_cgroup_path_check(path, NULL, 0);
	if (err)
		return err;
	if (c->mnt_fd < 0)
		return -ENOENT;
	/* relative to the mount's descriptor: "/a/b" -> "a/b", "/" -> "." */
	n = strlen(path + 1);
	if (n) {
		memcpy(rel, path + 1, n + 1);
	} else {
		rel[0] = '.';
		rel[1] = '\0';
	}
	if (fstatat(c->mnt_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		err = -errno;
		return err == -ENOTDIR ? -ENOENT : err;
	}
	/* a control file such as "/cgroup.procs" is no cgroup, and neither is
	 * anything mounted below the tree */
	if (!S_ISDIR(st.st_mode) || st.st_dev != c->dev)
		return -ENOENT;
	*id = st.st_ino;
	return 0;
}

void cb_cgroups_stats(const struct cb_cgroups *c, uint64_t *rescans, uint64_t *cached)
{
	if (rescans)
		*rescans = atomic_load(&c->rescans);
	if (cached)
		*cached = atomic_load(&c->cached);
}

void cb_cgroups_set_rescan_interval(struct cb_cgroups *c, uint64_t ns)
{
	pthread_mutex_lock(&c->lock);
	c->interval_ns = ns;
	pthread_mutex_unlock(&c->lock);
}

void cb_cgroups_set_clock(struct cb_cgroups *c, uint64_t (*now_ns)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&c->lock);
	c->now_ns = now_ns ? now_ns : mono_ns;
	c->now_ctx = now_ns ? ctx : NULL;
	c->last_walk_ns = c->now_ns(c->now_ctx); /* as if the last walk were now */
	pthread_mutex_unlock(&c->lock);
}

/* ---- paths as strings ------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *msg, size_t at)
{
	if (err && errlen)
		snprintf(err, errlen, "%s (at byte %zu)", msg, at);
}

int cb_cgroup_path_check(const char *path, char *err, size_t errlen)
{
	size_t len, i, start;

	if (err && errlen)
		err[0] = '\0';
	if (!path || !path[0]) {
		if (err && errlen)
			snprintf(err, errlen, "empty cgroup path: give one such as /system.slice");
		return -EINVAL;
	}
	len = strnlen(path, PATH_MAX);
	if (len >= PATH_MAX) {
		if (err && errlen)
			snprintf(err, errlen, "cgroup path longer than %d bytes", PATH_MAX - 1);
		return -EINVAL;
	}
	if (path[0] != '/') {
		if (err && errlen)
			snprintf(err, errlen,
				 "cgroup path must start with '/' (relative to the cgroup2 mount, "
				 "e.g. /system.slice), not '%c'",
				 path[0]);
		return -EINVAL;
	}
	/* each name: from `start` to the next '/' or the end */
	for (start = 1; start < len; start = i + 1) {
		size_t n;

		for (i = start; i < len && path[i] != '/'; i++)
			;
		n = i - start;
		if (n == 0) {
			set_err(err, errlen, "empty name in cgroup path (\"//\")", start);
			return -EINVAL;
		}
		if (n == 1 && path[start] == '.') {
			set_err(err, errlen, "\".\" in cgroup path: write it without", start);
			return -EINVAL;
		}
		if (n == 2 && path[start] == '.' && path[start + 1] == '.') {
			set_err(err, errlen, "\"..\" in cgroup path: paths stay below the mount",
				start);
			return -EINVAL;
		}
		if (n > NAME_MAX) {
			set_err(err, errlen, "name in cgroup path longer than NAME_MAX (255)",
				start);
			return -EINVAL;
		}
	}
	return 0;
}

/* The length of `p` without one trailing '/' ("/" stays "/"). */
static size_t trimmed_len(const char *p)
{
	size_t n = strlen(p);

	return n > 1 && p[n - 1] == '/' ? n - 1 : n;
}

bool cb_cgroup_path_under(const char *path, const char *prefix)
{
	size_t pn = trimmed_len(path), xn = trimmed_len(prefix);

	if (xn == 1 && prefix[0] == '/')
		return path[0] == '/';
	if (pn < xn || memcmp(path, prefix, xn) != 0)
		return false;
	return pn == xn || path[xn] == '/';
}

/* Decode mountinfo's octal escapes (\040 space, \011 tab, \012 newline,
 * \134 backslash) of the field [s, e) into out. */
static int unescape(const char *s, const char *e, char *out, size_t len)
{
	size_t o = 0;

	while (s < e) {
		char ch = *s++;

		if (ch == '\\' && e - s >= 3 && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' &&
		    s[1] <= '7' && s[2] >= '0' && s[2] <= '7') {
			ch = (char)((s[0] - '0') << 6 | (s[1] - '0') << 3 | (s[2] - '0'));
			s += 3;
		}
		if (o + 1 >= len)
			return -ENOSPC;
		out[o++] = ch;
	}
	if (!len)
		return -ENOSPC;
	out[o] = '\0';
	return 0;
}

/*
 * mountinfo(5): "36 35 98:0 /root /mnt opts [optional...] - fstype source
 * superopts". Fields are split by single spaces (spaces inside are
 * escaped); the fstype is the field after the lone "-".
 */
static bool mountinfo_line(const char *line, const char **mp, const char **mp_end)
{
	const char *f[64][2];
	size_t nf = 0;
	const char *p = line;

	while (*p && *p != '\n' && nf < 64) {
		const char *s = p;

		while (*p && *p != ' ' && *p != '\n')
			p++;
		f[nf][0] = s;
		f[nf][1] = p;
		nf++;
		while (*p == ' ')
			p++;
	}
	if (nf < 7)
		return false;
	for (size_t i = 6; i + 1 < nf; i++) {
		if (f[i][1] - f[i][0] == 1 && f[i][0][0] == '-') {
			const char *t = f[i + 1][0];
			size_t tn = f[i + 1][1] - t;

			if (tn != 7 || memcmp(t, "cgroup2", 7) != 0)
				return false;
			*mp = f[4][0];
			*mp_end = f[4][1];
			return true;
		}
	}
	return false;
}

int cb_cgroup_find_mount(FILE *mountinfo, char *out, size_t len)
{
	char *line = NULL;
	size_t cap = 0;
	int err = -ENOENT;

	while (getline(&line, &cap, mountinfo) > 0) {
		const char *s, *e;

		if (mountinfo_line(line, &s, &e)) {
			err = unescape(s, e, out, len);
			break;
		}
	}
	if (err == -ENOENT && ferror(mountinfo))
		err = -EIO;
	free(line);
	return err;
}
