// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* parse.c — see parse.h. */
#include "common/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Read decimal digits at *p into *v; -ERANGE on overflow, -EINVAL if none. */
static int read_digits(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t acc = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = *s - '0';

		if (acc > (UINT64_MAX - d) / 10)
			return -ERANGE;
		acc = acc * 10 + d;
	}
	*p = s;
	*v = acc;
	return 0;
}

int cb_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int err;

	if (!s)
		return -EINVAL;
	err = read_digits(&s, &v);
	if (err)
		return err;
	if (*s)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	uint64_t ns;
} duration_units[] = {
	/* longest names first so "ms" is not read as "m" + junk */
	{ "ns", 1ULL },
	{ "us", 1000ULL },
	{ "ms", CB_NSEC_PER_MSEC },
	{ "s", CB_NSEC_PER_SEC },
	{ "m", 60 * CB_NSEC_PER_SEC },
	{ "h", 3600 * CB_NSEC_PER_SEC },
	{ "d", 86400 * CB_NSEC_PER_SEC },
};

int cb_parse_duration(const char *s, uint64_t *out_ns)
{
	uint64_t total = 0;
	int err, parts = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; parts++) {
		uint64_t v, unit = 0;
		size_t i, len = 0;

		err = read_digits(&s, &v);
		if (err)
			return err;
		if (!*s) {
			/* a bare number is seconds, but only on its own: "1m30" is a typo */
			if (parts)
				return -EINVAL;
			unit = CB_NSEC_PER_SEC;
		} else {
			for (i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
				size_t n = strlen(duration_units[i].name);

				if (strncmp(s, duration_units[i].name, n) == 0 && n > len) {
					len = n;
					unit = duration_units[i].ns;
				}
			}
			if (!unit)
				return -EINVAL;
			s += len;
		}
		if (v > UINT64_MAX / unit || total > UINT64_MAX - v * unit)
			return -ERANGE;
		total += v * unit;
	}
	*out_ns = total;
	return 0;
}

char *cb_format_duration(uint64_t ns, char *buf, size_t len)
{
	uint64_t ms = ns / CB_NSEC_PER_MSEC, s = ns / CB_NSEC_PER_SEC;

	if (s == 0)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (s < 60)
		snprintf(buf, len, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%llud%02lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s % 86400 / 3600));
	return buf;
}

int cb_parse_size(const char *s, uint64_t *out)
{
	static const char *const suffix[] = { "", "k", "m", "g", "t" };
	uint64_t v, mult = 1;
	size_t i;
	int err;

	if (!s)
		return -EINVAL;
	err = read_digits(&s, &v);
	if (err)
		return err;
	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++, mult <<= 10) {
		char longer[8];

		snprintf(longer, sizeof(longer), "%sib", suffix[i]);
		if (strcasecmp(s, suffix[i]) == 0 || (i > 0 && strcasecmp(s, longer) == 0) ||
		    (i == 0 && strcasecmp(s, "b") == 0))
			break;
	}
	if (i == sizeof(suffix) / sizeof(suffix[0]))
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

char *cb_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t i = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && i + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f%s", v, unit[i]);
	return buf;
}

int cb_parse_addr(const char *s, uint8_t *family, uint8_t addr[16])
{
	char buf[CB_ADDR_STRLEN + 2];
	size_t n;
	uint8_t a[16] = { 0 };

	if (!s)
		return -EINVAL;
	n = strlen(s);
	if (n >= sizeof(buf))
		return -EINVAL;
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') { /* [v6], as in URLs and ss */
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = '\0';
		if (inet_pton(AF_INET6, buf, a) != 1)
			return -EINVAL;
		*family = 6;
	} else if (inet_pton(AF_INET, s, a) == 1) {
		*family = 4;
	} else if (inet_pton(AF_INET6, s, a) == 1) {
		*family = 6;
	} else {
		return -EINVAL;
	}
	memcpy(addr, a, 16);
	return 0;
}

/* Dotted quad by hand: glibc's inet_ntop() goes through sprintf, and a
 * JSON dump of a million sessions formats two million addresses. */
static char *format_ipv4(const uint8_t a[4], char *buf)
{
	char *p = buf;

	for (int i = 0; i < 4; i++) {
		unsigned int v = a[i];

		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
	return buf;
}

char *cb_format_addr(unsigned int family, const uint8_t addr[16], char *buf, size_t len)
{
	if (family == 4 && len >= 16)
		return format_ipv4(addr, buf);
	if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

int cb_parse_port(const char *s, uint16_t *port)
{
	uint64_t v;
	int err = cb_parse_u64(s, 1, 65535, &v);

	if (!err)
		*port = (uint16_t)v;
	return err;
}
