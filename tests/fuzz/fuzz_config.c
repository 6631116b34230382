// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fuzz_config.c — libFuzzer target for the config-file reader (config.h)
 * and the daemon's option setter it feeds (options.h): any bytes as a
 * connbeatd.conf. */
#include <stdint.h>
#include <string.h>

#include "daemon/config.h"
#include "common/log.h"
#include "daemon/options.h"

static int apply(const char *key, const char *value, unsigned int line, void *ctx, char *err,
		 size_t errlen)
{
	return cb_options_set(ctx, key, value, err, errlen) ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_options o;
	char err[512];

	cb_log_init("fuzz", CB_LOG_ERROR);
	cb_options_defaults(&o);
	cb_config_parse_buf("fuzz.conf", (const char *)data, size, apply, &o, err, sizeof(err));
	return 0;
}
