// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ring_ingest.c — see ring_ingest.h. */
/* first: its epoll_data has members that session.h poisons */
#include <sys/epoll.h>

#include "kernel/ring_ingest.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "kernel/proc.h"
#include "kernel/record.h"

/* The ingest thread's nice value (see start_thread). */
#define CB_INGEST_NICE (-5)

#pragma GCC poison u8 u16 u32 u64

/* Re-read the clock every this many records: a batch of thousands takes
 * well under a millisecond, and `now` only judges idleness (revivals) and
 * the first-seen time of sessions the daemon did not see open. */
#define CLOCK_EVERY 64

struct ring_state {
	struct cb_ingest *in;
	unsigned int id;
	_Atomic uint64_t read;
	_Atomic uint64_t invalid;
	/* the ring's first two pages, mapped read-only: consumer and producer
	 * positions, for the occupancy gauge (libbpf < 1.3 has no accessor) */
	const volatile unsigned long *pos;
	uint64_t size;
};

struct cb_ingest {
	struct cb_loader *loader;
	struct cb_map *map;
	struct ring_buffer *rb;
	struct cb_histogram *batch_hist;
	struct ring_state ring[CB_RINGS];
	_Atomic uint64_t applied[CB_APPLY_RESULTS];
	_Atomic uint64_t batches;
	_Atomic bool stop;
	_Atomic bool failed;
	bool running;
	pthread_t thread;
	/* per-batch, ingest thread only */
	uint64_t now_ns;
	uint64_t batch_start_ns;
	uint32_t since_clock;
	/* valid records waiting to be applied together (cb_apply_batch
	 * overlaps their cache misses); applied when full and after every
	 * poll, so nothing waits longer than one pass over the rings */
	struct cb_record pending[CB_APPLY_BATCH_MAX];
	unsigned int npending;
	cb_ingest_hook after;
	void *hook_ctx;
	struct cb_comm_cache comms;
	/* cb_ingest_sync(): the thread waits on its own epoll set, the rings'
	 * epoll fd and wake_fd (an eventfd), so that a request is served at
	 * once, not at the next timed poll. Requests are numbered in
	 * sync_asked; sync_done is the newest one a pass over the rings begun
	 * after it has completed (applied and published). */
	int epfd, wake_fd;
	_Atomic uint64_t sync_asked;
	uint64_t sync_done; /* under sync_lock */
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	bool sync_ready;
};

static struct cb_ratelimit invalid_rl = CB_RATELIMIT_INIT(1000, 5);

const char *cb_ring_name(unsigned int ring)
{
	return ring == CB_RING_EVENTS ? CB_MAP_EVENTS : ring == CB_RING_BEATS ? CB_MAP_BEATS : "?";
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void bump(_Atomic uint64_t *c)
{
	/* one writer: a relaxed load + store is enough, and cheaper than a
	 * locked add */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void apply_pending(struct cb_ingest *in)
{
	uint64_t res[CB_APPLY_RESULTS] = { 0 };

	if (!in->npending)
		return;
	cb_apply_batch(in->map, in->pending, in->npending, in->now_ns, res);
	if (in->after)
		in->after(in->pending, in->npending, in->hook_ctx);
	in->npending = 0;
	for (unsigned int i = 0; i < CB_APPLY_RESULTS; i++)
		if (res[i])
			atomic_store_explicit(&in->applied[i],
					      atomic_load_explicit(&in->applied[i],
								   memory_order_relaxed) + res[i],
					      memory_order_relaxed);
}

static int on_record(void *ctx, void *data, size_t len)
{
	struct ring_state *r = ctx;
	struct cb_ingest *in = r->in;
	struct cb_record *rec = &in->pending[in->npending];
	const char *why;

	bump(&r->read);
	/* The ring memory is shared with the kernel: copy first, then check
	 * and apply the copy, so that what was checked is what is applied. */
	if (len == sizeof(*rec))
		memcpy(rec, data, sizeof(*rec));
	if (len != sizeof(*rec) || cb_record_check(rec, len, &why)) {
		if (len != sizeof(*rec))
			cb_record_check(data, len, &why); /* for the reason */
		bump(&r->invalid);
		cb_log_ratelimited(&invalid_rl, CB_LOG_WARN,
				   "%s ring: dropped an invalid record (%s, %zu bytes); "
				   "is connbeatd older than the BPF programs pinned in the pin dir?",
				   cb_ring_name(r->id), why, len);
		return 0;
	}
	if (in->since_clock++ % CLOCK_EVERY == 0) {
		in->now_ns = mono_ns();
		if (!in->batch_start_ns)
			in->batch_start_ns = in->now_ns;
	}
	if ((rec->flags & CB_RF_OWNER_PID) && !(rec->flags & CB_RF_PROCESS_CTX) && rec->pid)
		cb_comm_cache_get(&in->comms, rec->pid, in->now_ns, rec->comm);
	if (++in->npending == CB_APPLY_BATCH_MAX)
		apply_pending(in);
	return 0;
}

/* After a poll: apply what is pending, account the batch. */
static void end_batch(struct cb_ingest *in)
{
	apply_pending(in);
	if (!in->batch_start_ns)
		return;
	if (in->batch_hist)
		cb_histogram_observe_ns(in->batch_hist, mono_ns() - in->batch_start_ns);
	bump(&in->batches);
	in->batch_start_ns = 0;
	in->since_clock = 0;
}

/* Wait for records, a sync request or the poll timeout, then consume
 * every ring. *asked: the newest sync request this pass answers (read
 * after the wait, before the consume). Records consumed, or -errno. */
static int poll_rings(struct cb_ingest *in, uint64_t *asked)
{
	struct epoll_event ev[2];
	uint64_t v;
	ssize_t got;
	int n;

	n = epoll_wait(in->epfd, ev, 2, CB_INGEST_POLL_MS);
	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++)
		if (ev[i].data.fd == in->wake_fd) {
			got = read(in->wake_fd, &v, sizeof(v)); /* (non-blocking) */
			(void)got;
		}
	*asked = atomic_load_explicit(&in->sync_asked, memory_order_acquire);
	return ring_buffer__consume(in->rb);
}

static void answer_sync(struct cb_ingest *in, uint64_t asked)
{
	pthread_mutex_lock(&in->sync_lock);
	if (asked > in->sync_done) {
		in->sync_done = asked;
		pthread_cond_broadcast(&in->sync_cond);
	}
	pthread_mutex_unlock(&in->sync_lock);
}

static void *ingest_main(void *arg)
{
	struct cb_ingest *in = arg;
	uint64_t asked = 0, answered = 0;
	int n;

	while (!atomic_load_explicit(&in->stop, memory_order_acquire)) {
		n = poll_rings(in, &asked);
		end_batch(in);
		if (asked != answered) {
			answer_sync(in, asked);
			answered = asked;
		}
		if (n < 0) {
			/* without ingestion the daemon would serve a frozen map:
			 * stop it (exit 1), so that a supervisor restarts it */
			cb_err("reading the BPF rings failed: %s; connbeatd stops", strerror(-n));
			atomic_store(&in->failed, true);
			kill(getpid(), SIGTERM);
			break;
		}
	}
	return NULL;
}

static void map_positions(struct ring_state *r, int map_fd)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	if (map_fd < 0 || bpf_obj_get_info_by_fd(map_fd, &info, &len))
		return;
	r->size = info.max_entries;
	p = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED) {
		cb_dbg("%s ring: cannot map its positions (%s): no occupancy gauge",
		       cb_ring_name(r->id), strerror(errno));
		return;
	}
	r->pos = p; /* pos[0]: consumer; the producer's page follows */
}

uint64_t cb_ingest_ring_pending(const struct cb_ingest *in, unsigned int ring)
{
	const struct ring_state *r;
	long page = sysconf(_SC_PAGESIZE);
	unsigned long cons, prod;

	if (ring >= CB_RINGS || !in->ring[ring].pos)
		return 0;
	r = &in->ring[ring];
	cons = __atomic_load_n(&r->pos[0], __ATOMIC_ACQUIRE);
	prod = __atomic_load_n(&r->pos[page / sizeof(unsigned long)], __ATOMIC_ACQUIRE);
	return prod > cons ? prod - cons : 0;
}

uint64_t cb_ingest_ring_size(const struct cb_ingest *in, unsigned int ring)
{
	return ring < CB_RINGS ? in->ring[ring].size : 0;
}

/*
 * The ingest thread runs at nice CB_INGEST_NICE: the lifecycle ring loses
 * records when it is full, so under a CPU-bound workload (8 churning
 * threads on 2 cores starve a thread of default priority for longer than
 * the ring lasts) ingest must still get the CPU it needs. It needs little
 * (the records are bounded by what the host does). A thread inherits its
 * creator's nice value: ours is lowered around pthread_create, which needs
 * CAP_SYS_NICE (held at start; without it, the default priority, logged).
 */
static int start_thread(struct cb_ingest *in)
{
	pid_t me = gettid();
	bool raised = false;
	int was, err;

	errno = 0;
	was = getpriority(PRIO_PROCESS, me);
	if (!errno && was > CB_INGEST_NICE)
		raised = setpriority(PRIO_PROCESS, me, CB_INGEST_NICE) == 0;
	if (!raised && (errno || was > CB_INGEST_NICE))
		cb_warn("cannot raise the ingest thread's priority (%s): under a CPU-bound "
			"workload the lifecycle ring may overflow (then the netns is repaired)",
			strerror(errno ? errno : EPERM));
	err = -pthread_create(&in->thread, NULL, ingest_main, in);
	if (raised)
		setpriority(PRIO_PROCESS, me, was); /* raising it back needs nothing */
	return err;
}

/* The thread's epoll set: the rings (their own epoll fd nests) and
 * wake_fd. */
static int open_wakeup(struct cb_ingest *in)
{
	struct epoll_event rings = { .events = EPOLLIN }, wake = { .events = EPOLLIN };
	pthread_condattr_t ca;

	in->epfd = epoll_create1(EPOLL_CLOEXEC);
	in->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rings.data.fd = ring_buffer__epoll_fd(in->rb);
	wake.data.fd = in->wake_fd;
	if (in->epfd < 0 || in->wake_fd < 0 ||
	    epoll_ctl(in->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(in->rb), &rings) ||
	    epoll_ctl(in->epfd, EPOLL_CTL_ADD, in->wake_fd, &wake))
		return -errno;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&in->sync_cond, &ca);
	pthread_condattr_destroy(&ca);
	in->sync_ready = true;
	return 0;
}

int cb_ingest_sync(struct cb_ingest *in, int timeout_ms)
{
	uint64_t want, one = 1;
	struct timespec until;
	ssize_t put;
	int err = 0;

	if (!in || !in->sync_ready || atomic_load(&in->stop) || atomic_load(&in->failed))
		return -ESRCH;
	want = atomic_fetch_add_explicit(&in->sync_asked, 1, memory_order_acq_rel) + 1;
	put = write(in->wake_fd, &one, sizeof(one)); /* EAGAIN: it is awake anyway */
	(void)put;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&in->sync_lock);
	while (!err && in->sync_done < want)
		err = -pthread_cond_timedwait(&in->sync_cond, &in->sync_lock, &until);
	pthread_mutex_unlock(&in->sync_lock);
	return err;
}

int cb_ingest_start(struct cb_ingest **out, struct cb_loader *l, struct cb_map *m,
		    struct cb_histogram *batch_hist, cb_ingest_hook after, void *hook_ctx)
{
	struct cb_ingest *in = calloc(1, sizeof(*in));
	int err;

	if (!in)
		return -ENOMEM;
	in->loader = l;
	in->map = m;
	in->epfd = in->wake_fd = -1;
	pthread_mutex_init(&in->sync_lock, NULL);
	in->batch_hist = batch_hist;
	in->after = after;
	in->hook_ctx = hook_ctx;
	for (unsigned int i = 0; i < CB_RINGS; i++) {
		in->ring[i].in = in;
		in->ring[i].id = i;
	}
	in->rb = cb_loader_rings(l, on_record, &in->ring[CB_RING_EVENTS], on_record,
				 &in->ring[CB_RING_BEATS]);
	if (!in->rb) {
		err = -errno;
		cb_err("cannot open the BPF rings: %s", strerror(-err));
		free(in);
		return err;
	}
	map_positions(&in->ring[CB_RING_EVENTS], cb_loader_map_fd(l, CB_LMAP_EVENTS));
	map_positions(&in->ring[CB_RING_BEATS], cb_loader_map_fd(l, CB_LMAP_BEATS));
	err = open_wakeup(in);
	if (err) {
		cb_err("cannot set up the ingest thread's wakeup: %s", strerror(-err));
		cb_ingest_free(in);
		return err;
	}
	err = start_thread(in);
	if (err) {
		cb_err("cannot start the ingest thread: %s", strerror(-err));
		cb_ingest_free(in);
		return err;
	}
	in->running = true;
	*out = in;
	return 0;
}

void cb_ingest_stop(struct cb_ingest *in)
{
	if (!in)
		return;
	if (in->running) {
		atomic_store_explicit(&in->stop, true, memory_order_release);
		pthread_join(in->thread, NULL);
		in->running = false;
	}
	/* no producer after this: the drain below terminates and leaves the
	 * rings empty */
	cb_loader_detach(in->loader);
	in->now_ns = mono_ns();
	while (ring_buffer__consume(in->rb) > 0)
		end_batch(in);
	end_batch(in);
	/* the rings are empty: every request so far is answered */
	if (in->sync_ready)
		answer_sync(in, atomic_load(&in->sync_asked));
}

void cb_ingest_free(struct cb_ingest *in)
{
	long page = sysconf(_SC_PAGESIZE);

	if (!in)
		return;
	cb_ingest_stop(in);
	for (unsigned int i = 0; i < CB_RINGS; i++)
		if (in->ring[i].pos)
			munmap((void *)in->ring[i].pos, 2 * page);
	if (in->epfd >= 0)
		close(in->epfd);
	if (in->wake_fd >= 0)
		close(in->wake_fd);
	if (in->sync_ready)
		pthread_cond_destroy(&in->sync_cond);
	pthread_mutex_destroy(&in->sync_lock);
	/* the ring_buffer object belongs to the loader */
	free(in);
}

bool cb_ingest_failed(const struct cb_ingest *in)
{
	return atomic_load(&((struct cb_ingest *)in)->failed);
}

void cb_ingest_stats(const struct cb_ingest *in, struct cb_ingest_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < CB_RINGS; i++) {
		out->read[i] = atomic_load_explicit(&in->ring[i].read, memory_order_relaxed);
		out->invalid[i] = atomic_load_explicit(&in->ring[i].invalid, memory_order_relaxed);
	}
	for (unsigned int i = 0; i < CB_APPLY_RESULTS; i++)
		out->applied[i] = atomic_load_explicit(&in->applied[i], memory_order_relaxed);
	out->batches = atomic_load_explicit(&in->batches, memory_order_relaxed);
}
