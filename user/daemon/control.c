// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* control.c — see control.h. */
#include "daemon/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

struct client {
	struct cb_control *ctl;
	int fd; /* -1: slot free */
	struct ucred peer;
};

struct cb_control {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int stop_fd; /* eventfd: wakes the accept thread */
	pthread_t accept_thread;
	cb_control_serve_fn serve;
	void *ctx;

	pthread_mutex_t lock; /* protects clients[] and nclients */
	pthread_cond_t idle;  /* signalled when a client thread ends */
	struct client clients[CB_CONTROL_MAX_CLIENTS];
	_Atomic unsigned nclients; /* changed under lock, read lock-free by metrics */
	bool stopping;
	_Atomic uint64_t accepted, rejected;
};

/* Create the socket's directory 0700 if it is missing. An existing
 * directory is used as it is, but never one that others may write to. */
static int make_socket_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST) {
		int err = -errno;

		cb_err("cannot create the control socket directory %s: %s (create it, or pick "
		       "another place with --socket)", dir, strerror(errno));
		return err;
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		cb_err("control socket directory %s is not a directory (use --socket to pick "
		       "another path)", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != 0 || (st.st_mode & 0022)) {
		cb_err("control socket directory %s is writable by other users (owner uid %u, mode "
		       "%04o): refusing to serve a root-only socket there; fix its ownership or "
		       "use --socket", dir, st.st_uid, st.st_mode & 07777);
		return -EPERM;
	}
	return 0;
}

/* Is a daemon still answering on `path`? */
static bool socket_is_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return live;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old_mask;
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		cb_err("control socket path %s is too long (at most %zu bytes)", path,
		       sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	err = make_socket_dir(path);
	if (err)
		return err;
	if (socket_is_live(&sa)) {
		cb_err("control socket %s is in use: another connbeatd is running (stop it, or "
		       "start this one with another --socket and --pin-dir)", path);
		return -EADDRINUSE;
	}
	unlink(path); /* left behind by a daemon that died */

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* bind creates the file: mask it to 0600 from the start, no window */
	old_mask = umask(0177);
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old_mask);
	if (!err && chmod(path, 0600))
		err = -errno;
	if (!err && listen(fd, 64))
		err = -errno;
	if (err) {
		cb_err("cannot listen on control socket %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct cb_control *c = cl->ctl;

	c->serve(cl->fd, &cl->peer, c->ctx);

	pthread_mutex_lock(&c->lock);
	close(cl->fd);
	cl->fd = -1;
	c->nclients--;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void start_client(struct cb_control *c, int fd)
{
	struct timeval snd = { .tv_sec = CB_CONTROL_SEND_TIMEOUT_S };
	struct timeval rcv = { .tv_sec = CB_CONTROL_IDLE_TIMEOUT_S };
	socklen_t len = sizeof(struct ucred);
	struct client *cl = NULL;
	pthread_attr_t attr;
	pthread_t tid;
	struct ucred peer;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len)) {
		cb_warn("control: cannot read the client's credentials (SO_PEERCRED): %s; "
			"dropping it", strerror(errno));
		close(fd);
		return;
	}
	/* A client that stops reading must not hold its thread forever. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < CB_CONTROL_MAX_CLIENTS && !c->stopping; i++) {
		if (c->clients[i].fd < 0) {
			cl = &c->clients[i];
			break;
		}
	}
	if (!cl) {
		pthread_mutex_unlock(&c->lock);
		atomic_fetch_add(&c->rejected, 1);
		static struct cb_ratelimit rl = CB_RATELIMIT_INIT(10000, 1);
		cb_log_ratelimited(&rl, CB_LOG_WARN,
				   "control: %d clients already connected; turning away pid %d",
				   CB_CONTROL_MAX_CLIENTS, peer.pid);
		close(fd);
		return;
	}
	cl->fd = fd;
	cl->peer = peer;
	cl->ctl = c;
	c->nclients++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, client_main, cl)) {
		cl->fd = -1;
		c->nclients--;
		pthread_mutex_unlock(&c->lock);
		pthread_attr_destroy(&attr);
		cb_warn("control: cannot start a thread for a client: %s", strerror(errno));
		close(fd);
		return;
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_unlock(&c->lock);
	atomic_fetch_add(&c->accepted, 1);
}

static void *accept_main(void *arg)
{
	struct cb_control *c = arg;
	struct pollfd pfd[2] = {
		{ .fd = c->listen_fd, .events = POLLIN },
		{ .fd = c->stop_fd, .events = POLLIN },
	};

	for (;;) {
		int fd;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			cb_err("control: poll failed: %s; no longer accepting clients",
			       strerror(errno));
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			/* EMFILE and friends: back off instead of spinning */
			if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
				usleep(100 * 1000);
			continue;
		}
		start_client(c, fd);
	}
}

int cb_control_start(struct cb_control **out, const char *path, cb_control_serve_fn serve,
		     void *ctx)
{
	struct cb_control *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->serve = serve;
	c->ctx = ctx;
	for (unsigned i = 0; i < CB_CONTROL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (c->stop_fd < 0) {
		err = -errno;
		goto err_free;
	}
	c->listen_fd = listen_on(path);
	if (c->listen_fd < 0) {
		err = c->listen_fd;
		goto err_stopfd;
	}
	/* before the thread: its clients' requests may read *out (the
	 * daemon's own metrics count the control clients) */
	*out = c;
	err = -pthread_create(&c->accept_thread, NULL, accept_main, c);
	if (err) {
		*out = NULL;
		cb_err("control: cannot start the accept thread: %s", strerror(-err));
		goto err_listen;
	}
	return 0;

err_listen:
	close(c->listen_fd);
	unlink(path);
err_stopfd:
	close(c->stop_fd);
err_free:
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return err;
}

void cb_control_stop(struct cb_control *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	if (write(c->stop_fd, &one, sizeof(one)) != sizeof(one))
		cb_warn("control: cannot wake the accept thread: %s", strerror(errno));
	pthread_join(c->accept_thread, NULL);
	close(c->listen_fd);
	unlink(c->path);

	/* Unblock every client thread (reads and writes fail at once), then
	 * wait for them: they touch `c` until they end. */
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	for (unsigned i = 0; i < CB_CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			shutdown(c->clients[i].fd, SHUT_RDWR);
	while (c->nclients)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);

	close(c->stop_fd);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

unsigned cb_control_clients(const struct cb_control *c)
{
	return atomic_load_explicit(&c->nclients, memory_order_relaxed);
}

uint64_t cb_control_accepted(const struct cb_control *c)
{
	return atomic_load_explicit(&c->accepted, memory_order_relaxed);
}

uint64_t cb_control_rejected(const struct cb_control *c)
{
	return atomic_load_explicit(&c->rejected, memory_order_relaxed);
}
