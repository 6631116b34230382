// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests of user/kernel/record.c: the ring-record gate and the --trace line. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel/record.h"

static struct cb_record sample(void)
{
	struct cb_record r;

	memset(&r, 0, sizeof(r));
	r.kind = CB_REC_CLOSE;
	r.version = CB_ABI_VERSION;
	r.size = sizeof(r);
	r.old_state = CB_TCP_FIN_WAIT2;
	r.new_state = CB_TCP_CLOSE;
	r.cookie = 4097;
	r.ts_ns = 12ull * 1000000000ull + 345;
	r.tuple.family = 4;
	memcpy(r.tuple.saddr, "\x7f\x00\x00\x01", 4);
	memcpy(r.tuple.daddr, "\x0a\x01\x02\x03", 4);
	r.tuple.sport = 43210;
	r.tuple.dport = 80;
	r.tuple.netns = 4026531840u;
	r.flags = CB_RF_COUNTERS;
	r.ctr.bytes_acked = 1000003;
	r.ctr.bytes_received = 12;
	r.ctr.segs_in = 5;
	r.ctr.segs_out = 7;
	r.ctr.total_retrans = 1;
	r.ctr.srtt_us = 31;
	return r;
}

static const char *check(const void *p, size_t len)
{
	const char *why = "untouched";

	if (cb_record_check(p, len, &why) == 0)
		return NULL;
	return why;
}

static void test_valid(void **state)
{
	struct cb_record r = sample();

	(void)state;
	assert_int_equal(cb_record_check(&r, sizeof(r), NULL), 0);
	assert_null(check(&r, sizeof(r)));
}

static void test_length(void **state)
{
	unsigned char buf[sizeof(struct cb_record) + 8];
	struct cb_record r = sample();

	(void)state;
	memcpy(buf, &r, sizeof(r));
	assert_string_equal(check(NULL, sizeof(r)), "short record");
	assert_string_equal(check(buf, 0), "short record");
	assert_string_equal(check(buf, 4), "short record");
	assert_string_equal(check(buf, sizeof(r) - 1), "short record");
	assert_string_equal(check(buf, sizeof(r) + 8), "oversized record");
	assert_int_equal(cb_record_check(buf, 3, NULL), -EINVAL);
}

static void test_unaligned(void **state)
{
	unsigned char buf[sizeof(struct cb_record) + 1];
	struct cb_record r = sample();

	(void)state;
	memcpy(buf + 1, &r, sizeof(r));
	assert_null(check(buf + 1, sizeof(r)));
}

static void test_fields(void **state)
{
	struct cb_record r;

	(void)state;
	r = sample();
	r.version = CB_ABI_VERSION + 1;
	r.kind = 0; /* the version is checked first: nothing else is trusted */
	assert_string_equal(check(&r, sizeof(r)), "wrong ABI version");
	r = sample();
	r.size = sizeof(r) - 8;
	assert_string_equal(check(&r, sizeof(r)), "bad size field");
	r = sample();
	r.kind = 0;
	assert_string_equal(check(&r, sizeof(r)), "unknown kind");
	r.kind = CB_REC_KIND_MAX;
	assert_string_equal(check(&r, sizeof(r)), "unknown kind");
	r = sample();
	r.tuple.family = 2; /* AF_INET is not the ABI's 4 */
	assert_string_equal(check(&r, sizeof(r)), "bad address family");
	r = sample();
	r.new_state = CB_TCP_MAX_STATES;
	assert_string_equal(check(&r, sizeof(r)), "bad TCP state");
	r = sample();
	r.new_state = 0;
	assert_string_equal(check(&r, sizeof(r)), "bad TCP state");
	r = sample();
	r.old_state = 200;
	assert_string_equal(check(&r, sizeof(r)), "bad TCP state");
	r = sample();
	r.flags = 0x8000;
	assert_string_equal(check(&r, sizeof(r)), "unknown flags");
	r = sample();
	r.cookie = 0;
	assert_string_equal(check(&r, sizeof(r)), "zero cookie");
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(cb_record_kind_name(CB_REC_OPEN), "OPEN");
	assert_string_equal(cb_record_kind_name(CB_REC_BEAT), "BEAT");
	assert_null(cb_record_kind_name(0));
	assert_null(cb_record_kind_name(99));
	assert_string_equal(cb_tcp_state_name(CB_TCP_CLOSE_WAIT), "CLOSE_WAIT");
	assert_string_equal(cb_tcp_state_name(CB_TCP_ESTABLISHED), "ESTABLISHED");
	assert_null(cb_tcp_state_name(0));
	assert_null(cb_tcp_state_name(CB_TCP_MAX_STATES));
}

static void test_format_v4(void **state)
{
	struct cb_record r = sample();
	char buf[512];
	int n;

	(void)state;
	n = cb_record_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "12.000000345 CLOSE cookie=4097 127.0.0.1:43210 > 10.1.2.3:80 "
				 "FIN_WAIT2>CLOSE netns=4026531840 tx=1000003 rx=12 segs_in=5 "
				 "segs_out=7 retrans=1 rtt_us=31 flags=counters");
	assert_int_equal(n, (int)strlen(buf));
}

static void test_format_v6_process(void **state)
{
	struct cb_record r = sample();
	char buf[512];

	(void)state;
	r.kind = CB_REC_OPEN;
	r.old_state = CB_TCP_CLOSE;
	r.new_state = CB_TCP_SYN_SENT;
	r.cgroup_id = 77;
	r.tuple.family = 6;
	memset(r.tuple.saddr, 0, 16);
	r.tuple.saddr[15] = 1; /* ::1 */
	memcpy(r.tuple.daddr, "\0\0\0\0\0\0\0\0\0\0\xff\xff\x7f\0\0\x01", 16);
	r.tuple.sport = 0;
	r.flags = CB_RF_PROCESS_CTX;
	r.pid = 42;
	memcpy(r.comm, "my worker\x01=x\0junk", 16);
	cb_record_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "12.000000345 OPEN cookie=4097 [::1]:0 > [::ffff:127.0.0.1]:80 "
				 "CLOSE>SYN_SENT netns=4026531840 cgroup=77 pid=42 comm=my?worker??x "
				 "flags=proc");
}

static void test_format_flags_and_truncation(void **state)
{
	struct cb_record r = sample();
	char full[512], small[20];
	int n;

	(void)state;
	r.kind = CB_REC_RESET;
	r.flags = CB_RF_RST_SENT | CB_RF_FROM_DESTROY;
	n = cb_record_format(&r, full, sizeof(full));
	assert_non_null(strstr(full, " flags=destroy,rst_sent"));
	assert_null(strstr(full, " tx=")); /* no counters without CB_RF_COUNTERS */
	r.flags = CB_RF_OWNER_PID | CB_RF_REMNANT;
	r.pid = 7;
	cb_record_format(&r, full, sizeof(full));
	assert_non_null(strstr(full, " pid=7 flags=remnant,owner"));
	r.flags = CB_RF_RST_SENT | CB_RF_FROM_DESTROY;
	n = cb_record_format(&r, full, sizeof(full));
	/* Truncated like snprintf: terminated, returns the wanted length. */
	assert_int_equal(cb_record_format(&r, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, full, sizeof(small) - 1);
	assert_int_equal(cb_record_format(&r, NULL, 0), n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_unaligned),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_format_v4),
		cmocka_unit_test(test_format_v6_process),
		cmocka_unit_test(test_format_flags_and_truncation),
	};

	return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
