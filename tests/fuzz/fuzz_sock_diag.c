// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fuzz_sock_diag.c — libFuzzer target for the sock_diag reply parser
 * (sock_diag.h): any bytes as a recorded netlink dump, every socket found
 * turned into the record the daemon would apply. */
#include <stdint.h>
#include <string.h>

#include "kernel/sock_diag.h"

static int each(const struct cb_diag_sock *s, void *ctx)
{
	struct cb_record r;

	cb_sock_diag_to_record(s, 1000000000ULL, 1, &r);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cb_sock_diag_parse(data, size, each, NULL);
	return 0;
}
