// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* caps.c — see caps.h. Raw capget/capset: glibc has no wrappers and
 * libcap would be a dependency for two system calls. */
#include "daemon/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"

static int cap_last(void)
{
	int last = CAP_LAST_CAP;

	/* the running kernel may know more capabilities than our headers */
	while (prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0)
		last++;
	return last;
}

static const char *cap_name(int c)
{
	switch (c) {
	case CAP_SYS_ADMIN:
		return "CAP_SYS_ADMIN (entering other network namespaces)";
	case CAP_SYS_PTRACE:
		return "CAP_SYS_PTRACE (reaching the namespaces of other users' processes)";
	case CAP_NET_ADMIN:
		return "CAP_NET_ADMIN (connbeat kill)";
	default:
		return "a capability";
	}
}

int cb_caps_keep_only(unsigned long long keep)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	unsigned long long permitted;
	int last = cap_last();

	/* Keep only what we hold: a service manager may have bounded us
	 * tighter (CapabilityBoundingSet=). Say what that costs, and go on. */
	if (syscall(SYS_capget, &hdr, data)) {
		cb_err("reading the capabilities (capget) failed: %s", strerror(errno));
		return -errno;
	}
	permitted = (unsigned long long)data[1].permitted << 32 | data[0].permitted;
	for (int c = 0; c < 64; c++)
		if ((keep & (1ull << c)) && !(permitted & (1ull << c)))
			cb_warn("%s is not permitted (a CapabilityBoundingSet= or a container "
				"without it): what needs it will fail; grant it to connbeatd",
				cap_name(c));
	keep &= permitted;

	/* The bounding set first: dropping it needs CAP_SETPCAP, which we
	 * are about to lose. EINVAL: capability unknown to this kernel. */
	for (int c = 0; c <= last; c++) {
		if ((c < 64 && (keep & (1ull << c))) || prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0 || errno == EINVAL)
			continue;
		if (errno == EPERM) {
			/* no CAP_SETPCAP (bounded by a service manager): the
			 * bounding set stays as it set it; with no_new_privs
			 * and no exec it grants nothing */
			cb_info("the capability bounding set is left as given (no CAP_SETPCAP)");
			break;
		}
		cb_err("dropping capability %d from the bounding set failed: %s", c,
		       strerror(errno));
		return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		cb_err("clearing the ambient capabilities failed: %s", strerror(errno));
		return -errno;
	}
	memset(data, 0, sizeof(data));
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		data[i].effective = data[i].permitted = (uint32_t)(keep >> (32 * i));
	if (syscall(SYS_capset, &hdr, data)) {
		cb_err("dropping capabilities (capset) failed: %s", strerror(errno));
		return -errno;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		cb_err("setting no_new_privs failed: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int cb_caps_drop_all(void)
{
	return cb_caps_keep_only(0);
}

long long cb_caps_effective_mask(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	return (long long)((uint64_t)data[1].effective << 32 | data[0].effective);
}

int cb_caps_effective_count(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int n = 0;

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		n += __builtin_popcount(data[i].effective);
	return n;
}
