/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sock_diag.h — list and look up TCP sockets through NETLINK_SOCK_DIAG
 * (inet_diag), the way `ss` does (style.md #22), with libmnl.
 *
 * Used to seed the session map at start-up (connections older than the
 * daemon), to reconcile it with the kernel, and to read the kernel's own
 * values of the rows a query returns. The socket cookie in a reply
 * (idiag_cookie) is the same sock_gen_cookie() value the eBPF programs key
 * on, so a socket found here and one seen by the programs are one session.
 *
 * Contract:
 *  - A sock_diag socket sees the network namespace it was created in, for
 *    ever (sock_diag is per-namespace): struct cb_diag is opened in the
 *    calling thread's netns (kernel/netns.h enters another one). An open
 *    cb_diag keeps its namespace alive: close it when done.
 *  - One callback per socket, with its fields decoded into a stack struct:
 *    no allocation per socket. The callback returns 0 to go on or a negative
 *    errno to stop (which is then returned).
 *  - A dump can be read all at once or a budget at a time: the kernel keeps
 *    its place between reads (a socket added or removed meanwhile may be
 *    missed or seen twice — inet_diag gives no snapshot — so callers never
 *    trust one dump alone to say a socket is gone).
 *  - Exact lookups (cookie + tuple) read the rows a query returns, in
 *    batches: one system call per batch, one reply per socket.
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
 * event; for connbeat the session ended at CLOSE). FIN_WAIT2 includes the
 * FIN_WAIT2 timewait remnants (cb_diag_sock.timewait). */
#define CB_DIAG_SESSION_STATES                                                             \
	((1u << CB_TCP_ESTABLISHED) | (1u << CB_TCP_SYN_SENT) | (1u << CB_TCP_SYN_RECV) |  \
	 (1u << CB_TCP_FIN_WAIT1) | (1u << CB_TCP_FIN_WAIT2) | (1u << CB_TCP_CLOSE_WAIT) | \
	 (1u << CB_TCP_LAST_ACK) | (1u << CB_TCP_CLOSING))
#define CB_DIAG_ALL_STATES 0xffffffffu

struct cb_diag_sock {
	uint64_t cookie;
	uint8_t family; /* 4 or 6 (v4-mapped stays 6, as in ss) */
	uint8_t state;  /* enum cb_tcp_state (a timewait socket: its substate) */
	uint16_t sport; /* host byte order, local */
	uint16_t dport;
	bool timewait;  /* an inet_timewait_sock (TIME_WAIT or a FIN_WAIT2 remnant) */
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint32_t inode;
	uint32_t uid;
	uint64_t cgroup_id; /* INET_DIAG_CGROUP_ID, 0 when absent */
	bool has_info; /* the tcp_info fields below are valid */
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t bytes_retrans;
	uint64_t bytes_acked;
	uint32_t segs_in;
	uint32_t segs_out;
	uint32_t total_retrans;
	uint32_t rtt_us;
	uint32_t last_data_recv_ms; /* ms ago */
	uint32_t last_data_sent_ms;
	uint32_t last_ack_recv_ms;
};

typedef int (*cb_diag_fn)(const struct cb_diag_sock *s, void *ctx);

/* A NETLINK_SOCK_DIAG socket of the calling thread's netns. */
struct cb_diag;

int cb_diag_open(struct cb_diag **out);
void cb_diag_close(struct cb_diag *d);

/* Dump IPv4 then IPv6 TCP sockets whose state is in `state_mask`
 * (1 << enum cb_tcp_state), with tcp_info when `info`. `save_fd` ≥ 0 also
 * writes every raw reply there. 0, the callback's error, or -errno. */
int cb_diag_dump(struct cb_diag *d, uint32_t state_mask, bool info, cb_diag_fn fn, void *ctx,
		 int save_fd);

/* The same, a budget at a time: start, then call more() until it returns
 * 0 (done). Each call reads until at least `budget` sockets were passed to
 * fn (one kernel batch may overshoot it by a few hundred), then returns 1.
 * A dump in progress is dropped by start() or close(). */
int cb_diag_dump_start(struct cb_diag *d, uint32_t state_mask, bool info);
int cb_diag_dump_more(struct cb_diag *d, size_t budget, cb_diag_fn fn, void *ctx);

/* Which socket a lookup asks for: its cookie and tuple, as a session has
 * them (family 4 or 6; v4-mapped IPv6 is looked up as the kernel hashes it). */
struct cb_diag_key {
	uint64_t cookie;
	uint8_t family;
	uint16_t sport, dport;
	uint8_t saddr[16], daddr[16];
};

/* Look up n sockets exactly (with tcp_info), in batches; fn once per socket
 * found (in any order; match by cookie). Sockets that are gone, or whose
 * cookie differs (a new socket on the same tuple), are not reported.
 * Returns how many were found, the callback's error, or -errno. */
int cb_diag_lookup(struct cb_diag *d, const struct cb_diag_key *keys, size_t n, cb_diag_fn fn,
		   void *ctx);

/* Destroy n sockets (SOCK_DESTROY: what `ss -K` does; the kernel aborts
 * them, their owners see ECONNABORTED), each looked up exactly. res[i] is 0
 * when socket i was destroyed, else a negative errno (-ENOENT: gone;
 * -EPERM: no CAP_NET_ADMIN in its netns). Returns 0, or -EOPNOTSUPP when
 * the kernel has no socket-destroy at all (CONFIG_INET_DIAG_DESTROY), or
 * -errno. */
int cb_diag_destroy(struct cb_diag *d, const struct cb_diag_key *keys, size_t n, int *res);

/* One whole dump in the calling thread's netns (open, dump with tcp_info,
 * close). 0, the callback's error, or -errno. */
int cb_sock_diag_dump(uint32_t state_mask, cb_diag_fn fn, void *ctx, int save_fd);

/* Parse a buffer of netlink replies (a recorded dump: several dumps may
 * follow each other). 0, the callback's error, or -EINVAL on malformed data. */
int cb_sock_diag_parse(const void *buf, size_t len, cb_diag_fn fn, void *ctx);

/* The inode of the network namespace this process dumps (its own). */
int cb_sock_diag_netns(uint32_t *inode);

/*
 * Build the record the daemon applies for a socket found here: kind STATE,
 * flags CB_RF_SYNTH, its tuple, state and cgroup, and the kernel's values
 * from tcp_info when there (CB_RF_COUNTERS): bytes_acked, bytes_received,
 * segs_in, segs_out, total_retrans, rtt — what `ss -ti` prints — and the
 * clocks from the last_*_ms fields (ms ago) against now_ns (CLOCK_MONOTONIC).
 * A FIN_WAIT2 timewait socket is marked CB_RF_REMNANT.
 */
void cb_sock_diag_to_record(const struct cb_diag_sock *s, uint64_t now_ns, uint32_t netns,
			    struct cb_record *out);

#endif /* CONNBEAT_SOCK_DIAG_H */
