// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for the value parsers and formatters in user/common/parse.h. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/parse.h"

#define MS CB_NSEC_PER_MSEC
#define S CB_NSEC_PER_SEC

static void test_duration_accepts(void **state)
{
	static const struct {
		const char *in;
		uint64_t ns;
	} ok[] = {
		{ "500ms", 500 * MS }, { "30s", 30 * S },     { "5m", 300 * S },
		{ "2h", 7200 * S },    { "1d", 86400 * S },   { "1m30s", 90 * S },
		{ "90", 90 * S },      { "0", 0 },            { "250us", 250000 },
		{ "7ns", 7 },          { "1h1m1s1ms", 3661 * S + MS },
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		assert_int_equal(cb_parse_duration(ok[i].in, &v), 0);
		assert_int_equal(v, ok[i].ns);
	}
}

static void test_duration_rejects(void **state)
{
	static const char *const bad[] = { "", "s", "5x", "1m30", "-1s", " 5s", "5s ", "5 s",
					   "1.5s", "0x10s", "5sec" };
	uint64_t v = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cb_parse_duration(bad[i], &v), -EINVAL);
		assert_int_equal(v, 42); /* untouched on error */
	}
	assert_int_equal(cb_parse_duration(NULL, &v), -EINVAL);
	assert_int_equal(cb_parse_duration("99999999999999999999s", &v), -ERANGE);
	assert_int_equal(cb_parse_duration("300000000000d", &v), -ERANGE);
}

static void test_duration_format(void **state)
{
	char buf[16];

	assert_string_equal(cb_format_duration(0, buf, sizeof(buf)), "0ms");
	assert_string_equal(cb_format_duration(850 * MS, buf, sizeof(buf)), "850ms");
	assert_string_equal(cb_format_duration(12 * S + 999 * MS, buf, sizeof(buf)), "12s");
	assert_string_equal(cb_format_duration(92 * S, buf, sizeof(buf)), "1m32s");
	assert_string_equal(cb_format_duration(7500 * S, buf, sizeof(buf)), "2h05m");
	assert_string_equal(cb_format_duration(3 * 86400 * S + 4 * 3600 * S, buf, sizeof(buf)),
			    "3d04h");
	/* the widest value still fits 16 bytes */
	assert_non_null(cb_format_duration(UINT64_MAX, buf, sizeof(buf)));
}

static void test_size(void **state)
{
	uint64_t v;
	char buf[16];

	assert_int_equal(cb_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cb_parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(cb_parse_size("4MiB", &v), 0);
	assert_int_equal(v, 4 << 20);
	assert_int_equal(cb_parse_size("1g", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(cb_parse_size("12B", &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(cb_parse_size("4mb", &v), -EINVAL);
	assert_int_equal(cb_parse_size("K", &v), -EINVAL);
	assert_int_equal(cb_parse_size("99999999999T", &v), -ERANGE);

	assert_string_equal(cb_format_size(512, buf, sizeof(buf)), "512B");
	assert_string_equal(cb_format_size(1024, buf, sizeof(buf)), "1.0KiB");
	assert_string_equal(cb_format_size(13002342, buf, sizeof(buf)), "12.4MiB");
	assert_non_null(cb_format_size(UINT64_MAX, buf, sizeof(buf)));
}

static void test_u64(void **state)
{
	uint64_t v;

	assert_int_equal(cb_parse_u64("8080", 1, 65535, &v), 0);
	assert_int_equal(v, 8080);
	assert_int_equal(cb_parse_u64("65536", 1, 65535, &v), -ERANGE);
	assert_int_equal(cb_parse_u64("0", 1, 65535, &v), -ERANGE);
	assert_int_equal(cb_parse_u64("+5", 0, 10, &v), -EINVAL);
	assert_int_equal(cb_parse_u64("5 ", 0, 10, &v), -EINVAL);
	assert_int_equal(cb_parse_u64("", 0, 10, &v), -EINVAL);
	assert_int_equal(cb_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_accepts), cmocka_unit_test(test_duration_rejects),
		cmocka_unit_test(test_duration_format),  cmocka_unit_test(test_size),
		cmocka_unit_test(test_u64),
	};

	return cmocka_run_group_tests_name("parse_values", tests, NULL, NULL);
}
