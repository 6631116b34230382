// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests of user/kernel/loader.c that need no privileges: ring sizes and the
 * missing-tracepoint check against this kernel's BTF. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/btf.h>

#include "kernel/loader.h"

static void test_ring_size(void **state)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	const char *why;

	(void)state;
	assert_int_equal(cb_loader_check_ring_size(page, &why), 0);
	assert_null(why);
	assert_int_equal(cb_loader_check_ring_size(CB_DEFAULT_EVENTS_RING_BYTES, NULL), 0);
	assert_int_equal(cb_loader_check_ring_size(CB_RING_MAX_BYTES, NULL), 0);
	assert_int_equal(cb_loader_check_ring_size(0, &why), -EINVAL);
	assert_string_equal(why, "smaller than one page");
	assert_int_equal(cb_loader_check_ring_size(page * 3, &why), -EINVAL);
	assert_string_equal(why, "not a power of two");
	assert_int_equal(cb_loader_check_ring_size(2ull * CB_RING_MAX_BYTES, &why), -EINVAL);
	assert_string_equal(why, "larger than 1GiB");
}

static void test_missing_tracepoints(void **state)
{
	const char *const names[] = { "inet_sock_set_state", "connbeat_no_such_tracepoint",
				      "tcp_probe", "sock_recv_length", "tcp_nope" };
	size_t missing[5] = { 0 };
	struct btf *btf;

	(void)state;
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		skip(); /* no kernel BTF here: nothing to check against */
		return;
	}
	btf = btf__load_vmlinux_btf();
	assert_non_null(btf);
	assert_int_equal(cb_loader_missing_tracepoints(btf, names, 5, missing), 2);
	assert_int_equal(missing[0], 1);
	assert_int_equal(missing[1], 4);
	assert_int_equal(cb_loader_missing_tracepoints(btf, names, 1, missing), 0);
	btf__free(btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_size),
		cmocka_unit_test(test_missing_tracepoints),
	};

	return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
