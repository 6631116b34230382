// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_parse.c — libFuzzer target for the value parsers in user/common/parse.h
 * (durations, sizes, integers). Besides "no crash, no UB", it checks one
 * property: a formatted duration parses back to a value no larger than the
 * original (the formatter truncates, never rounds up).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[64], out[32];
	uint64_t v, back;

	if (size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	if (cb_parse_duration(buf, &v) == 0) {
		cb_format_duration(v, out, sizeof(out));
		if (cb_parse_duration(out, &back) != 0 || back > v)
			abort();
	}
	if (cb_parse_size(buf, &v) == 0)
		cb_format_size(v, out, sizeof(out));
	(void)cb_parse_u64(buf, 1, 65535, &v);
	return 0;
}
