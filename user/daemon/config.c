// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* config.c — see config.h. */
#include "daemon/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Parse one line (NUL-terminated, no newline) in place. */
static int parse_line(const char *name, unsigned int lineno, char *s, cb_config_fn fn, void *ctx,
		      char *err, size_t errlen)
{
	char *key, *value, *end;

	while (is_blank(*s))
		s++;
	if (!*s || *s == '#')
		return 0;
	key = s;
	while (is_key_char(*s))
		s++;
	end = s;
	while (is_blank(*s))
		s++;
	if (end == key || *s != '=') {
		snprintf(err, errlen, "%s:%u: expected 'key = value'", name, lineno);
		return -EINVAL;
	}
	*end = '\0';
	s++;
	while (is_blank(*s))
		s++;
	if (*s == '"') {
		value = ++s;
		while (*s && *s != '"')
			s++;
		if (*s != '"') {
			snprintf(err, errlen, "%s:%u: unterminated quoted value for '%s'", name,
				 lineno, key);
			return -EINVAL;
		}
		*s++ = '\0';
		while (is_blank(*s))
			s++;
		if (*s && *s != '#') {
			snprintf(err, errlen, "%s:%u: unexpected text after the quoted value of '%s'",
				 name, lineno, key);
			return -EINVAL;
		}
	} else {
		value = s;
		/* a trailing comment needs a blank before its '#' */
		for (; *s; s++) {
			if (*s == '#' && s > value && is_blank(s[-1]))
				break;
		}
		*s = '\0';
		while (s > value && is_blank(s[-1]))
			*--s = '\0';
		if (!*value) {
			snprintf(err, errlen, "%s:%u: '%s' has no value", name, lineno, key);
			return -EINVAL;
		}
	}
	return fn(key, value, lineno, ctx, err, errlen);
}

int cb_config_parse_buf(const char *name, const char *buf, size_t len, cb_config_fn fn,
			void *ctx, char *err, size_t errlen)
{
	char line[CB_CONFIG_MAX_LINE + 1];
	unsigned int lineno = 0;
	size_t pos = 0;
	int ret;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;

		lineno++;
		if (n > CB_CONFIG_MAX_LINE) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", name, lineno,
				 CB_CONFIG_MAX_LINE);
			return -EINVAL;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		if (memchr(line, '\0', n)) {
			snprintf(err, errlen, "%s:%u: NUL byte in the file", name, lineno);
			return -EINVAL;
		}
		ret = parse_line(name, lineno, line, fn, ctx, err, errlen);
		if (ret)
			return ret;
		pos += n + 1;
	}
	return 0;
}

int cb_config_parse_file(const char *path, cb_config_fn fn, void *ctx, char *err, size_t errlen)
{
	char *buf;
	size_t len = 0;
	ssize_t r;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot read configuration file %s: %s", path,
			 strerror(errno));
		return ret;
	}
	buf = malloc(CB_CONFIG_MAX_SIZE + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	while ((r = read(fd, buf + len, CB_CONFIG_MAX_SIZE + 1 - len)) > 0) {
		len += r;
		if (len > CB_CONFIG_MAX_SIZE)
			break;
	}
	ret = r < 0 ? -errno : 0;
	close(fd);
	if (ret)
		snprintf(err, errlen, "cannot read configuration file %s: %s", path,
			 strerror(-ret));
	else if (len > CB_CONFIG_MAX_SIZE) {
		snprintf(err, errlen, "configuration file %s is larger than %d bytes", path,
			 CB_CONFIG_MAX_SIZE);
		ret = -EFBIG;
	} else
		ret = cb_config_parse_buf(path, buf, len, fn, ctx, err, errlen);
	free(buf);
	return ret;
}
