// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fuzz_proto.c — libFuzzer target for the control-protocol decoders
 * (proto.h): a frame header and, when it checks out, its payload through
 * the decoder of its type. What the daemon does with a client's bytes. */
#include <stdint.h>
#include <string.h>

#include "common/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_frame_hdr h;
	const uint8_t *p = data + sizeof(h);
	size_t len;
	const char *why;
	union {
		struct cb_dump_req dump;
		struct cb_drain_req drain;
		struct cb_end end;
		struct cb_drained drained;
		struct cb_error error;
	} out;
	const struct cb_row *rows;
	const struct cb_stat_entry *ents;
	uint32_t n;

	if (cb_proto_check_hdr(data, size, &h, &why))
		return 0;
	len = size - sizeof(h);
	if (len > h.length)
		len = h.length;
	switch (h.type) {
	case CB_MSG_DUMP_REQ:
		cb_proto_decode_dump_req(p, len, &out.dump, &why);
		break;
	case CB_MSG_DRAIN_REQ:
		cb_proto_decode_drain_req(p, len, &out.drain, &why);
		break;
	case CB_MSG_ROWS:
		if (cb_proto_decode_rows(p, len, &rows, &n, &why) == 0 && n)
			(void)strlen(rows[n - 1].comm);
		break;
	case CB_MSG_END:
		cb_proto_decode_end(p, len, &out.end, &why);
		break;
	case CB_MSG_STATS:
		if (cb_proto_decode_stats(p, len, &ents, &n, &why) == 0 && n)
			(void)strlen(ents[n - 1].name);
		break;
	case CB_MSG_DRAINED:
		cb_proto_decode_drained(p, len, &out.drained, &why);
		break;
	case CB_MSG_ERROR:
		if (cb_proto_decode_error(p, len, &out.error, &why) == 0)
			(void)strlen(out.error.message);
		break;
	}
	return 0;
}
