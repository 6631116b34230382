/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * parse.h — strict parsers and human formatters for the values operators
 * type and read: durations, sizes, integers.
 *
 * Every parser takes a NUL-terminated string, accepts the whole string or
 * nothing, and returns 0 or a negative errno (-EINVAL: not a valid value,
 * -ERANGE: out of range); the output is written only on success. None of
 * them allocates, so they are safe to fuzz and to call from any thread.
 */
#ifndef CONNBEAT_PARSE_H
#define CONNBEAT_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define CB_NSEC_PER_MSEC 1000000ULL
#define CB_NSEC_PER_SEC 1000000000ULL

/* "500ms", "30s", "5m", "2h", "1d", combinations like "1m30s", and a bare
 * number meaning seconds. Units: ns us ms s m h d. Result in nanoseconds. */
int cb_parse_duration(const char *s, uint64_t *out_ns);

/* "0s", "850ms", "12s", "1m32s", "2h05m", "3d04h": the two most significant
 * units, truncated. Returns `buf`. A buffer of 16 bytes always suffices. */
char *cb_format_duration(uint64_t ns, char *buf, size_t len);

/* "4096", "64K", "4M", "1G" (also KiB/MiB/GiB, case-insensitive): bytes,
 * powers of 1024. */
int cb_parse_size(const char *s, uint64_t *out);

/* "512B", "1.0KiB", "12.4MiB", "3.2GiB". Returns `buf`; 16 bytes suffice. */
char *cb_format_size(uint64_t bytes, char *buf, size_t len);

/* A decimal integer in [min, max]; no sign, no spaces, no trailing junk. */
int cb_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* An IP address: "10.0.0.1", "::1", "[::1]", "::ffff:10.0.0.1". IPv4 gives
 * family 4 and the address in addr[0..4) (the rest zeroed); IPv6, including
 * v4-mapped, gives family 6 (connbeat keeps v4-mapped addresses as IPv6,
 * the way `ss` shows them). */
int cb_parse_addr(const char *s, uint8_t *family, uint8_t addr[16]);

/* The usual notation (inet_ntop) of a family-4/6 address. Returns buf. */
#define CB_ADDR_STRLEN 46
char *cb_format_addr(unsigned int family, const uint8_t addr[16], char *buf, size_t len);

/* A TCP port, 1..65535. */
int cb_parse_port(const char *s, uint16_t *port);

#endif /* CONNBEAT_PARSE_H */
