/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cgroup.h — name the cgroup v2 a socket belongs to.
 *
 * The programs can only hand over a number: the cgroup's kernfs id,
 * BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id), the value
 * bpf_get_current_cgroup_id() returns too. On a 64-bit kernel that id *is*
 * the inode number of the cgroup's directory in cgroup2fs (kernfs_ino()
 * returns kn->id whole when ino_t is 64 bits): the number stat(2) gives as
 * st_ino and name_to_handle_at(2) as its 8-byte handle (systemd's cgroup
 * id). tests/unit/test_cgroup.c checks those two against each other; that
 * the programs read the same was checked on the build machine (6.18) with a
 * tp_btf program reading both for a socket made in a test cgroup. On a
 * 32-bit kernel st_ino is only the low half; connbeat targets x86_64 and
 * arm64.
 *
 * This module turns ids into paths relative to the cgroup2 mount, the way a
 * user writes them ("/system.slice/nginx.service", "/" for the mount's root)
 * and back, by walking the tree: the one kernel call from id to directory,
 * open_by_handle_at(2), needs CAP_DAC_READ_SEARCH, which the daemon drops
 * after loading. For the same reason a delegated subtree that uid 0 cannot
 * read without that capability (a user's 0700 cgroup) is not walked.
 *
 * Contract:
 *  - The cgroup2 mount is the first mount of type cgroup2 in
 *    /proc/self/mountinfo: /sys/fs/cgroup on a unified host,
 *    /sys/fs/cgroup/unified on a hybrid one. A host without cgroup2 is not an
 *    error for the daemon: it gets a handle whose every lookup answers
 *    -ENOENT, and runs on with cgroup null.
 *  - Paths are relative to that mount. Under a cgroup namespace, or when the
 *    mount shows a subtree, cgroups outside what the mount shows are not
 *    found (-ENOENT): a path that cannot be opened is no path.
 *  - cb_cgroups_path() answers from a cache (id -> parent + name) built by a
 *    walk of the tree. An id the cache does not know triggers a new walk, at
 *    most one per rescan interval (CB_CGROUP_RESCAN_NS), so a flood of
 *    unknown ids costs one walk per interval, not one per id. A walk
 *    replaces the whole cache, so cgroups that are gone are forgotten (and a
 *    renamed one keeps its old name until then).
 *  - Ids are never reused by the kernel (64-bit, a generation in the high
 *    half), so an entry that outlives its cgroup until the next walk is
 *    stale, never wrong; and an id that a walk begun after it was asked for
 *    did not find is dead for good: asking again answers -ENOENT without
 *    walking (the sockets of a removed cgroup would otherwise cost a walk
 *    every interval for as long as they live). Id 0 (a socket without a
 *    cgroup) is always -ENOENT.
 *  - -ENOENT for an id first asked within an interval of the last walk is
 *    not final: a cgroup made since that walk is found by the next one,
 *    which the next ask after the interval starts. Ask again later.
 *  - A walk costs about 7 µs per cgroup on the 2-core build machine (2,000
 *    cgroups: 15 ms), so 65,536 cgroups take about half a second.
 *  - Thread-safe: one mutex guards the cache, held only to look up and copy
 *    a path, never across a walk, so known ids are answered while a walk
 *    runs. The walk runs in the thread whose unknown id triggered it; one
 *    runs at a time, and a caller that needs one while another runs waits
 *    for it and uses its result.
 *  - Bounded: at most CB_CGROUP_MAX cgroups are cached and at most
 *    CB_CGROUP_MAX_DEPTH levels below the mount are walked. Past either,
 *    the walk records no more (warns, rate-limited) and those cgroups answer
 *    -ENOENT. Memory: about 40 B per cgroup plus its name (≤ NAME_MAX), twice
 *    over while a walk builds the next cache beside the current one, and
 *    32 KiB for the unknown ids (at most 512 remembered; then forgotten all
 *    at once, which costs at most a walk per interval).
 */
#ifndef CONNBEAT_CGROUP_H
#define CONNBEAT_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CB_CGROUP_RESCAN_NS 1000000000ULL /* at most one walk per second */
#define CB_CGROUP_MAX 65536u              /* cgroups cached */
#define CB_CGROUP_MAX_DEPTH 64u           /* levels below the mount walked */

struct cb_cgroups;

/*
 * Find the cgroup2 mount in /proc/self/mountinfo, open it and walk it once.
 * 0; -ENOENT when the host has no cgroup2 (*out is still a handle, with
 * mount "" and every lookup -ENOENT: close it as usual); another -errno
 * (*out = NULL) when the mount cannot be read or memory runs out.
 */
int cb_cgroups_open(struct cb_cgroups **out);

/* The same, reading the mount table from `mountinfo` instead (tests). */
int cb_cgroups_open_mountinfo(const char *mountinfo, struct cb_cgroups **out);

void cb_cgroups_close(struct cb_cgroups *c);

/* The mount point, e.g. "/sys/fs/cgroup/unified"; "" when there is none. */
const char *cb_cgroups_mount(const struct cb_cgroups *c);

/*
 * The path of cgroup `id` relative to the mount into buf ("/" for the
 * mount's root). 0; -ENOENT when it is not a cgroup this handle can find
 * (id 0, a dead id, or one not found yet: see the contract); -ENOSPC when
 * buf is too small (buf is then ""). May walk the tree (see the contract).
 */
int cb_cgroups_path(struct cb_cgroups *c, uint64_t id, char *buf, size_t len);

/*
 * The id of the cgroup at `path` (relative to the mount, "/system.slice"),
 * asked of the filesystem now, not of the cache. 0; -EINVAL when the path is
 * malformed (see cb_cgroup_path_check()); -ENOENT when no such cgroup exists
 * now (or there is no mount); another -errno when the kernel refuses the
 * stat.
 */
int cb_cgroups_id(struct cb_cgroups *c, const char *path, uint64_t *id);

/*
 * Walk the tree now, whatever the rescan interval (the daemon may call it
 * on a timer; tests call it after rmdir). 0, -ENOENT without a mount, or
 * -errno when the mount's root cannot be read (the cache is then kept).
 */
int cb_cgroups_rescan(struct cb_cgroups *c);

/* How many walks have been started (the one in open included) and how many
 * cgroups the cache holds now. For metrics; either pointer may be NULL. */
void cb_cgroups_stats(const struct cb_cgroups *c, uint64_t *rescans, uint64_t *cached);

/* For tests: the minimum time between two walks triggered by unknown ids
 * (default CB_CGROUP_RESCAN_NS; 0: a walk per unknown id), and the clock it
 * is measured on (default CLOCK_MONOTONIC; NULL restores it). Setting a
 * clock counts the last walk as made at its now. */
void cb_cgroups_set_rescan_interval(struct cb_cgroups *c, uint64_t ns);
void cb_cgroups_set_clock(struct cb_cgroups *c, uint64_t (*now_ns)(void *ctx), void *ctx);

/*
 * Validate a cgroup path (a --cgroup argument) without touching the
 * filesystem. Well formed: "/" or "/" followed by names separated by single
 * '/', an optional trailing '/' ("/a/" is "/a"); no name "." or ".."; no
 * name longer than NAME_MAX (no such directory can exist); at most
 * PATH_MAX - 1 bytes. 0, or -EINVAL with a message in err naming what is
 * wrong (err may be NULL).
 */
int cb_cgroup_path_check(const char *path, char *err, size_t errlen);

/*
 * Is `path` equal to `prefix` or below it? "/a" is under "/a" and "/", and
 * "/a/b" under "/a", but "/ab" is not under "/a". A trailing '/' on either
 * is ignored. Pure string logic on well-formed paths.
 */
bool cb_cgroup_path_under(const char *path, const char *prefix);

/*
 * The mount point of the first cgroup2 mount in a mountinfo(5) stream, its
 * octal escapes (\040 for a space) decoded, into out. 0; -ENOENT when there
 * is none; -ENOSPC when out is too small; -EIO on a read error.
 */
int cb_cgroup_find_mount(FILE *mountinfo, char *out, size_t len);

#endif /* CONNBEAT_CGROUP_H */
