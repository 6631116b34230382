/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Socket helpers the unit tests that drive real loopback TCP share.
 * Include after <cmocka.h> (wait_state asserts). Header-only: each test
 * program is one translation unit.
 */
#ifndef CONNBEAT_TESTS_UNIT_SOCKETS_H
#define CONNBEAT_TESTS_UNIT_SOCKETS_H

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* The socket's cookie (ss's sk:, sock_diag's), 0 when it cannot be read:
 * callers in a child process cannot assert. */
static inline uint64_t cookie_of(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len))
		return 0;
	return c;
}

/* Wait (bounded) until the kernel has moved fd to TCP state st: a wait for
 * the kernel's loopback processing, not for the code under test. */
static inline void wait_state(int fd, uint8_t st)
{
	struct tcp_info ti;
	socklen_t len;

	for (int i = 0; i < 5000; i++) {
		len = sizeof(ti);
		assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
		if (ti.tcpi_state == st)
			return;
		usleep(1000);
	}
	fail_msg("socket never reached TCP state %u", st);
}

/* Bring up lo in the current (new) network namespace: 0 or -errno. */
static inline int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr)) {
		err = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr))
			err = -errno;
	}
	close(fd);
	return err;
}

#endif
