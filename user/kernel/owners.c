// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* owners.c — see owners.h. */
#include "kernel/owners.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

/* <>, not "": tests/layout/check_layers knows only connbeat_abi.h and
 * connbeat_proto.h as include/ headers so far; this one is the same kind
 * (an ABI header below every layer). */
#include "connbeat_owners.h"

#include "owners.skel.h"
#include "common/log.h"

/* Kernel-style typedefs must not leak into user code (style.md #10). */
#pragma GCC poison u8 u16 u32 u64

#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
/* The kernel's iterator target, as DEFINE_BPF_ITER_FUNC(task_file, ...)
 * names it in its BTF (kernel/bpf/task_iter.c). */
#define TASK_FILE_ITER_FUNC "bpf_iter_task_file"

/* The kernel hands out at most its seq_file buffer per read() (8 pages for
 * BPF iterators, kernel/bpf/bpf_iter.c); twice that leaves room for a
 * partial record carried over and for a kernel with a larger buffer. */
#define READ_BUF_BYTES (128u << 10)
#define SEEN_MIN_SLOTS 1024u

/*
 * The (pid, cookie) pairs already reported in this pass: an open-addressing
 * hash set that is emptied in O(1) per pass by bumping `gen` (a slot whose
 * gen is not the current one is free), and doubled when half full. Only
 * repeats need it (dup()ed fds, threads with a private fd table), but they
 * can be anywhere in the stream, so every pair goes through it.
 */
struct seen_slot {
	uint64_t cookie;
	uint32_t pid;
	uint32_t gen;
};

struct seen {
	struct seen_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t used;
	uint32_t gen;
};

struct cb_owners {
	struct owners_bpf *skel;
	struct bpf_link *link;
	char *buf;
	struct seen seen;
	struct cb_ratelimit rl; /* pass failures: the caller retries */
	uint64_t passes;
	uint64_t last_ns;
	uint64_t last_records;
};

/* ---- libbpf's log through ours, while we load (style.md #24) ---- */

static bool libbpf_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL, *line, *save = NULL;
	int n;

	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	n = vasprintf(&msg, fmt, ap);
	if (n < 0)
		return 0;
	/* The verifier log is multi-line: one log line each. */
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (level == LIBBPF_WARN)
			cb_warn("%s", line);
		else
			cb_dbg("%s", line);
	}
	free(msg);
	return n;
}

/* ---- the dedup set ---- */

static inline uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser: cookies are sequential, pids small. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static void seen_reset(struct seen *s)
{
	s->used = 0;
	if (++s->gen == 0) {
		/* Wrapped after 2^32 passes: old stamps could look current. */
		if (s->slots)
			memset(s->slots, 0, s->cap * sizeof(*s->slots));
		s->gen = 1;
	}
}

/* Find the slot of (pid, cookie), or the free slot where it belongs. */
static struct seen_slot *seen_slot(struct seen_slot *slots, size_t cap, uint32_t gen,
				   uint64_t cookie, uint32_t pid)
{
	size_t mask = cap - 1, i = mix64(cookie ^ ((uint64_t)pid << 40)) & mask;

	for (;;) {
		struct seen_slot *sl = &slots[i];

		if (sl->gen != gen || (sl->cookie == cookie && sl->pid == pid))
			return sl;
		i = (i + 1) & mask;
	}
}

static int seen_grow(struct seen *s)
{
	size_t cap = s->cap ? s->cap * 2 : SEEN_MIN_SLOTS;
	struct seen_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	/* gen 0 is never current (seen_reset skips it): calloc'd slots are free. */
	for (size_t i = 0; i < s->cap; i++) {
		struct seen_slot *old = &s->slots[i];

		if (old->gen == s->gen)
			*seen_slot(slots, cap, s->gen, old->cookie, old->pid) = *old;
	}
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

/* 1: first time this pass, 0: a repeat, -ENOMEM. */
static int seen_add(struct seen *s, uint64_t cookie, uint32_t pid)
{
	struct seen_slot *sl;
	int err;

	if (2 * (s->used + 1) > s->cap && (err = seen_grow(s)))
		return err;
	sl = seen_slot(s->slots, s->cap, s->gen, cookie, pid);
	if (sl->gen == s->gen)
		return 0;
	*sl = (struct seen_slot){ .cookie = cookie, .pid = pid, .gen = s->gen };
	s->used++;
	return 1;
}

/* ---- open ---- */

/* Name what this kernel lacks before libbpf says "failed to find kernel
 * BTF type ID of 'task_file'". */
static int check_kernel(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int err, id;

	if (!vmlinux) {
		err = -errno;
		cb_err("owners: cannot read this kernel's BTF (%s): %s; the owners pass needs a "
		       "kernel built with CONFIG_DEBUG_INFO_BTF=y (stock Debian/Ubuntu/Fedora "
		       "kernels have it)",
		       VMLINUX_BTF, strerror(-err));
		return err;
	}
	id = btf__find_by_name_kind(vmlinux, TASK_FILE_ITER_FUNC, BTF_KIND_FUNC);
	btf__free(vmlinux);
	if (id < 0) {
		cb_err("owners: this kernel has no task_file BPF iterator (%s is not in its BTF): "
		       "owners of accepted and pre-existing sockets cannot be found; use Linux "
		       "5.11 or later with CONFIG_BPF_SYSCALL=y",
		       TASK_FILE_ITER_FUNC);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int owners_load(struct cb_owners *o)
{
	int err;

	o->skel = owners_bpf__open();
	if (!o->skel) {
		err = -errno;
		cb_err("owners: cannot open the iterator's BPF object: %s", strerror(-err));
		return err;
	}
	err = owners_bpf__load(o->skel);
	if (err == -EPERM || err == -EACCES) {
		cb_err("owners: loading the task_file iterator was refused (%s): it needs root "
		       "(CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN); open it before dropping "
		       "capabilities",
		       strerror(-err));
		return err;
	}
	if (err) {
		/* Most likely a kernel older than bpf_sock_from_file() (5.11)
		 * or a verifier refusal: both are in libbpf's log. */
		cb_err("owners: cannot load the task_file iterator: %s (run with --verbose for "
		       "libbpf's log; it needs Linux 5.11+ for bpf_sock_from_file())",
		       strerror(-err));
		return err;
	}
	o->link = bpf_program__attach_iter(o->skel->progs.cb_owners, NULL);
	if (!o->link) {
		err = -errno;
		cb_err("owners: cannot create the task_file iterator's link: %s", strerror(-err));
		return err;
	}
	return 0;
}

int cb_owners_open(struct cb_owners **out, bool verbose)
{
	libbpf_print_fn_t prev;
	struct cb_owners *o;
	int err;

	*out = NULL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->rl = (struct cb_ratelimit)CB_RATELIMIT_INIT(60000, 1);
	o->buf = malloc(READ_BUF_BYTES);
	if (!o->buf) {
		err = -ENOMEM;
		goto fail;
	}
	err = check_kernel();
	if (err)
		goto fail;
	/* libbpf's print callback is process-wide: ours only while loading,
	 * then whatever was there (the loader's) again. */
	libbpf_verbose = verbose;
	prev = libbpf_set_print(libbpf_print);
	err = owners_load(o);
	libbpf_set_print(prev);
	if (err)
		goto fail;
	*out = o;
	return 0;
fail:
	cb_owners_close(o);
	return err;
}

void cb_owners_close(struct cb_owners *o)
{
	if (!o)
		return;
	bpf_link__destroy(o->link);
	owners_bpf__destroy(o->skel);
	free(o->seen.slots);
	free(o->buf);
	free(o);
}

/* ---- one pass ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Every whole record in buf[0..len): fn once per new (pid, cookie). 0, the
 * callback's error, -EPROTO or -ENOMEM. */
static int feed(struct cb_owners *o, const char *buf, size_t len, cb_owner_fn fn, void *ctx,
		uint64_t *reported)
{
	for (size_t off = 0; off + sizeof(struct cb_owner_rec) <= len;
	     off += sizeof(struct cb_owner_rec)) {
		struct cb_owner_rec r;
		struct cb_owner ow;
		int err;

		/* Copied out: buf offsets are not 8-byte aligned after a
		 * carried-over partial record. */
		memcpy(&r, buf + off, sizeof(r));
		if (r.version != CB_OWNERS_ABI_VERSION || r.size != sizeof(r))
			return -EPROTO;
		err = seen_add(&o->seen, r.cookie, r.pid);
		if (err < 0)
			return err;
		if (!err)
			continue;
		ow = (struct cb_owner){ .cookie = r.cookie, .pid = r.pid, .netns = r.netns,
					.fd = r.fd, .family = r.family, .tcp_state = r.tcp_state };
		memcpy(ow.comm, r.comm, sizeof(ow.comm));
		ow.comm[sizeof(ow.comm) - 1] = '\0';
		(*reported)++;
		err = fn(&ow, ctx);
		if (err < 0)
			return err;
	}
	return 0;
}

int cb_owners_pass(struct cb_owners *o, cb_owner_fn fn, void *ctx)
{
	const size_t rec = sizeof(struct cb_owner_rec);
	uint64_t t0 = mono_ns(), reported = 0;
	size_t have = 0;
	int fd, err = 0;

	seen_reset(&o->seen);
	/* A new iterator per pass: an iterator fd is read once, to its end. */
	fd = bpf_iter_create(bpf_link__fd(o->link));
	if (fd < 0) {
		err = -errno;
		cb_log_ratelimited(&o->rl, CB_LOG_ERROR,
				   "owners: cannot start a pass (bpf_iter_create): %s", strerror(-err));
		return err;
	}
	for (;;) {
		ssize_t n = read(fd, o->buf + have, READ_BUF_BYTES - have);
		size_t whole;

		if (n < 0) {
			/* EAGAIN: the kernel stops a read() after 1M objects
			 * that wrote nothing (MAX_ITER_OBJECTS); the next
			 * read() goes on from there. */
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err = -errno;
			cb_log_ratelimited(&o->rl, CB_LOG_ERROR,
					   "owners: reading the task_file iterator failed: %s",
					   strerror(-err));
			break;
		}
		if (n == 0) {
			if (have) {
				err = -EPROTO; /* a partial record at the end */
				cb_log_ratelimited(&o->rl, CB_LOG_ERROR,
						   "owners: the iterator's stream ends in a partial "
						   "record (%zu of %zu bytes)",
						   have, rec);
			}
			break;
		}
		have += (size_t)n;
		whole = have - have % rec;
		err = feed(o, o->buf, whole, fn, ctx, &reported);
		if (err) {
			if (err == -EPROTO)
				cb_log_ratelimited(&o->rl, CB_LOG_ERROR,
						   "owners: the iterator wrote a record of another "
						   "layout (not ABI version %d, %zu bytes): rebuild "
						   "connbeatd and its BPF objects together",
						   CB_OWNERS_ABI_VERSION, rec);
			break;
		}
		/* bpf_seq_read() copies whole records when our space is a
		 * multiple of their size, but do not rely on it. */
		memmove(o->buf, o->buf + whole, have - whole);
		have -= whole;
	}
	close(fd);
	if (err)
		return err;
	o->passes++;
	o->last_ns = mono_ns() - t0;
	o->last_records = reported;
	return reported > INT32_MAX ? INT32_MAX : (int)reported;
}

void cb_owners_stats(const struct cb_owners *o, uint64_t *passes, uint64_t *last_ns,
		     uint64_t *last_records)
{
	if (passes)
		*passes = o->passes;
	if (last_ns)
		*last_ns = o->last_ns;
	if (last_records)
		*last_records = o->last_records;
}
