/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * proto.h — encoding, strict decoding and frame I/O for the control
 * protocol (wire format: include/connbeat_proto.h).
 *
 * Decoders are pure (no I/O, no allocation) and trust nothing: they check
 * the header (magic, version, known type, flags, length bound) before the
 * payload, the payload length against the type's exact or computed size,
 * that padding is zero, that enums and filters are in range and that
 * strings are terminated. They return 0, or -EINVAL (malformed),
 * -EPROTONOSUPPORT (another protocol version), -EMSGSIZE (too large) with a
 * short static reason in *why. They are what the fuzzer drives.
 *
 * Frame I/O is blocking: whole frames, EINTR and short transfers handled,
 * a payload cap enforced before anything is read into the buffer.
 */
#ifndef CONNBEAT_PROTO_H
#define CONNBEAT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "connbeat_proto.h"

/* Fill a frame header. */
void cb_proto_hdr(struct cb_frame_hdr *h, enum cb_msg_type type, uint32_t length);

/* Check a frame header read from the wire (16 bytes at `buf`). */
int cb_proto_check_hdr(const void *buf, size_t len, struct cb_frame_hdr *out, const char **why);

/* 0 when a filter from the wire is well-formed (known fields, masks within
 * range, address family 4/6 when an address is set), else -EINVAL. */
int cb_filter_check(const struct cb_filter *f);

/* Payload decoders: `p`/`len` is the payload that followed a checked header. */
int cb_proto_decode_dump_req(const void *p, size_t len, struct cb_dump_req *out,
			     const char **why);
int cb_proto_decode_drain_req(const void *p, size_t len, struct cb_drain_req *out,
			      const char **why);
int cb_proto_decode_drain_status_req(const void *p, size_t len, struct cb_drain_status_req *out,
				     const char **why);
int cb_proto_decode_kill_req(const void *p, size_t len, struct cb_kill_req *out, const char **why);
int cb_proto_decode_summary_req(const void *p, size_t len, struct cb_summary_req *out,
				const char **why);
int cb_proto_decode_events_req(const void *p, size_t len, struct cb_events_req *out,
			       const char **why);
/* Rows are not copied: *rows points into p (8-byte aligned when p is). */
int cb_proto_decode_rows(const void *p, size_t len, const struct cb_row **rows, uint32_t *count,
			 const char **why);
int cb_proto_decode_end(const void *p, size_t len, struct cb_end *out, const char **why);
int cb_proto_decode_stats(const void *p, size_t len, const struct cb_stat_entry **entries,
			  uint32_t *count, const char **why);
int cb_proto_decode_drained(const void *p, size_t len, struct cb_drained *out, const char **why);
/* Groups and events are not copied either: pointers into p. */
int cb_proto_decode_groups(const void *p, size_t len, const struct cb_group **groups,
			   uint32_t *count, const char **why);
int cb_proto_decode_events(const void *p, size_t len, const struct cb_event **events,
			   uint32_t *count, uint64_t *missed, const char **why);
int cb_proto_decode_error(const void *p, size_t len, struct cb_error *out, const char **why);

/* Write one frame (header + payload) completely. 0 or -errno (-EPIPE when
 * the peer went away, -EAGAIN when a send timeout expired). */
int cb_proto_write(int fd, enum cb_msg_type type, const void *payload, uint32_t len);

/* Write an ERROR frame: code (positive errno) and a printf message. */
int cb_proto_write_error(int fd, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Read one frame: header checked, then its payload into buf (cap bytes).
 * Returns 0 with *hdr filled, -ENODATA on a clean EOF before any byte,
 * -EMSGSIZE when the payload exceeds cap (nothing more is read: the stream
 * is then out of sync and must be closed), the header check's error, or
 * -errno. *why is set for protocol errors.
 */
int cb_proto_read(int fd, struct cb_frame_hdr *hdr, void *buf, size_t cap, const char **why);

/* "DUMP_REQ", "ROWS", ...; NULL when unknown. */
const char *cb_proto_type_name(unsigned int type);

/* The --sort order of rows (enum cb_sort_key; CB_SORT_NONE sorts by idle):
 * largest key first, ties by the smaller cookie. qsort-style result: < 0
 * when a comes first. Shared by the daemon's top-N and the CLI's sort. */
int cb_row_sort_cmp(unsigned int sort, const struct cb_row *a, const struct cb_row *b);

#endif /* CONNBEAT_PROTO_H */
