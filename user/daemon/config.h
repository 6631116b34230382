/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * config.h — a `key = value` configuration file reader.
 *
 * Syntax: one setting per line, `key = value`; blank lines and lines whose
 * first non-blank character is '#' are ignored; blanks around key and value
 * are trimmed; a value may be wrapped in double quotes (to keep blanks or a
 * '#'); otherwise a ` #` starts a trailing comment. Keys are [a-z0-9_-]+.
 * Lines longer than CB_CONFIG_MAX_LINE are an error, not truncated.
 *
 * The reader knows no keys: each setting goes to the caller's callback with
 * its line number; the callback accepts it (0) or rejects it with a message
 * (which should name the file and line — it gets both). Syntax errors are
 * reported as "<name>:<line>: <what>". Parsing stops at the first error and
 * returns -EINVAL (or -errno when the file cannot be read). Pure apart from
 * reading the file; the in-memory variant is what the fuzzer drives.
 */
#ifndef CONNBEAT_CONFIG_H
#define CONNBEAT_CONFIG_H

#include <stddef.h>

#define CB_CONFIG_MAX_LINE 1024
#define CB_CONFIG_MAX_SIZE (1 << 20)

typedef int (*cb_config_fn)(const char *key, const char *value, unsigned int line, void *ctx,
			    char *err, size_t errlen);

int cb_config_parse_buf(const char *name, const char *buf, size_t len, cb_config_fn fn,
			void *ctx, char *err, size_t errlen);

int cb_config_parse_file(const char *path, cb_config_fn fn, void *ctx, char *err, size_t errlen);

#endif /* CONNBEAT_CONFIG_H */
