// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for the key = value reader (config.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/config.h"

struct seen {
	char text[1024];
	int n;
};

/* Collect "key=value@line;" and reject the key "bad". */
static int collect(const char *key, const char *value, unsigned int line, void *ctx, char *err,
		   size_t errlen)
{
	struct seen *s = ctx;
	size_t len = strlen(s->text);

	if (!strcmp(key, "bad")) {
		snprintf(err, errlen, "f:%u: unknown key 'bad'", line);
		return -EINVAL;
	}
	snprintf(s->text + len, sizeof(s->text) - len, "%s=%s@%u;", key, value, line);
	s->n++;
	return 0;
}

static int parse(const char *text, struct seen *s, char *err)
{
	memset(s, 0, sizeof(*s));
	return cb_config_parse_buf("f", text, strlen(text), collect, s, err, 256);
}

static void test_good(void **state)
{
	struct seen s;
	char err[256];

	assert_int_equal(parse("# connbeatd\n\nidle = 30s\n  linger=5s  \n"
			       "metrics = off # no scraping here\n"
			       "socket = \"/run/my sock # 1\"\n"
			       "idle-basis\t=\tany\r\n"
			       "pin-dir = /sys/fs/bpf/x#y\n",
			       &s, err),
			 0);
	assert_string_equal(s.text, "idle=30s@3;linger=5s@4;metrics=off@5;"
				    "socket=/run/my sock # 1@6;idle-basis=any@7;"
				    "pin-dir=/sys/fs/bpf/x#y@8;");
	assert_int_equal(parse("", &s, err), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(parse("a = 1", &s, err), 0); /* no final newline */
	assert_string_equal(s.text, "a=1@1;");
}

static void test_errors(void **state)
{
	struct seen s;
	char err[256], big[CB_CONFIG_MAX_LINE + 20];

	assert_int_equal(parse("idle 30s\n", &s, err), -EINVAL);
	assert_string_equal(err, "f:1: expected 'key = value'");
	assert_int_equal(parse("a = 1\n= 2\n", &s, err), -EINVAL);
	assert_string_equal(err, "f:2: expected 'key = value'");
	assert_int_equal(parse("\n\nIdle = 1\n", &s, err), -EINVAL); /* keys are lower case */
	assert_non_null(strstr(err, "f:3:"));
	assert_int_equal(parse("a =   \n", &s, err), -EINVAL);
	assert_string_equal(err, "f:1: 'a' has no value");
	assert_int_equal(parse("a = \"x\n", &s, err), -EINVAL);
	assert_non_null(strstr(err, "unterminated"));
	assert_int_equal(parse("a = \"x\" y\n", &s, err), -EINVAL);
	assert_int_equal(parse("ok = 1\nbad = 2\nok = 3\n", &s, err), -EINVAL);
	assert_string_equal(err, "f:2: unknown key 'bad'");
	assert_int_equal(s.n, 1); /* stopped at the first error */
	memset(big, 'x', sizeof(big) - 1);
	big[0] = 'k';
	big[1] = '=';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(big, &s, err), -EINVAL);
	assert_non_null(strstr(err, "longer"));
	assert_int_equal(cb_config_parse_buf("f", "a = 1\0b = 2\n", 12, collect, &s, err, 256),
			 -EINVAL);
}

static void test_file(void **state)
{
	char path[] = "/tmp/connbeat-config-XXXXXX", err[256];
	struct seen s = { 0 };
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x = 1\nbad = 1\n", 14), 14);
	close(fd);
	assert_int_equal(cb_config_parse_file(path, collect, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "f:2: unknown key 'bad'");
	unlink(path);
	assert_int_equal(cb_config_parse_file(path, collect, &s, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
