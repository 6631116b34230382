/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * record.h — validation, names and text formatting of ring records
 * (struct cb_record, include/connbeat_abi.h).
 *
 * Contract:
 *  - cb_record_check() is the gate every ring record passes before any of
 *    its fields is trusted (the --trace printer and the daemon's ingest). It
 *    looks at the length first, then the version, then each field whose
 *    value the decoders index or switch on. It takes unaligned input (it
 *    copies), so a fuzzer can hand it any bytes.
 *  - Everything here is pure: no I/O, no allocation, no global state, safe
 *    from any thread and under a fuzzer.
 *  - The formatters require a record that passed cb_record_check().
 */
#ifndef CONNBEAT_RECORD_H
#define CONNBEAT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "connbeat_abi.h"
#include "common/names.h" /* cb_tcp_state_name() */

/* Every cb_rec_flags bit the kernel or the daemon may set. */
#define CB_RF_ALL                                                                         \
	(CB_RF_PROCESS_CTX | CB_RF_FROM_DESTROY | CB_RF_RST_SENT | CB_RF_RST_RECEIVED |   \
	 CB_RF_DATA | CB_RF_SYNTH | CB_RF_REMNANT | CB_RF_OWNER_PID | CB_RF_COUNTERS |    \
	 CB_RF_PASSIVE | CB_RF_SEEDED)

/* 0 when the `len` bytes at `data` are one valid struct cb_record, else
 * -EINVAL with a short static reason in *why (when why is not NULL):
 * "short record", "oversized record", "wrong ABI version", "bad size field",
 * "unknown kind", "bad address family", "bad TCP state", "unknown flags", "zero cookie". */
int cb_record_check(const void *data, size_t len, const char **why);

/* "OPEN", "STATE", "CLOSE", "RESET", "BEAT", "RETRANS"; NULL if unknown. */
const char *cb_record_kind_name(unsigned int kind);

/* One endpoint in the usual notation: "10.0.0.1:80", "[::1]:443",
 * "[::ffff:10.0.0.1]:80". `family` is 4 or 6. Returns buf. 56 bytes always
 * suffice (CB_ADDRPORT_LEN). */
#define CB_ADDRPORT_LEN 56
char *cb_format_addrport(unsigned int family, const uint8_t addr[16], uint16_t port, char *buf,
			 size_t len);

/*
 * One line for --trace (no newline):
 *   <ts_s.ns> <KIND> cookie=<n> <src> > <dst> <OLD>><NEW> [fields...]
 * fields: netns=, then for records with counters (CB_RF_COUNTERS) tx= rx=
 * segs_in= segs_out= retrans= rtt_us=, cgroup= when known, then pid= comm=
 * when CB_RF_PROCESS_CTX (pid= alone with CB_RF_OWNER_PID), then flags=
 * (comma-separated names) when any. comm is sanitised (no spaces or
 * control characters). Returns the length it wanted, like snprintf; the
 * output is truncated but always terminated when len > 0.
 */
int cb_record_format(const struct cb_record *r, char *buf, size_t len);

#endif /* CONNBEAT_RECORD_H */
