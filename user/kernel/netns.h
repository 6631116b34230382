/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * netns.h — find every network namespace of the host and do work inside one,
 * without ever keeping one alive.
 *
 * sock_diag answers for the netns its socket was created in (sock_diag.h), so
 * seeding and reconciling every netns (design.md §2, §3 "Namespaces") means
 * creating that socket inside each one. setns(fd, CLONE_NEWNET) moves only
 * the calling thread, so a worker thread enters a netns, works, and comes
 * back, the way `ip netns exec` does (style.md #34).
 *
 * Contract:
 *  - Nothing here pins a namespace. An fd to /proc/PID/ns/net, or a socket
 *    created inside a netns, keeps it alive after its last process has gone;
 *    a pod's netns must be able to die. So a netns is entered, used and left
 *    within one cb_netns_run_in() call, every fd opened for it is closed
 *    before that call returns, and discovery holds no fd to any netns at all.
 *    The one exception is the daemon's own netns (cb_netns_init), which lives
 *    as long as the daemon anyway. fn passed to cb_netns_run_in() must close
 *    what it creates inside, for the same reason.
 *  - A netns is named by its inode (what /proc/PID/ns/net links to,
 *    "net:[INODE]", and what the BPF programs report as
 *    sk->__sk_common.skc_net.net->ns.inum). A pid or a name only says how to
 *    reach it, and is checked against the inode at every entry: a reused pid
 *    or a re-created name never takes a thread into the wrong netns.
 *  - Reaching other namespaces needs CAP_SYS_ADMIN (setns) and CAP_SYS_PTRACE
 *    (/proc/PID/ns/net of any uid); processes are those of the /proc mounted
 *    in the daemon's mount namespace, names those under /run/netns.
 *  - Thread-safe: after cb_netns_init() the only shared state is read-only.
 */
#ifndef CONNBEAT_NETNS_H
#define CONNBEAT_NETNS_H

#include <stddef.h>
#include <stdint.h>

struct cb_netns_info {
	uint32_t inode; /* the netns inode: "net:[INODE]" */
	int32_t pid;    /* a process living in it (the first found), 0 when only a name reaches it */
	char name[64];  /* its name under /run/netns ("" when unnamed) */
};

/* Call once at start, on the main thread, before privileges are dropped:
 * remember the calling thread's netns as the daemon's own, keeping an fd to
 * it (pinning our own is fine) so that threads can come back to it.
 * 0 or -errno. */
int cb_netns_init(void);

/* The daemon's own netns inode; 0 before cb_netns_init(). */
uint32_t cb_netns_self(void);

/* fn's verdict for one netns: 0 to go on, < 0 to stop (discover returns it). */
typedef int (*cb_netns_fn)(const struct cb_netns_info *ns, void *ctx);

/*
 * Every netns reachable now: those of running processes (one readlink of
 * /proc/PID/ns/net per process, de-duplicated by inode, keeping the first
 * pid in /proc order) and those named under /run/netns (one stat per name;
 * a name whose inode is also a process's is the same netns and fills in
 * name; of two names for one netns the smaller in strcmp order is kept).
 * Cost O(processes + names), no fd held to any netns.
 *
 * The scan completes before fn is first called, so fn may take its time
 * (run_in, dump) or call discover again. fn may be NULL (count only).
 * Processes that vanish mid-scan, zombies and kernel threads' duplicates are
 * skipped silently; processes whose link cannot be read (EACCES/EPERM) are
 * counted in *unreadable when it is not NULL. /run/netns missing means no
 * names; a file there that is not a mounted namespace (what a failed
 * `ip netns add` leaves) is ignored, and so is a name too long for
 * cb_netns_info.name (with a warning when no process reaches that netns).
 *
 * Returns the number of netns passed to fn, fn's error, or -errno.
 */
int cb_netns_discover(cb_netns_fn fn, void *ctx, uint64_t *unreadable);

/*
 * Run fn(ctx) on the calling thread inside netns `ns`, and come back.
 *
 * Reaches ns through /proc/PID/ns/net, or /run/netns/NAME when pid is 0, or
 * when the pid is gone, unreadable or now in another netns; checks that what
 * it opened is ns->inode; setns(CLONE_NEWNET); closes the fd; calls fn;
 * setns back to the daemon's netns. For the daemon's own netns fn is simply
 * called. Needs cb_netns_init(). Not nested: fn must not call run_in.
 *
 * Returns fn's result, or before fn ran: -ESRCH (the netns is gone or no
 * longer reachable by that pid or name), -EPERM (not allowed to open or
 * enter it), -EINVAL (not initialised, or a malformed name), -EBUSY (called
 * from inside fn of another run_in on this thread), -errno.
 *
 * If going back fails the thread is stranded in a foreign netns: that is
 * logged with cb_err, the call returns -ENOTRECOVERABLE (whatever fn
 * returned), and every later call on that thread returns -ENOTRECOVERABLE
 * without calling fn; the caller must stop using the thread. So fn itself
 * must not return -ENOTRECOVERABLE.
 */
int cb_netns_run_in(const struct cb_netns_info *ns, int (*fn)(void *ctx), void *ctx);

/*
 * A --netns argument, resolved to an inode now. Three forms:
 *  - a decimal inode ("4026532001"): taken only if some netns with that
 *    inode is reachable (cb_netns_discover); if none is but /run/netns has a
 *    file of that name, it is taken as that name;
 *  - a name under /run/netns ("blue");
 *  - a path to a netns file, anything with a '/' ("/proc/1234/ns/net",
 *    "/run/netns/blue").
 * Returns 0, -ENOENT when it names no netns that exists, -EINVAL when it is
 * malformed (empty, ".", "..", a control character, over NAME_MAX, inode 0 or
 * above 2^32-1), or -errno (a path that cannot be looked up). On error a
 * message for the user goes into err (when err is not NULL): which form was
 * tried and why it failed.
 */
int cb_netns_resolve(const char *arg, uint32_t *inode, char *err, size_t errlen);

/* The name under /run/netns of netns `inode` (the smallest in strcmp order
 * when it has several) into buf: 0 with "" when it has none (or /run/netns
 * does not exist), -ERANGE when buf is too small, -EINVAL, -errno. */
int cb_netns_name(uint32_t inode, char *buf, size_t len);

#endif /* CONNBEAT_NETNS_H */
