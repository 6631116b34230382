// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for the CLI's printer (user/cli/output.h): the exact bytes of
 * each mode, escaping, and rows longer than its buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/output.h"

static struct cb_out o; /* static: its 64-KiB buffer */

struct mem {
	FILE *f;
	char *buf;
	size_t len;
};

static void mem_open(struct mem *m)
{
	m->buf = NULL;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	assert_non_null(m->f);
}

/* What was written, NUL-terminated; freed by the caller. */
static char *mem_close(struct mem *m)
{
	assert_int_equal(fclose(m->f), 0);
	return m->buf;
}

/* The fields a row of these tests has, in every JSON mode. */
static void fields(struct cb_out *out, uint64_t id, const char *name)
{
	cb_out_row_begin(out);
	cb_out_json_str(out, "event", "open");
	cb_out_json_u64(out, "id", id);
	cb_out_json_str(out, "name", name);
	cb_out_json_null(out, "pid");
	cb_out_json_bool(out, "ok", true);
	cb_out_row_end(out);
}

#define LINE1 "{\"event\":\"open\",\"id\":0,\"name\":\"plain\",\"pid\":null,\"ok\":true}\n"
#define LINE2                                                                        \
	"{\"event\":\"open\",\"id\":18446744073709551615,"                               \
	"\"name\":\"q\\\"b\\\\n\\nt\\tc\\u0001h\\u00e9\",\"pid\":null,\"ok\":true}\n"

/* One object per line, no array around them, each line out once flushed;
 * strings escaped so that each line is valid JSON (a process name is any
 * bytes: controls and bytes >= 0x80 as \u00XX). */
static void test_json_lines(void **state)
{
	struct mem m;
	char *got;

	mem_open(&m);
	cb_out_begin(&o, m.f, CB_OUT_JSON_LINES, NULL, 0, false);
	fields(&o, 0, "plain");
	cb_out_flush(&o);
	assert_string_equal(m.buf, LINE1);
	fields(&o, UINT64_MAX, "q\"b\\n\nt\tc\x01h\xe9");
	cb_out_end(&o);
	got = mem_close(&m);
	assert_string_equal(got, LINE1 LINE2);
	free(got);
}

/* The array mode is unchanged by the stream mode beside it. */
static void test_json_array(void **state)
{
	struct mem m;
	char *got;

	mem_open(&m);
	cb_out_begin(&o, m.f, CB_OUT_JSON, NULL, 0, false);
	cb_out_end(&o);
	got = mem_close(&m);
	assert_string_equal(got, "[]\n");
	free(got);

	mem_open(&m);
	cb_out_begin(&o, m.f, CB_OUT_JSON, NULL, 0, false);
	fields(&o, 1, "a");
	fields(&o, 2, "b");
	cb_out_end(&o);
	got = mem_close(&m);
	assert_string_equal(got, "[\n{\"event\":\"open\",\"id\":1,\"name\":\"a\",\"pid\":null,\"ok\":true},"
				 "\n{\"event\":\"open\",\"id\":2,\"name\":\"b\",\"pid\":null,\"ok\":true}"
				 "\n]\n");
	free(got);
}

/* JSON-only fields print nothing in a table. */
static void test_text(void **state)
{
	static const struct cb_col cols[] = { { "ID", 4, CB_COL_RIGHT }, { "NAME", 0, CB_COL_LEFT } };
	struct mem m;
	char *got;

	mem_open(&m);
	cb_out_begin(&o, m.f, CB_OUT_TEXT, cols, 2, true);
	cb_out_row_begin(&o);
	cb_out_u64(&o, "id", 7, NULL);
	cb_out_json_str(&o, "event", "open");
	cb_out_str(&o, "name", "x", NULL);
	cb_out_row_end(&o);
	cb_out_end(&o);
	got = mem_close(&m);
	assert_string_equal(got, "  ID NAME\n   7 x\n");
	free(got);
}

/* Rows longer than the buffer, and many of them: every byte comes out, in
 * order, each line whole. */
static void test_rows_beyond_the_buffer(void **state)
{
	size_t big = 3 * CB_OUT_JSON_BUF, rows = 2000, lines = 0;
	char *name = malloc(big + 1), *got, *p;
	struct mem m;

	assert_non_null(name);
	memset(name, 'n', big);
	name[big] = '\0';
	mem_open(&m);
	cb_out_begin(&o, m.f, CB_OUT_JSON_LINES, NULL, 0, false);
	fields(&o, 1, name);
	for (size_t i = 0; i < rows; i++)
		fields(&o, i, "r");
	cb_out_flush(&o);
	got = mem_close(&m);
	p = got;
	assert_int_equal(strncmp(p, "{\"event\":\"open\",\"id\":1,\"name\":\"", 31), 0);
	p += 31;
	assert_int_equal(strspn(p, "n"), big);
	p += big;
	assert_int_equal(strncmp(p, "\",\"pid\":null,\"ok\":true}\n", 24), 0);
	p += 24;
	for (; *p; lines++) {
		char want[128];
		int n = snprintf(want, sizeof(want),
				 "{\"event\":\"open\",\"id\":%zu,\"name\":\"r\",\"pid\":null,\"ok\":true}\n",
				 lines);

		assert_int_equal(strncmp(p, want, (size_t)n), 0);
		p += n;
	}
	assert_int_equal(lines, rows);
	free(got);
	free(name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_lines),
		cmocka_unit_test(test_json_array),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_rows_beyond_the_buffer),
	};

	return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
