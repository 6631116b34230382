/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sock_diag.h — list the host's TCP sockets through NETLINK_SOCK_DIAG
 * (inet_diag), the way `ss` does (style.md #22), with libmnl.
 *
 * Used to seed the session map at start-up (connections older than the
 * daemon) and to reconcile it with the kernel. The socket cookie in a reply
 * (idiag_cookie) is the same sock_gen_cookie() value the eBPF programs key
 * on, so a socket found here and one seen by the programs are one session.
 *
 * Contract:
 *  - A dump covers the caller's network namespace only (sock_diag is
 *    per-namespace); cb_sock_diag_netns() says which one.
 *  - One callback per socket, with its fields decoded into a stack struct:
 *    no allocation per socket. The callback returns 0 to go on or a negative
 *    errno to stop the dump (which then returns that value).
 *  - The raw netlink replies can be saved to a file descriptor while
 *    dumping and parsed back later with cb_sock_diag_parse() — a recorded
 *    dump for tests and the fuzzer, like `ss -D` / TCPDIAG_FILE.
 */
#ifndef CONNBEAT_SOCK_DIAG_H
#define CONNBEAT_SOCK_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connbeat_abi.h"

/* Every TCP state that can be a session: not LISTEN, not the request
 * socks (NEW_SYN_RECV, SYN_RECV of a request), not TIME_WAIT (the kernel
 * hands a closed connection to a timewait sock without a state-change
 * event; for connbeat the session ended at CLOSE). */
#define CB_DIAG_SESSION_STATES                                                             \
	((1u << CB_TCP_ESTABLISHED) | (1u << CB_TCP_SYN_SENT) | (1u << CB_TCP_SYN_RECV) |  \
	 (1u << CB_TCP_FIN_WAIT1) | (1u << CB_TCP_FIN_WAIT2) | (1u << CB_TCP_CLOSE_WAIT) | \
	 (1u << CB_TCP_LAST_ACK) | (1u << CB_TCP_CLOSING))

struct cb_diag_sock {
	uint64_t cookie;
	uint8_t family; /* 4 or 6 (v4-mapped stays 6, as in ss) */
	uint8_t state;  /* enum cb_tcp_state */
	uint16_t sport; /* host byte order, local */
	uint16_t dport;
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint32_t inode;
	uint32_t uid;
	bool has_info; /* the tcp_info fields below are valid */
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t bytes_retrans;
	uint64_t bytes_acked;
	uint32_t segs_in;
	uint32_t segs_out;
	uint32_t total_retrans;
	uint32_t last_data_recv_ms; /* ms ago */
	uint32_t last_data_sent_ms;
	uint32_t last_ack_recv_ms;
};

typedef int (*cb_diag_fn)(const struct cb_diag_sock *s, void *ctx);

/* Dump IPv4 then IPv6 TCP sockets whose state is in `state_mask`
 * (1 << enum cb_tcp_state). `save_fd` ≥ 0 also writes every raw reply
 * there. 0, the callback's error, or -errno. */
int cb_sock_diag_dump(uint32_t state_mask, cb_diag_fn fn, void *ctx, int save_fd);

/* Parse a buffer of netlink replies (a recorded dump: several dumps may
 * follow each other). 0, the callback's error, or -EINVAL on malformed data. */
int cb_sock_diag_parse(const void *buf, size_t len, cb_diag_fn fn, void *ctx);

/* The inode of the network namespace this process dumps (its own). */
int cb_sock_diag_netns(uint32_t *inode);

/*
 * Build the record the daemon applies for a socket found here: kind STATE,
 * flags CB_RF_SYNTH, its tuple and state, and counters from tcp_info:
 *  - tx_bytes = bytes_sent - bytes_retrans (payload that left, once);
 *    rx_bytes = bytes_received less the peer's FIN when one was received.
 *    These are TCP's counts: they can differ from the application's
 *    (what the programs count) by what sits in the socket queues;
 *  - last_data_ns / last_seen_ns from the last_*_ms fields (ms ago) against
 *    now_ns (CLOCK_MONOTONIC), never before 0.
 */
void cb_sock_diag_to_record(const struct cb_diag_sock *s, uint64_t now_ns, uint32_t netns,
			    struct cb_record *out);

#endif /* CONNBEAT_SOCK_DIAG_H */
