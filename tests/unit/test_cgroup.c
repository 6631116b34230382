// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for cgroup.h against this machine's real cgroup2 mount (found
 * by the module, cross-checked with libc's getmntent and statfs): each test
 * makes its own cgroups under <mount>/connbeat-test-<pid>/ and its teardown
 * removes them, deepest first, whatever the test did. The rescan limit runs
 * on an injected clock, so nothing here sleeps or depends on timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <mntent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernel/cgroup.h"

#define MAX_DIRS 128

/* ---- fixture: a handle, a fake clock, the cgroups a test made ------------- */

struct fx {
	struct cb_cgroups *c;
	char mount[PATH_MAX];
	char base[64]; /* "/connbeat-test-<pid>", relative to the mount */
	char *dirs[MAX_DIRS]; /* made, in order: removed in reverse */
	int ndirs;
	_Atomic uint64_t now;
};

static uint64_t fake_now(void *ctx)
{
	return atomic_load(&((struct fx *)ctx)->now);
}

static void advance(struct fx *f, uint64_t ns)
{
	atomic_fetch_add(&f->now, ns);
}

/* mkdir <mount><rel>, remembered for the teardown; -errno. Fixtures use
 * this one: a failing setup gets no teardown, so it must not fail_msg. */
static int try_make_cg(struct fx *f, const char *rel)
{
	char abs[2 * PATH_MAX];

	if (f->ndirs >= MAX_DIRS)
		return -E2BIG;
	snprintf(abs, sizeof(abs), "%s%s", f->mount, rel);
	if (mkdir(abs, 0755) < 0) {
		fprintf(stderr, "mkdir %s: %s\n", abs, strerror(errno));
		return -errno;
	}
	f->dirs[f->ndirs++] = strdup(rel);
	return 0;
}

static void make_cg(struct fx *f, const char *rel)
{
	assert_int_equal(try_make_cg(f, rel), 0);
}

static void remove_cg(struct fx *f, const char *rel)
{
	char abs[2 * PATH_MAX];

	snprintf(abs, sizeof(abs), "%s%s", f->mount, rel);
	if (rmdir(abs) < 0)
		fail_msg("rmdir %s: %s", abs, strerror(errno));
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char abs[2 * PATH_MAX];
	int bad = 0;

	while (f->ndirs > 0) {
		char *rel = f->dirs[--f->ndirs];

		snprintf(abs, sizeof(abs), "%s%s", f->mount, rel);
		if (rmdir(abs) < 0 && errno != ENOENT) {
			fprintf(stderr, "teardown: rmdir %s: %s\n", abs, strerror(errno));
			bad = -1;
		}
		free(rel);
	}
	cb_cgroups_close(f->c);
	free(f);
	*state = NULL;
	return bad;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int err;

	if (!f)
		return -1;
	*state = f;
	err = cb_cgroups_open(&f->c);
	if (err) {
		/* this machine has cgroup2: not finding it is a failure */
		fprintf(stderr, "cb_cgroups_open: %s\n", strerror(-err));
		teardown(state);
		return -1;
	}
	snprintf(f->mount, sizeof(f->mount), "%s", cb_cgroups_mount(f->c));
	snprintf(f->base, sizeof(f->base), "/connbeat-test-%d", (int)getpid());
	return 0;
}

/* The base and base/child made, then walked; the clock is ours from here. */
static int setup_tree(void **state)
{
	struct fx *f;
	char rel[128];

	if (setup(state))
		return -1;
	f = *state;
	snprintf(rel, sizeof(rel), "%s/child", f->base);
	if (try_make_cg(f, f->base) || try_make_cg(f, rel) || cb_cgroups_rescan(f->c)) {
		teardown(state);
		return -1;
	}
	atomic_store(&f->now, 1000 * CB_CGROUP_RESCAN_NS);
	cb_cgroups_set_clock(f->c, fake_now, f);
	return 0;
}

static uint64_t rescans(struct fx *f)
{
	uint64_t n;

	cb_cgroups_stats(f->c, &n, NULL);
	return n;
}

static uint64_t ino_of(struct fx *f, const char *rel)
{
	char abs[2 * PATH_MAX];
	struct stat st;

	snprintf(abs, sizeof(abs), "%s%s", f->mount, rel);
	if (stat(abs, &st) < 0)
		fail_msg("stat %s: %s", abs, strerror(errno));
	return st.st_ino;
}

static uint64_t id_of(struct fx *f, const char *rel)
{
	uint64_t id = 0;

	assert_int_equal(cb_cgroups_id(f->c, rel, &id), 0);
	return id;
}

static void assert_path(struct fx *f, uint64_t id, const char *want)
{
	char buf[PATH_MAX];

	assert_int_equal(cb_cgroups_path(f->c, id, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

/* ---- the mount ---------------------------------------------------------- */

static void test_find_mount(void **state)
{
	static const struct {
		const char *text, *want; /* want NULL: -ENOENT */
	} cases[] = {
		/* unified */
		{ "24 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
		  "26 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev shared:4 - cgroup2 cgroup2 rw\n",
		  "/sys/fs/cgroup" },
		/* hybrid: v1 hierarchies first, the unified tree below them */
		{ "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
		  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
		  "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
		  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
		  "/sys/fs/cgroup/unified" },
		/* the first of two; optional fields before the separator */
		{ "41 31 0:38 / /a rw shared:1 master:2 - cgroup2 none rw\n"
		  "42 31 0:38 / /b rw - cgroup2 none rw\n",
		  "/a" },
		/* an escaped space in the mount point */
		{ "41 31 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n", "/mnt/cg two" },
		/* a cgroup namespace's view: the root field is not the mount point */
		{ "41 31 0:38 /../.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup" },
		/* v1 only, a source named cgroup2, garbage: none */
		{ "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup2 rw,cpu\n", NULL },
		{ "garbage\n\n- cgroup2\n", NULL },
		{ "", NULL },
	};
	char out[PATH_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *m = fmemopen((void *)cases[i].text, strlen(cases[i].text) + 1, "r");
		int err;

		assert_non_null(m);
		err = cb_cgroup_find_mount(m, out, sizeof(out));
		fclose(m);
		if (!cases[i].want) {
			assert_int_equal(err, -ENOENT);
		} else {
			assert_int_equal(err, 0);
			assert_string_equal(out, cases[i].want);
		}
	}
	{
		const char *t = "26 24 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
		FILE *m = fmemopen((void *)t, strlen(t), "r");

		assert_int_equal(cb_cgroup_find_mount(m, out, 8), -ENOSPC);
		fclose(m);
	}
}

/* The module's mount is this machine's: the first cgroup2 in libc's view
 * of the mount table, and a cgroup2 filesystem to statfs. */
static void test_mount_is_cgroup2(void **state)
{
	struct fx *f = *state;
	struct mntent *me;
	struct statfs sfs;
	bool seen = false;
	FILE *m;

	assert_true(f->mount[0] == '/');
	assert_int_equal(statfs(f->mount, &sfs), 0);
	assert_true(sfs.f_type == CGROUP2_SUPER_MAGIC);
	m = setmntent("/proc/self/mounts", "r");
	assert_non_null(m);
	while ((me = getmntent(m))) {
		if (strcmp(me->mnt_type, "cgroup2") == 0) {
			assert_string_equal(me->mnt_dir, f->mount);
			seen = true;
			break;
		}
	}
	endmntent(m);
	assert_true(seen);
	print_message("# cgroup2 mount: %s\n", f->mount);
}

/* No cgroup2: a handle all the same, and every lookup answers -ENOENT. */
static void test_no_cgroup2(void **state)
{
	char path[] = "/tmp/connbeat-mountinfo-XXXXXX";
	const char *inputs[2] = { "/dev/null", path };
	/* claims cgroup2 at a directory that is not one */
	const char *lie = "99 1 0:99 / /tmp rw - cgroup2 cgroup2 rw\n";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, lie, strlen(lie)), (ssize_t)strlen(lie));
	close(fd);
	for (int i = 0; i < 2; i++) {
		struct cb_cgroups *c = NULL;
		uint64_t id = 7, n = 7, k = 7;
		char buf[64] = "x";

		assert_int_equal(cb_cgroups_open_mountinfo(inputs[i], &c), -ENOENT);
		assert_non_null(c);
		assert_string_equal(cb_cgroups_mount(c), "");
		assert_int_equal(cb_cgroups_path(c, 1, buf, sizeof(buf)), -ENOENT);
		assert_string_equal(buf, "");
		assert_int_equal(cb_cgroups_id(c, "/", &id), -ENOENT);
		assert_int_equal(cb_cgroups_id(c, "a", &id), -EINVAL);
		assert_int_equal(id, 7);
		assert_int_equal(cb_cgroups_rescan(c), -ENOENT);
		cb_cgroups_stats(c, &n, &k);
		assert_int_equal(n, 0);
		assert_int_equal(k, 0);
		cb_cgroups_close(c);
	}
	unlink(path);
}

/* ---- ids ---------------------------------------------------------------- */

/* What BPF reads (kn->id) is what name_to_handle_at returns as the kernfs
 * file handle (8 bytes, systemd's cgroup id); check that st_ino and the
 * module's id agree with it, for the root, a cgroup and its child. */
static void test_id_is_inode(void **state)
{
	struct fx *f = *state;
	char child[128], abs[2 * PATH_MAX];
	const char *rels[3] = { "/", f->base, child };

	snprintf(child, sizeof(child), "%s/child", f->base);
	for (int i = 0; i < 3; i++) {
		struct {
			struct file_handle fh;
			unsigned char b[MAX_HANDLE_SZ];
		} h;
		uint64_t hid;
		int mnt_id;

		snprintf(abs, sizeof(abs), "%s%s", f->mount, rels[i]);
		h.fh.handle_bytes = MAX_HANDLE_SZ;
		assert_int_equal(name_to_handle_at(AT_FDCWD, abs, &h.fh, &mnt_id, 0), 0);
		assert_int_equal(h.fh.handle_bytes, sizeof(uint64_t));
		memcpy(&hid, h.fh.f_handle, sizeof(hid));
		assert_int_equal(hid, ino_of(f, rels[i]));
		assert_int_equal(id_of(f, rels[i]), hid);
		print_message("# %s: st_ino = handle id = %llu\n", rels[i],
			      (unsigned long long)hid);
	}
}

static void test_id_errors(void **state)
{
	struct fx *f = *state;
	char rel[256];
	uint64_t id = 42;

	snprintf(rel, sizeof(rel), "%s/no-such-child", f->base);
	assert_int_equal(cb_cgroups_id(f->c, rel, &id), -ENOENT);
	/* control files are not cgroups, nor below them */
	assert_int_equal(cb_cgroups_id(f->c, "/cgroup.procs", &id), -ENOENT);
	assert_int_equal(cb_cgroups_id(f->c, "/cgroup.procs/x", &id), -ENOENT);
	assert_int_equal(cb_cgroups_id(f->c, "/..", &id), -EINVAL);
	assert_int_equal(cb_cgroups_id(f->c, "relative", &id), -EINVAL);
	assert_int_equal(id, 42);
	/* a trailing '/' names the same cgroup */
	snprintf(rel, sizeof(rel), "%s/", f->base);
	assert_int_equal(id_of(f, rel), id_of(f, f->base));
}

/* ---- id -> path ------------------------------------------------------------ */

static void test_path_of_id(void **state)
{
	struct fx *f = *state;
	char child[128], buf[PATH_MAX];
	uint64_t id = id_of(f, f->base), cid, n = rescans(f);
	size_t need;

	snprintf(child, sizeof(child), "%s/child", f->base);
	cid = id_of(f, child);
	assert_path(f, id, f->base);
	assert_path(f, cid, child);
	assert_path(f, id_of(f, "/"), "/");
	assert_int_equal(rescans(f), n); /* all from the cache */

	/* exactly big enough, and one byte short */
	need = strlen(child) + 1;
	assert_int_equal(cb_cgroups_path(f->c, cid, buf, need), 0);
	assert_string_equal(buf, child);
	assert_int_equal(cb_cgroups_path(f->c, cid, buf, need - 1), -ENOSPC);
	assert_string_equal(buf, "");
	assert_int_equal(cb_cgroups_path(f->c, id_of(f, "/"), buf, 1), -ENOSPC);
	assert_int_equal(cb_cgroups_path(f->c, id_of(f, "/"), buf, 2), 0);
	assert_string_equal(buf, "/");
}

/* Only directories are cgroups: the inode of a control file is no id. */
static void test_files_skipped(void **state)
{
	struct fx *f = *state;
	char rel[128], buf[PATH_MAX];
	uint64_t ino;

	snprintf(rel, sizeof(rel), "%s/cgroup.procs", f->base);
	ino = ino_of(f, rel);
	advance(f, CB_CGROUP_RESCAN_NS); /* let it walk: still not a cgroup */
	assert_int_equal(cb_cgroups_path(f->c, ino, buf, sizeof(buf)), -ENOENT);
}

/* A cgroup made after the walk is learnt by the walk an unknown id
 * triggers, once the interval has passed, and not before. */
static void test_new_cgroup_learnt(void **state)
{
	struct fx *f = *state;
	char rel[128], buf[PATH_MAX];
	uint64_t id, n;

	snprintf(rel, sizeof(rel), "%s/child/late", f->base);
	make_cg(f, rel);
	id = id_of(f, rel);
	n = rescans(f);
	assert_int_equal(cb_cgroups_path(f->c, id, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n); /* within the interval: no walk */
	advance(f, CB_CGROUP_RESCAN_NS);
	assert_path(f, id, rel);
	assert_int_equal(rescans(f), n + 1);
	assert_path(f, id, rel);
	assert_int_equal(rescans(f), n + 1); /* known now: no walk */
}

/* A removed cgroup is forgotten by the next walk, forced or triggered. */
static void test_removed_forgotten(void **state)
{
	struct fx *f = *state;
	char child[128], late[128], buf[PATH_MAX];
	uint64_t cid, lid, bid = id_of(f, f->base), n;

	snprintf(child, sizeof(child), "%s/child", f->base);
	snprintf(late, sizeof(late), "%s/late", f->base);
	make_cg(f, late);
	cid = id_of(f, child);
	lid = id_of(f, late);
	assert_int_equal(cb_cgroups_rescan(f->c), 0);
	assert_path(f, lid, late);

	/* forced */
	remove_cg(f, child);
	assert_path(f, cid, child); /* the cache is a walk old: stale, not wrong */
	assert_int_equal(cb_cgroups_rescan(f->c), 0);
	n = rescans(f);
	assert_int_equal(cb_cgroups_path(f->c, cid, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n); /* the forced walk counts as the last */
	assert_path(f, bid, f->base);

	/* triggered by an unknown id */
	remove_cg(f, late);
	assert_path(f, lid, late);
	advance(f, CB_CGROUP_RESCAN_NS);
	assert_int_equal(cb_cgroups_path(f->c, UINT64_MAX, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 1);
	assert_int_equal(cb_cgroups_path(f->c, lid, buf, sizeof(buf)), -ENOENT);
	assert_path(f, bid, f->base);
}

/* A flood of unknown ids costs one walk per interval; and the ids that walk
 * did not find, asked before it began, cost none again (as many as are
 * remembered: FLOOD is below the 512 of the contract). */
#define FLOOD 400
static void test_rescan_limit(void **state)
{
	struct fx *f = *state;
	char buf[PATH_MAX];
	uint64_t n = rescans(f), fresh = UINT64_MAX - 5000;

	for (uint64_t i = 0; i < FLOOD; i++)
		assert_int_equal(cb_cgroups_path(f->c, UINT64_MAX - i, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n); /* within the interval of the setup's walk */
	advance(f, CB_CGROUP_RESCAN_NS);
	for (uint64_t i = 0; i < FLOOD; i++)
		assert_int_equal(cb_cgroups_path(f->c, UINT64_MAX - i, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 1); /* the first walked; the rest came within its interval */

	/* those are dead now: no walk for them, interval or not */
	advance(f, 10 * CB_CGROUP_RESCAN_NS);
	for (uint64_t i = 0; i < FLOOD; i++)
		assert_int_equal(cb_cgroups_path(f->c, UINT64_MAX - i, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 1);
	/* a fresh one walks, once the interval has passed */
	assert_int_equal(cb_cgroups_path(f->c, fresh--, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 2);
	advance(f, CB_CGROUP_RESCAN_NS - 1);
	assert_int_equal(cb_cgroups_path(f->c, fresh--, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 2);
	advance(f, 1);
	assert_int_equal(cb_cgroups_path(f->c, fresh--, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 3);

	/* interval 0: a walk for every fresh unknown id, none for a dead one */
	cb_cgroups_set_rescan_interval(f->c, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cb_cgroups_path(f->c, fresh--, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 6);
	assert_int_equal(cb_cgroups_path(f->c, fresh + 1, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 6);

	/* more unknown ids than are remembered: still one walk per interval */
	cb_cgroups_set_rescan_interval(f->c, CB_CGROUP_RESCAN_NS);
	advance(f, CB_CGROUP_RESCAN_NS);
	for (uint64_t i = 0; i < 5000; i++)
		assert_int_equal(cb_cgroups_path(f->c, (UINT64_MAX >> 1) - i, buf, sizeof(buf)),
				 -ENOENT);
	assert_int_equal(rescans(f), n + 7);
}

/* A socket's cgroup removed before it was ever walked: its id is asked
 * (within the interval, so pending), then walked for, then dead. Id 0 is
 * never walked for. */
static void test_dead_id(void **state)
{
	struct fx *f = *state;
	char rel[128], buf[PATH_MAX];
	uint64_t id, n;

	snprintf(rel, sizeof(rel), "%s/short-lived", f->base);
	make_cg(f, rel);
	id = id_of(f, rel);
	remove_cg(f, rel);
	n = rescans(f);
	assert_int_equal(cb_cgroups_path(f->c, id, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n);
	advance(f, CB_CGROUP_RESCAN_NS);
	assert_int_equal(cb_cgroups_path(f->c, id, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 1);
	advance(f, CB_CGROUP_RESCAN_NS);
	assert_int_equal(cb_cgroups_path(f->c, id, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(cb_cgroups_path(f->c, 0, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(rescans(f), n + 1);
	/* known ids still answer */
	assert_path(f, id_of(f, f->base), f->base);
}

/* Deep trees: CB_CGROUP_MAX_DEPTH levels below the mount are walked (the
 * base is level 1), the level below is not. */
static void test_depth(void **state)
{
	struct fx *f = *state;
	char rel[PATH_MAX], buf[PATH_MAX];
	uint64_t last_in = 0, first_out;

	snprintf(rel, sizeof(rel), "%s", f->base);
	for (unsigned int level = 2; level <= CB_CGROUP_MAX_DEPTH + 1; level++) {
		strcat(rel, "/d");
		make_cg(f, rel);
		if (level == CB_CGROUP_MAX_DEPTH)
			last_in = id_of(f, rel);
	}
	first_out = id_of(f, rel);
	assert_int_equal(cb_cgroups_rescan(f->c), 0);
	rel[strlen(rel) - 2] = '\0';
	assert_path(f, last_in, rel);
	assert_int_equal(cb_cgroups_path(f->c, first_out, buf, sizeof(buf)), -ENOENT);
}

/* Threads asking together, while another forces walks: always the right
 * answers, and the unknown ids cost at most one walk between them all. */
struct worker {
	struct fx *f;
	uint64_t known;
	const char *want;
	int bad;
};

static void *ask(void *arg)
{
	struct worker *w = arg;
	char buf[PATH_MAX];

	for (int i = 0; i < 2000; i++) {
		if (cb_cgroups_path(w->f->c, w->known, buf, sizeof(buf)) || strcmp(buf, w->want))
			w->bad++;
		if (cb_cgroups_path(w->f->c, UINT64_MAX - i, buf, sizeof(buf)) != -ENOENT)
			w->bad++;
	}
	return NULL;
}

static void *force(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 20; i++)
		if (cb_cgroups_rescan(w->f->c))
			w->bad++;
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *f = *state;
	char child[128];
	struct worker w[5];
	pthread_t t[5];
	uint64_t n = rescans(f), cached;

	snprintf(child, sizeof(child), "%s/child", f->base);
	advance(f, CB_CGROUP_RESCAN_NS);
	for (int i = 0; i < 5; i++) {
		w[i] = (struct worker){ .f = f, .known = id_of(f, i % 2 ? child : f->base),
					.want = i % 2 ? child : f->base };
		assert_int_equal(pthread_create(&t[i], NULL, i < 4 ? ask : force, &w[i]), 0);
	}
	for (int i = 0; i < 5; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	/* 20 forced; one more if an unknown id came before the first of them */
	assert_in_range(rescans(f), n + 20, n + 21);
	cb_cgroups_stats(f->c, NULL, &cached);
	assert_true(cached >= 3); /* the root, the base, the child at least */
}

/* ---- paths as strings ----------------------------------------------------- */

static void test_path_check(void **state)
{
	static const struct {
		const char *path;
		int want;
		const char *says; /* in the message */
	} cases[] = {
		{ "/", 0, NULL },
		{ "/system.slice", 0, NULL },
		{ "/system.slice/nginx.service", 0, NULL },
		{ "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-0a1b.scope", 0, NULL },
		{ "/a/", 0, NULL },
		{ "/...", 0, NULL },
		{ "/.a/..b/a..", 0, NULL },
		{ "/with space/and\ttab", 0, NULL },
		{ "", -EINVAL, "empty" },
		{ "system.slice", -EINVAL, "start with '/'" },
		{ "./a", -EINVAL, "start with '/'" },
		{ "//", -EINVAL, "//" },
		{ "//a", -EINVAL, "//" },
		{ "/a//b", -EINVAL, "//" },
		{ "/a//", -EINVAL, "//" },
		{ "/..", -EINVAL, "\"..\"" },
		{ "/a/..", -EINVAL, "\"..\"" },
		{ "/a/../b", -EINVAL, "\"..\"" },
		{ "/../", -EINVAL, "\"..\"" },
		{ "/.", -EINVAL, "\".\"" },
		{ "/a/./b", -EINVAL, "\".\"" },
	};
	char err[256], name[NAME_MAX + 3], *longp;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = cb_cgroup_path_check(cases[i].path, err, sizeof(err));

		if (r != cases[i].want)
			fail_msg("'%s': got %d, want %d (%s)", cases[i].path, r, cases[i].want,
				 err);
		if (cases[i].says && !strstr(err, cases[i].says))
			fail_msg("'%s': message '%s' does not say '%s'", cases[i].path, err,
				 cases[i].says);
		if (!cases[i].says)
			assert_string_equal(err, "");
	}
	assert_int_equal(cb_cgroup_path_check(NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(cb_cgroup_path_check("nope", NULL, 0), -EINVAL);
	assert_int_equal(cb_cgroup_path_check("nope", err, 8), -EINVAL); /* truncated, ok */

	/* names up to NAME_MAX */
	name[0] = '/';
	memset(name + 1, 'n', NAME_MAX);
	name[NAME_MAX + 1] = '\0';
	assert_int_equal(cb_cgroup_path_check(name, err, sizeof(err)), 0);
	name[NAME_MAX + 1] = 'n';
	name[NAME_MAX + 2] = '\0';
	assert_int_equal(cb_cgroup_path_check(name, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NAME_MAX"));

	/* paths up to PATH_MAX - 1 bytes: "/n/n/n..." */
	longp = malloc(PATH_MAX + 1);
	assert_non_null(longp);
	for (int i = 0; i < PATH_MAX; i++)
		longp[i] = i % 2 ? 'n' : '/';
	longp[PATH_MAX - 1] = '\0';
	assert_int_equal(cb_cgroup_path_check(longp, err, sizeof(err)), 0);
	longp[PATH_MAX - 1] = 'n';
	longp[PATH_MAX] = '\0';
	assert_int_equal(cb_cgroup_path_check(longp, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than"));
	free(longp);
}

static void test_path_under(void **state)
{
	static const struct {
		const char *path, *prefix;
		bool want;
	} cases[] = {
		{ "/a", "/a", true },
		{ "/a/b", "/a", true },
		{ "/a/b/c", "/a/b", true },
		{ "/a", "/", true },
		{ "/", "/", true },
		{ "/a/", "/a", true },
		{ "/a", "/a/", true },
		{ "/a/b", "/a/", true },
		{ "/ab", "/a", false },
		{ "/a", "/ab", false },
		{ "/", "/a", false },
		{ "/a", "/a/b", false },
		{ "/b/a", "/a", false },
		{ "/system.slice/nginx.service", "/system.slice", true },
		{ "/system.slice-x/nginx.service", "/system.slice", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cb_cgroup_path_under(cases[i].path, cases[i].prefix) != cases[i].want)
			fail_msg("under('%s', '%s') != %d", cases[i].path, cases[i].prefix,
				 cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_mount),
		cmocka_unit_test(test_no_cgroup2),
		cmocka_unit_test(test_path_check),
		cmocka_unit_test(test_path_under),
		cmocka_unit_test_setup_teardown(test_mount_is_cgroup2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_is_inode, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_id_errors, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_path_of_id, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_files_skipped, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_new_cgroup_learnt, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_removed_forgotten, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_rescan_limit, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_dead_id, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_depth, setup_tree, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup_tree, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
