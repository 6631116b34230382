// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* client.c — see client.h. */
#include "cli/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/proto.h"

static char *frame_buf;

int cb_client_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "connbeat: --socket '%s': path too long\n", path);
		exit(EXIT_USAGE);
	}
	if (!frame_buf && !(frame_buf = malloc(CB_PROTO_MAX_PAYLOAD))) {
		fprintf(stderr, "connbeat: out of memory\n");
		exit(EXIT_UNREACHABLE);
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "connbeat: cannot create a socket: %s\n", strerror(errno));
		exit(EXIT_UNREACHABLE);
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno == EACCES || errno == EPERM)
		fprintf(stderr,
			"connbeat: permission denied on %s: the control socket is root-only; "
			"run connbeat with sudo\n",
			path);
	else
		fprintf(stderr,
			"connbeat: cannot reach connbeatd at %s: %s. Is it running? Start it with "
			"'sudo connbeatd' (or 'sudo systemctl start connbeatd'), or read the kernel "
			"maps without it: 'sudo connbeat --maps stale'\n",
			path, strerror(errno));
	exit(EXIT_UNREACHABLE);
}

const void *cb_client_payload(void)
{
	return frame_buf;
}

void cb_client_read(int fd, struct cb_frame_hdr *h)
{
	const char *why = "";
	struct cb_error e;
	int err;

	err = cb_proto_read(fd, h, frame_buf, CB_PROTO_MAX_PAYLOAD, &why);
	if (err) {
		if (err == -ENODATA || err == -EPIPE || err == -ECONNRESET)
			fprintf(stderr, "connbeat: connbeatd closed the connection before "
					"answering (did it stop?)\n");
		else if (err == -EPROTONOSUPPORT)
			fprintf(stderr, "connbeat: %s: use the connbeat that came with this "
					"connbeatd\n", why);
		else
			fprintf(stderr, "connbeat: bad reply from connbeatd: %s\n",
				why && *why ? why : strerror(-err));
		exit(EXIT_UNREACHABLE);
	}
	if (h->type != CB_MSG_ERROR)
		return;
	if (cb_proto_decode_error(frame_buf, h->length, &e, &why)) {
		fprintf(stderr, "connbeat: bad error reply from connbeatd: %s\n", why);
		exit(EXIT_UNREACHABLE);
	}
	fprintf(stderr, "connbeat: connbeatd: %s\n", e.message);
	exit(e.code == EINVAL ? EXIT_USAGE : EXIT_UNREACHABLE);
}

void cb_client_send(int fd, enum cb_msg_type type, const void *p, uint32_t len)
{
	int err = cb_proto_write(fd, type, p, len);

	if (err) {
		fprintf(stderr, "connbeat: sending the request to connbeatd failed: %s\n",
			strerror(-err));
		exit(EXIT_UNREACHABLE);
	}
}

void cb_client_end(const struct cb_frame_hdr *h, struct cb_end *end)
{
	const char *why;

	if (cb_proto_decode_end(frame_buf, h->length, end, &why)) {
		fprintf(stderr, "connbeat: bad end of reply from connbeatd: %s\n", why);
		exit(EXIT_UNREACHABLE);
	}
	if (end->status)
		fprintf(stderr, "connbeat: warning: the reply stopped early: %s\n",
			strerror(end->status));
}

uint64_t cb_client_stat(int fd, const char *name)
{
	const struct cb_stat_entry *e;
	struct cb_frame_hdr h;
	const char *why;
	uint32_t n;

	cb_client_send(fd, CB_MSG_STATS_REQ, NULL, 0);
	cb_client_read(fd, &h);
	if (h.type != CB_MSG_STATS || cb_proto_decode_stats(frame_buf, h.length, &e, &n, &why)) {
		fprintf(stderr, "connbeat: unexpected reply to stats from connbeatd\n");
		exit(EXIT_UNREACHABLE);
	}
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(e[i].name, name))
			return e[i].value;
	return 0;
}
