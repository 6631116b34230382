// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* proc.c — see proc.h. */
#include "kernel/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cb_proc_comm(uint32_t pid, char out[16])
{
	char path[32];
	ssize_t n;
	int fd, err = 0;

	memset(out, 0, 16);
	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, out, 15);
	if (n < 0)
		err = -errno;
	else if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
	close(fd);
	return err;
}

void cb_comm_cache_get(struct cb_comm_cache *c, uint32_t pid, uint64_t now_ns, char out[16])
{
	unsigned int i = (pid * 2654435761u) % CB_COMM_CACHE_SLOTS;

	if (c->slot[i].pid != pid || now_ns - c->slot[i].stamp_ns > CB_COMM_CACHE_TTL_NS) {
		c->reads++;
		if (cb_proc_comm(pid, c->slot[i].comm))
			memset(c->slot[i].comm, 0, sizeof(c->slot[i].comm));
		c->slot[i].pid = pid;
		c->slot[i].stamp_ns = now_ns;
	}
	memcpy(out, c->slot[i].comm, 16);
}
