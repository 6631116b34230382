// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loader.c — see loader.h. */
#include "kernel/loader.h"
#include "kernel/hbmap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "connbeat.skel.h"
#include "common/log.h"
#include "common/parse.h"

/* Kernel-style typedefs must not leak into user code (style.md #10). */
#pragma GCC poison u8 u16 u32 u64

#define BPFFS_MOUNT "/sys/fs/bpf"
#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define TP_BTF_PREFIX "tp_btf/"
/* CB_MAX_CPUS in bpf/connbeat.bpf.c: the summing loop's verifier bound. */
#define CB_BPF_MAX_CPUS 1024

struct cb_loader {
	struct cb_loader_opts cfg; /* defaults filled in; pin_dir points to pin_dir[] */
	char pin_dir[256];
	int lock_fd;
	struct connbeat_bpf *skel;
	struct ring_buffer *rings;
	bool attached;
};

/* ---- libbpf's log through ours (style.md #24) ---- */

static bool libbpf_verbose;
/* Set when libbpf refused a pinned map whose definition differs: the one
 * load failure that unpinning and retrying can fix. */
static bool libbpf_reuse_failed;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL, *line, *save = NULL;
	int n;

	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	n = vasprintf(&msg, fmt, ap);
	if (n < 0)
		return 0;
	if (strstr(msg, "couldn't reuse pinned map"))
		libbpf_reuse_failed = true;
	/* Multi-line messages (the verifier log) become one log line each;
	 * libbpf starts its own lines with "libbpf: " already. */
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (level == LIBBPF_WARN)
			cb_warn("%s", line);
		else
			cb_dbg("%s", line);
	}
	free(msg);
	return n;
}

int cb_loader_nr_cpus(void)
{
	static int n;

	if (!n) {
		int r = libbpf_num_possible_cpus();

		n = r > 0 ? r : 1;
	}
	return n;
}

int cb_loader_check_ring_size(uint64_t bytes, const char **why)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	const char *w = NULL;

	if (bytes < page)
		w = "smaller than one page";
	else if (bytes > CB_RING_MAX_BYTES)
		w = "larger than 1GiB";
	else if (bytes & (bytes - 1))
		w = "not a power of two";
	else if (bytes % page)
		w = "not a multiple of the page size";
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

/* ---- preconditions ---- */

/* Root, or the capabilities that loading tracing programs needs. */
static int check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
	bool bpf, perfmon, admin;

	if (geteuid() == 0)
		return 0;
	if (syscall(SYS_capget, &hdr, data) == 0) {
		admin = data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN);
		bpf = data[CAP_TO_INDEX(CAP_BPF)].effective & CAP_TO_MASK(CAP_BPF);
		perfmon = data[CAP_TO_INDEX(CAP_PERFMON)].effective & CAP_TO_MASK(CAP_PERFMON);
		if (admin || (bpf && perfmon))
			return 0;
	}
	cb_err("not running as root: loading the tracing programs needs root (CAP_BPF and "
	       "CAP_PERFMON, or CAP_SYS_ADMIN); run connbeatd with sudo");
	return -EPERM;
}

static int check_btf(void)
{
	if (access(VMLINUX_BTF, R_OK) == 0)
		return 0;
	cb_err("this kernel exposes no BTF (%s: %s): connbeat's CO-RE programs need a kernel "
	       "built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.8+; stock Debian/Ubuntu/Fedora "
	       "kernels have it)",
	       VMLINUX_BTF, strerror(errno));
	return -ENOENT;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/* Is the nearest existing ancestor of `dir` (or dir itself) on a bpffs? */
static bool on_bpffs(const char *dir)
{
	char buf[sizeof(((struct cb_loader *)0)->pin_dir)];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", dir);
	for (;;) {
		if (access(buf, F_OK) == 0)
			return is_bpffs(buf);
		slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			return false;
		*slash = '\0';
	}
}

/* Mount bpffs on /sys/fs/bpf when the pin dir needs it and it is not there,
 * as Cilium does: a fresh host may have sysfs's empty /sys/fs/bpf only. */
static int ensure_bpffs(const char *pin_dir)
{
	size_t mlen = strlen(BPFFS_MOUNT);
	struct stat st;

	if (on_bpffs(pin_dir))
		return 0;
	if (strncmp(pin_dir, BPFFS_MOUNT, mlen) || (pin_dir[mlen] && pin_dir[mlen] != '/')) {
		cb_err("--pin-dir %s is not on a bpffs: choose a directory under %s, or mount one "
		       "first (mount -t bpf bpf DIR)",
		       pin_dir, BPFFS_MOUNT);
		return -EINVAL;
	}
	if (stat(BPFFS_MOUNT, &st) && (errno != ENOENT || mkdir(BPFFS_MOUNT, 0755))) {
		int err = -errno;

		cb_err("cannot mount bpffs: %s is missing and cannot be created (%s); mount it by "
		       "hand (mount -t bpf bpf %s) and start connbeatd again",
		       BPFFS_MOUNT, strerror(-err), BPFFS_MOUNT);
		return err;
	}
	if (mount("bpf", BPFFS_MOUNT, "bpf", 0, "mode=0700")) {
		int err = -errno;

		cb_err("cannot mount bpffs on %s (%s); mount it by hand (mount -t bpf bpf %s) "
		       "and start connbeatd again",
		       BPFFS_MOUNT, strerror(-err), BPFFS_MOUNT);
		return err;
	}
	cb_info("mounted bpffs on %s (it was not mounted)", BPFFS_MOUNT);
	return 0;
}

/* mkdir -p below the bpffs mount, mode 0700. */
static int make_pin_dir(const char *dir)
{
	char buf[sizeof(((struct cb_loader *)0)->pin_dir)];
	char *p;

	snprintf(buf, sizeof(buf), "%s", dir);
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST) {
			int err = -errno;

			cb_err("cannot create pin directory %s: %s", buf, strerror(-err));
			return err;
		}
		if (!c)
			return 0;
		*p = c;
	}
}

/* The pid holding a flock on (dev, ino), from /proc/locks; 0 if unknown. */
static long lock_owner(const struct stat *st)
{
	char line[256];
	long owner = 0;
	FILE *f = fopen("/proc/locks", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned int maj, min;
		unsigned long ino;
		long pid;

		/* "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF" */
		if (sscanf(line, "%*d: FLOCK %*s WRITE %ld %x:%x:%lu", &pid, &maj, &min, &ino) != 4)
			continue;
		if (ino == st->st_ino && maj == (unsigned int)major(st->st_dev) &&
		    min == (unsigned int)minor(st->st_dev)) {
			owner = pid;
			break;
		}
	}
	fclose(f);
	return owner;
}

/* Take the pin directory for this process: one daemon per pin dir, because
 * two would both consume the same rings and fight over the maps. flock(2)
 * on the directory itself: released by the kernel when we exit, even by
 * kill -9, so a crash never leaves a stale lock behind. */
static int lock_pin_dir(struct cb_loader *l)
{
	struct stat st;
	long owner;
	int err;

	l->lock_fd = open(l->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->lock_fd < 0) {
		err = -errno;
		cb_err("cannot open pin directory %s: %s", l->pin_dir, strerror(-err));
		return err;
	}
	if (flock(l->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	err = -errno;
	if (err != -EWOULDBLOCK) {
		cb_err("cannot lock pin directory %s: %s", l->pin_dir, strerror(-err));
		return err;
	}
	owner = fstat(l->lock_fd, &st) == 0 ? lock_owner(&st) : 0;
	if (owner)
		cb_err("pin directory %s is in use by another connbeatd (pid %ld): stop it first, "
		       "or give this one another --pin-dir",
		       l->pin_dir, owner);
	else
		cb_err("pin directory %s is in use by another connbeatd: stop it first, or give "
		       "this one another --pin-dir",
		       l->pin_dir);
	return -EBUSY;
}

/* ---- tracepoints ---- */

size_t cb_loader_missing_tracepoints(const struct btf *vmlinux_btf, const char *const *names,
				     size_t n, size_t *missing)
{
	char tname[128];
	size_t nmiss = 0;

	for (size_t i = 0; i < n; i++) {
		snprintf(tname, sizeof(tname), "btf_trace_%s", names[i]);
		if (btf__find_by_name_kind(vmlinux_btf, tname, BTF_KIND_TYPEDEF) < 0)
			missing[nmiss++] = i;
	}
	return nmiss;
}

/* Name every tracepoint this kernel lacks, instead of libbpf's "failed to
 * find kernel BTF type ID" (style.md #5: report it, no fallback). */
static int check_tracepoints(struct connbeat_bpf *skel)
{
	const char *names[CB_LOADER_MAX_PROGS];
	size_t missing[CB_LOADER_MAX_PROGS], n = 0, nmiss;
	struct bpf_program *prog;
	struct btf *vmlinux;
	char list[512] = "";

	bpf_object__for_each_program(prog, skel->obj) {
		const char *sec = bpf_program__section_name(prog);

		if (n < CB_LOADER_MAX_PROGS && !strncmp(sec, TP_BTF_PREFIX, strlen(TP_BTF_PREFIX)))
			names[n++] = sec + strlen(TP_BTF_PREFIX);
	}
	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux) {
		int err = -errno;

		cb_err("cannot read this kernel's BTF (%s): %s", VMLINUX_BTF, strerror(-err));
		return err;
	}
	nmiss = cb_loader_missing_tracepoints(vmlinux, names, n, missing);
	btf__free(vmlinux);
	if (!nmiss)
		return 0;
	for (size_t i = 0; i < nmiss; i++) {
		size_t len = strlen(list);

		snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[missing[i]]);
	}
	cb_err("this kernel lacks the tracepoint%s %s, which connbeat needs: use a kernel that "
	       "has it (Linux 6.x)",
	       nmiss > 1 ? "s" : "", list);
	return -ENOENT;
}

/* ---- pinned maps ---- */

/* Do two BTF types have the same layout? Names, sizes and offsets of the
 * members, recursively: a field renamed or moved at the same total size is
 * a different ABI, which the size checks alone would miss. */
static bool btf_layout_equal(const struct btf *a, __u32 ida, const struct btf *b, __u32 idb,
			     int depth)
{
	const struct btf_type *ta, *tb;
	int ra = btf__resolve_type(a, ida), rb = btf__resolve_type(b, idb);

	if (ra < 0 || rb < 0 || depth > 4)
		return ra >= 0 && rb >= 0;
	ta = btf__type_by_id(a, ra);
	tb = btf__type_by_id(b, rb);
	if (!ta || !tb || btf_kind(ta) != btf_kind(tb) ||
	    btf__resolve_size(a, ra) != btf__resolve_size(b, rb))
		return false;
	if (btf_is_array(ta)) {
		const struct btf_array *aa = btf_array(ta), *ab = btf_array(tb);

		return aa->nelems == ab->nelems &&
		       btf_layout_equal(a, aa->type, b, ab->type, depth + 1);
	}
	if (!btf_is_composite(ta))
		return true;
	if (btf_vlen(ta) != btf_vlen(tb))
		return false;
	for (__u16 i = 0; i < btf_vlen(ta); i++) {
		const struct btf_member *ma = btf_members(ta) + i, *mb = btf_members(tb) + i;
		const char *na = btf__name_by_offset(a, ma->name_off);
		const char *nb = btf__name_by_offset(b, mb->name_off);

		if (ma->offset != mb->offset || strcmp(na ? na : "", nb ? nb : ""))
			return false;
		if (!btf_layout_equal(a, ma->type, b, mb->type, depth + 1))
			return false;
	}
	return true;
}

/* Why the map pinned at `path` cannot be reused for `map` (NULL: it can). */
static const char *pinned_mismatch(const struct bpf_object *obj, const struct bpf_map *map,
				   const char *path, char *buf, size_t len)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	const struct btf *ours = bpf_object__btf(obj);
	struct btf *theirs = NULL;
	const char *why = NULL;
	int fd = bpf_obj_get(path);

	if (fd < 0) {
		snprintf(buf, len, "not a BPF map (%s)", strerror(errno));
		return buf;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
		snprintf(buf, len, "not a BPF map (%s)", strerror(errno));
		why = buf;
	} else if (info.type != bpf_map__type(map)) {
		snprintf(buf, len, "map type %u, want %u", info.type, bpf_map__type(map));
		why = buf;
	} else if (info.key_size != bpf_map__key_size(map) ||
		   info.value_size != bpf_map__value_size(map)) {
		snprintf(buf, len, "key/value size %u/%u, want %u/%u", info.key_size,
			 info.value_size, bpf_map__key_size(map), bpf_map__value_size(map));
		why = buf;
	} else if (info.max_entries != bpf_map__max_entries(map)) {
		snprintf(buf, len, "%u entries, want %u", info.max_entries,
			 bpf_map__max_entries(map));
		why = buf;
	} else if (info.map_flags != bpf_map__map_flags(map)) {
		snprintf(buf, len, "flags 0x%x, want 0x%x", info.map_flags,
			 bpf_map__map_flags(map));
		why = buf;
	} else if (bpf_map__btf_value_type_id(map) && ours) {
		/* Our maps with typed keys/values must stay BTF-typed, so that
		 * bpftool prints field names, and keep the same layout. */
		if (!info.btf_id || !info.btf_value_type_id) {
			why = "no BTF type information";
		} else if (!(theirs = btf__load_from_kernel_by_id(info.btf_id))) {
			snprintf(buf, len, "its BTF cannot be read (%s)", strerror(errno));
			why = buf;
		} else if (!btf_layout_equal(theirs, info.btf_key_type_id, ours,
					     bpf_map__btf_key_type_id(map), 0) ||
			   !btf_layout_equal(theirs, info.btf_value_type_id, ours,
					     bpf_map__btf_value_type_id(map), 0)) {
			why = "key/value layout changed (field names or offsets)";
		}
	}
	btf__free(theirs);
	close(fd);
	return why;
}

/* Unpin every pinned map that cannot be reused, so that libbpf creates and
 * pins a new one. The old contents are lost; the daemon rebuilds what it
 * needs from sock_diag. */
static int recreate_mismatched_maps(struct connbeat_bpf *skel, const char *pin_dir)
{
	struct bpf_map *map;
	char path[512], buf[160];
	const char *why;

	bpf_object__for_each_map(map, skel->obj) {
		if (bpf_map__is_internal(map))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(map));
		if (access(path, F_OK))
			continue;
		why = pinned_mismatch(skel->obj, map, path, buf, sizeof(buf));
		if (!why) {
			cb_dbg("reusing pinned map %s", path);
			continue;
		}
		cb_warn("pinned map %s does not match this connbeatd (%s): unpinning it and "
			"creating a new one; its old contents are lost",
			path, why);
		if (unlink(path)) {
			int err = -errno;

			cb_err("cannot unpin %s: %s", path, strerror(-err));
			return err;
		}
	}
	return 0;
}

static void unpin_all(struct connbeat_bpf *skel, const char *pin_dir)
{
	struct bpf_map *map;
	char path[512];

	bpf_object__for_each_map(map, skel->obj) {
		if (bpf_map__is_internal(map))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(map));
		if (unlink(path) == 0)
			cb_warn("unpinned %s to recreate it", path);
	}
}

/* ---- open and load ---- */

static int skel_open(struct cb_loader *l)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = l->pin_dir);
	struct connbeat_bpf *skel;
	uint64_t units;
	int err;

	skel = connbeat_bpf__open_opts(&oo);
	if (!skel) {
		err = -errno;
		cb_err("cannot open the BPF object: %s", strerror(-err));
		return err;
	}
	/* beat_stamp is in units of 2^20 ns; round to nearest. */
	units = (l->cfg.beat_interval_ns + (1ull << 19)) >> 20;
	skel->rodata->beat_interval = units > UINT32_MAX ? UINT32_MAX : (__u32)units;
	skel->rodata->nr_cpus = cb_loader_nr_cpus();
	if (cb_loader_nr_cpus() > CB_BPF_MAX_CPUS)
		cb_warn("%d possible CPUs: records sum the heartbeat slots of the first %d only",
			cb_loader_nr_cpus(), CB_BPF_MAX_CPUS);
	skel->rodata->events_wake_bytes = l->cfg.events_ring_bytes / 4;
	skel->rodata->beats_wake_bytes = l->cfg.beats_ring_bytes / 4;
	if ((err = bpf_map__set_max_entries(skel->maps.heartbeats, l->cfg.max_sessions)) ||
	    (err = bpf_map__set_max_entries(skel->maps.events, l->cfg.events_ring_bytes)) ||
	    (err = bpf_map__set_max_entries(skel->maps.beats, l->cfg.beats_ring_bytes))) {
		cb_err("cannot size the maps: %s", strerror(-err));
		connbeat_bpf__destroy(skel);
		return err;
	}
	l->skel = skel;
	return 0;
}

static int skel_load(struct cb_loader *l)
{
	int err;

	err = recreate_mismatched_maps(l->skel, l->pin_dir);
	if (err)
		return err;
	libbpf_reuse_failed = false;
	err = connbeat_bpf__load(l->skel);
	if (err && libbpf_reuse_failed) {
		/* Our own check found nothing, libbpf still refused a pinned
		 * map (a difference we do not compare): unpin all, retry once. */
		unpin_all(l->skel, l->pin_dir);
		connbeat_bpf__destroy(l->skel);
		l->skel = NULL;
		err = skel_open(l);
		if (err)
			return err;
		err = connbeat_bpf__load(l->skel);
	}
	if (err) {
		cb_err("cannot load the BPF programs: %s (run with --verbose for libbpf's log)",
		       strerror(-err));
		return err;
	}
	return 0;
}

/* The kernel's own accounting of a map (fdinfo "memlock:"), 0 if unknown. */
static uint64_t map_memlock(int fd)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void log_memory(const struct cb_loader *l)
{
	uint64_t ncpu = cb_loader_nr_cpus(), hb, total;
	char a[16], b[16], c[16], d[16];

	hb = (uint64_t)l->cfg.max_sessions * ncpu * sizeof(struct cb_heartbeat);
	total = map_memlock(bpf_map__fd(l->skel->maps.heartbeats));
	cb_info("heartbeats map: %u entries x %d possible CPUs x %zu B = %s of values "
		"(%s with the hash table's own overhead); rings: events %s, beats %s",
		l->cfg.max_sessions, (int)ncpu, sizeof(struct cb_heartbeat),
		cb_format_size(hb, a, sizeof(a)),
		total ? cb_format_size(total, d, sizeof(d)) : "?",
		cb_format_size(l->cfg.events_ring_bytes, b, sizeof(b)),
		cb_format_size(l->cfg.beats_ring_bytes, c, sizeof(c)));
}

int cb_loader_open(const struct cb_loader_opts *opts, struct cb_loader **out)
{
	struct cb_loader *l;
	const char *why;
	int err;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->lock_fd = -1;
	if (opts)
		l->cfg = *opts;
	snprintf(l->pin_dir, sizeof(l->pin_dir), "%s",
		 l->cfg.pin_dir ? l->cfg.pin_dir : CB_DEFAULT_PIN_DIR);
	l->cfg.pin_dir = l->pin_dir;
	if (!l->cfg.max_sessions)
		l->cfg.max_sessions = CB_DEFAULT_MAX_SESSIONS;
	if (!l->cfg.beat_interval_ns)
		l->cfg.beat_interval_ns = CB_DEFAULT_BEAT_INTERVAL_NS;
	if (!l->cfg.events_ring_bytes)
		l->cfg.events_ring_bytes = CB_DEFAULT_EVENTS_RING_BYTES;
	if (!l->cfg.beats_ring_bytes)
		l->cfg.beats_ring_bytes = CB_DEFAULT_BEATS_RING_BYTES;

	libbpf_verbose = l->cfg.verbose;
	libbpf_set_print(libbpf_print);

	err = -EINVAL;
	if (l->pin_dir[0] != '/' || strlen(l->pin_dir) >= sizeof(l->pin_dir) - 1) {
		cb_err("--pin-dir %s: must be an absolute path shorter than %zu bytes",
		       l->pin_dir, sizeof(l->pin_dir) - 1);
		goto fail;
	}
	if (cb_loader_check_ring_size(l->cfg.events_ring_bytes, &why) ||
	    cb_loader_check_ring_size(l->cfg.beats_ring_bytes, &why)) {
		cb_err("ring size: %s", why);
		goto fail;
	}
	if (l->cfg.max_sessions > CB_MAX_SESSIONS_LIMIT) {
		cb_err("--max-sessions %u: at most %u", l->cfg.max_sessions, CB_MAX_SESSIONS_LIMIT);
		goto fail;
	}
	if ((err = check_privileges()) || (err = check_btf()) ||
	    (err = ensure_bpffs(l->pin_dir)) || (err = make_pin_dir(l->pin_dir)) ||
	    (err = lock_pin_dir(l)) || (err = skel_open(l)) ||
	    (err = check_tracepoints(l->skel)) || (err = skel_load(l)))
		goto fail;
	log_memory(l);
	cb_dbg("loaded; maps pinned under %s", l->pin_dir);
	*out = l;
	return 0;
fail:
	cb_loader_close(l);
	return err;
}

int cb_loader_attach(struct cb_loader *l)
{
	int err = connbeat_bpf__attach(l->skel);

	if (err) {
		cb_err("cannot attach the BPF programs: %s", strerror(-err));
		return err;
	}
	l->attached = true;
	return 0;
}

void cb_loader_detach(struct cb_loader *l)
{
	if (l && l->skel && l->attached) {
		connbeat_bpf__detach(l->skel);
		l->attached = false;
	}
}

void cb_loader_close(struct cb_loader *l)
{
	if (!l)
		return;
	ring_buffer__free(l->rings);
	cb_loader_detach(l);
	connbeat_bpf__destroy(l->skel);
	if (l->lock_fd >= 0)
		close(l->lock_fd); /* releases the flock */
	free(l);
}

struct ring_buffer *cb_loader_rings(struct cb_loader *l, ring_buffer_sample_fn on_event,
				    void *event_ctx, ring_buffer_sample_fn on_beat, void *beat_ctx)
{
	int err;

	if (l->rings)
		return l->rings;
	l->rings = ring_buffer__new(bpf_map__fd(l->skel->maps.events), on_event, event_ctx, NULL);
	if (!l->rings) {
		err = -errno;
		cb_err("cannot map the events ring: %s", strerror(-err));
		errno = -err;
		return NULL;
	}
	err = ring_buffer__add(l->rings, bpf_map__fd(l->skel->maps.beats), on_beat, beat_ctx);
	if (err) {
		cb_err("cannot map the beats ring: %s", strerror(-err));
		ring_buffer__free(l->rings);
		l->rings = NULL;
		errno = -err;
		return NULL;
	}
	return l->rings;
}

int cb_rings_poll(struct ring_buffer *rb, int timeout_ms)
{
	struct epoll_event ev;
	int n;

	/* Only wait here; consume below reads all rings in one pass. */
	n = epoll_wait(ring_buffer__epoll_fd(rb), &ev, 1, timeout_ms);
	if (n < 0)
		return -errno;
	return ring_buffer__consume(rb);
}

int cb_loader_map_fd(const struct cb_loader *l, enum cb_loader_map m)
{
	switch (m) {
	case CB_LMAP_HEARTBEATS:
		return bpf_map__fd(l->skel->maps.heartbeats);
	case CB_LMAP_EVENTS:
		return bpf_map__fd(l->skel->maps.events);
	case CB_LMAP_BEATS:
		return bpf_map__fd(l->skel->maps.beats);
	case CB_LMAP_STATS:
		return bpf_map__fd(l->skel->maps.stats);
	case CB_LMAP_LOST:
		return bpf_map__fd(l->skel->maps.lost);
	default:
		return -EINVAL;
	}
}

void cb_loader_set_all_states(struct cb_loader *l, bool on)
{
	/* the .bss is mmap'ed: the programs see the store at once */
	__atomic_store_n(&l->skel->bss->all_states, on ? 1 : 0, __ATOMIC_RELAXED);
}

const char *cb_loader_pin_dir(const struct cb_loader *l)
{
	return l->pin_dir;
}

const struct cb_loader_opts *cb_loader_config(const struct cb_loader *l)
{
	return &l->cfg;
}

int cb_stats_read_fd(int stats_fd, uint64_t out[CB_STAT_MAX])
{
	int ncpu = cb_loader_nr_cpus();
	uint64_t *vals = calloc(ncpu, sizeof(*vals));
	int err = 0;

	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < CB_STAT_MAX; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(stats_fd, &i, vals)) {
			err = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
	free(vals);
	return err;
}

int cb_loader_stats(const struct cb_loader *l, uint64_t out[CB_STAT_MAX])
{
	return cb_stats_read_fd(bpf_map__fd(l->skel->maps.stats), out);
}

int cb_heartbeat_read_fd(int heartbeats_fd, uint64_t cookie, struct cb_heartbeat *out)
{
	int ncpu = cb_loader_nr_cpus();
	struct cb_hb_key key = { .cookie = cookie };
	struct cb_heartbeat *slots = calloc(ncpu, sizeof(*slots));
	int err = 0;

	if (!slots)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(heartbeats_fd, &key, slots)) {
		err = -errno;
		goto out;
	}
	cb_heartbeat_merge(slots, ncpu, out);
out:
	free(slots);
	return err;
}

int cb_loader_prog_stats(const struct cb_loader *l, struct cb_prog_stats *out, size_t max)
{
	struct bpf_program *prog;
	size_t n = 0;

	bpf_object__for_each_program(prog, l->skel->obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (n >= max)
			break;
		if (bpf_obj_get_info_by_fd(fd, &info, &len))
			return -errno;
		snprintf(out[n].name, sizeof(out[n].name), "%s", bpf_program__name(prog));
		out[n].fd = fd;
		out[n].run_cnt = info.run_cnt;
		out[n].run_time_ns = info.run_time_ns;
		out[n].recursion_misses = info.recursion_misses;
		n++;
	}
	return (int)n;
}
