// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fuzz_record.c — libFuzzer target for the ring-record gate and formatter
 * (record.h): any bytes as they could come out of a ring buffer. */
#include <stdint.h>
#include <string.h>

#include "kernel/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_record r;
	const char *why;
	char line[512];

	if (cb_record_check(data, size, &why))
		return 0;
	memcpy(&r, data, sizeof(r));
	cb_record_format(&r, line, sizeof(line));
	return 0;
}
