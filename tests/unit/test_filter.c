// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests: state names (names.h), address/port parsing (parse.h) and the
 * FILTERS (filter.h) matched against hand-built sessions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "connbeat_abi.h"
#include "core/filter.h"
#include "core/session_map.h"
#include "cli/filter_flags.h"
#include "common/proto.h"
#include "common/names.h"
#include "common/parse.h"
#include "core/session.h"

static void test_tcp_state_names(void **state)
{
	static const struct {
		const char *in;
		unsigned int st;
	} ok[] = {
		{ "established", CB_TCP_ESTABLISHED }, { "ESTABLISHED", CB_TCP_ESTABLISHED },
		{ "estab", CB_TCP_ESTABLISHED },       { "close-wait", CB_TCP_CLOSE_WAIT },
		{ "CLOSE_WAIT", CB_TCP_CLOSE_WAIT },   { "Close-Wait", CB_TCP_CLOSE_WAIT },
		{ "closewait", CB_TCP_CLOSE_WAIT },    { "syn-sent", CB_TCP_SYN_SENT },
		{ "fin-wait2", CB_TCP_FIN_WAIT2 },     { "fin-wait-2", CB_TCP_FIN_WAIT2 },
		{ "time-wait", CB_TCP_TIME_WAIT },     { "last-ack", CB_TCP_LAST_ACK },
		{ "closing", CB_TCP_CLOSING },         { "close", CB_TCP_CLOSE },
	};
	char err[256];
	unsigned int st;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(cb_tcp_state_parse(ok[i].in, &st, err, sizeof(err)), 0);
		assert_int_equal(st, ok[i].st);
	}
	/* every state prints and parses back */
	for (unsigned int s = 1; s < CB_TCP_MAX_STATES; s++) {
		assert_non_null(cb_tcp_state_name(s));
		if (s == CB_TCP_LISTEN || s == CB_TCP_NEW_SYN_RECV)
			continue;
		assert_int_equal(cb_tcp_state_parse(cb_tcp_state_name(s), &st, err, sizeof(err)), 0);
		assert_int_equal(st, s);
	}
	assert_null(cb_tcp_state_name(0));
	assert_null(cb_tcp_state_name(CB_TCP_MAX_STATES));

	assert_int_equal(cb_tcp_state_parse("listen", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "listen"));
	assert_non_null(strstr(err, "not sessions"));
	assert_int_equal(cb_tcp_state_parse("new-syn-recv", &st, err, sizeof(err)), -EINVAL);
	assert_int_equal(cb_tcp_state_parse("estabished", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'estabished'"));
	assert_non_null(strstr(err, "close-wait"));
	assert_int_equal(cb_tcp_state_parse("", &st, err, sizeof(err)), -EINVAL);
	assert_int_equal(cb_tcp_state_parse("established-and-then-some-more", &st, err, sizeof(err)),
			 -EINVAL);
}

static void test_drain_state_names(void **state)
{
	const char *names[] = { "active", "stale", "draining", "closed" };
	char err[256];
	unsigned int st;

	for (unsigned int i = 0; i < CB_ST_COUNT; i++) {
		assert_string_equal(cb_drain_state_name(i), names[i]);
		assert_int_equal(cb_drain_state_parse(names[i], &st, err, sizeof(err)), 0);
		assert_int_equal(st, i);
	}
	assert_int_equal(cb_drain_state_parse("STALE", &st, err, sizeof(err)), 0);
	assert_int_equal(st, CB_ST_STALE);
	assert_int_equal(cb_drain_state_parse("idle", &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'idle'"));
	assert_null(cb_drain_state_name(CB_ST_COUNT));
}

static void test_addr(void **state)
{
	uint8_t fam, a[16], want6[16] = { [15] = 1 };
	char buf[CB_ADDR_STRLEN];
	uint16_t port;

	assert_int_equal(cb_parse_addr("10.1.2.3", &fam, a), 0);
	assert_int_equal(fam, 4);
	assert_memory_equal(a, ((uint8_t[]){ 10, 1, 2, 3 }), 4);
	assert_string_equal(cb_format_addr(4, a, buf, sizeof(buf)), "10.1.2.3");
	/* the hand-rolled dotted quad agrees with inet_ntop on every width */
	for (const char **v = (const char *[]){ "0.0.0.0", "255.255.255.255", "100.20.3.109",
						"9.99.199.250", NULL };
	     *v; v++) {
		assert_int_equal(cb_parse_addr(*v, &fam, a), 0);
		assert_string_equal(cb_format_addr(4, a, buf, sizeof(buf)), *v);
	}
	assert_int_equal(cb_parse_addr("::1", &fam, a), 0);
	assert_int_equal(fam, 6);
	assert_memory_equal(a, want6, 16);
	assert_int_equal(cb_parse_addr("[::1]", &fam, a), 0);
	assert_int_equal(fam, 6);
	assert_int_equal(cb_parse_addr("::ffff:127.0.0.1", &fam, a), 0);
	assert_int_equal(fam, 6);
	assert_string_equal(cb_format_addr(6, a, buf, sizeof(buf)), "::ffff:127.0.0.1");
	for (const char **b = (const char *[]){ "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "[1.2.3.4]",
						"::1]", "[::1", "host.example", " 1.2.3.4", NULL };
	     *b; b++)
		assert_int_equal(cb_parse_addr(*b, &fam, a), -EINVAL);

	assert_int_equal(cb_parse_port("8080", &port), 0);
	assert_int_equal(port, 8080);
	assert_int_equal(cb_parse_port("0", &port), -ERANGE);
	assert_int_equal(cb_parse_port("65536", &port), -ERANGE);
	assert_int_equal(cb_parse_port("80a", &port), -EINVAL);
}

/* A session 10.0.0.1:8080 <-> 10.0.0.2:51000, ESTABLISHED, active, pid 42. */
static void mk_session(struct cb_session *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->saddr, ((uint8_t[]){ 10, 0, 0, 1 }), 4);
	memcpy(s->daddr, ((uint8_t[]){ 10, 0, 0, 2 }), 4);
	s->sport = 8080;
	s->dport = 51000;
	s->tcp_state = CB_TCP_ESTABLISHED;
	s->pid = 42;
	atomic_store(&s->state, CB_ST_ACTIVE);
}

static struct cb_map *map;

static struct cb_map *the_map(void)
{
	struct cb_map_config c = { .max_sessions = 1024, .shards = 1, .tick_ns = 100000000ull,
				   .idle_ns = 60000000000ull, .linger_ns = 1000000000ull };

	if (!map)
		map = cb_map_new(&c, 0);
	assert_non_null(map);
	return map;
}

static bool match_f(const struct cb_filter *f, const struct cb_session *s)
{
	struct cb_match mt;

	cb_match_init(&mt, f, the_map(), NULL);
	return cb_filter_match(&mt, s);
}

/* Does a filter built from flag/value pairs match the session? */
static bool matches(const struct cb_session *s, const char *const *kv)
{
	struct cb_filter f = { 0 };
	char err[256];

	for (; kv[0]; kv += 2)
		assert_int_equal(cb_filter_set(&f, kv[0], kv[1], err, sizeof(err)), 0);
	assert_int_equal(cb_filter_check(&f), 0);
	return match_f(&f, s);
}

#define M(...) matches(&s, (const char *const[]){ __VA_ARGS__, NULL })

static void test_filter_match(void **state)
{
	struct cb_session s;
	struct cb_filter f = { 0 };

	mk_session(&s);
	assert_true(match_f(&f, &s)); /* empty filter matches all */
	assert_true(M("port", "8080"));
	assert_true(M("port", "51000"));
	assert_false(M("port", "80"));
	assert_true(M("sport", "8080"));
	assert_false(M("sport", "51000"));
	assert_true(M("dport", "51000"));
	assert_true(M("addr", "10.0.0.2"));
	assert_true(M("addr", "10.0.0.1"));
	assert_false(M("addr", "10.0.0.3"));
	assert_false(M("addr", "::1"));
	assert_true(M("pid", "42"));
	assert_false(M("pid", "43"));
	assert_true(M("state", "active"));
	assert_false(M("state", "stale"));
	assert_true(M("state", "stale", "state", "active"));
	assert_true(M("tcp-state", "estab"));
	assert_false(M("tcp-state", "close-wait"));
	/* all criteria must hold */
	assert_true(M("port", "8080", "state", "active"));
	assert_false(M("port", "8080", "state", "closed"));

	/* an IPv4 filter address matches the v4-mapped form of an IPv6 session */
	s.flags |= CB_SF_FAMILY6;
	memset(s.daddr, 0, 16);
	s.daddr[10] = s.daddr[11] = 0xff;
	memcpy(s.daddr + 12, ((uint8_t[]){ 10, 0, 0, 2 }), 4);
	assert_true(M("addr", "10.0.0.2"));
	assert_true(M("addr", "::ffff:10.0.0.2"));

	/* operator-drained only */
	f = (struct cb_filter){ .fields = CB_FLT_OPERATOR_DRAINED };
	assert_false(match_f(&f, &s));
	s.flags |= CB_SF_OPERATOR_DRAIN;
	assert_true(match_f(&f, &s));
}

/* The later steps of a close are not reported: a session recorded in
 * FIN_WAIT1 may be in FIN_WAIT2 by now (scan), the row says exactly. */
static void test_tcp_state_widened(void **state)
{
	struct cb_session s;
	struct cb_row r = { .family = 4, .state = CB_ST_DRAINING, .tcp_state = CB_TCP_FIN_WAIT2 };

	mk_session(&s);
	s.tcp_state = CB_TCP_FIN_WAIT1;
	assert_true(M("tcp-state", "fin-wait2"));
	assert_true(M("tcp-state", "closing"));
	assert_false(M("tcp-state", "close-wait"));
	s.tcp_state = CB_TCP_CLOSE_WAIT;
	assert_true(M("tcp-state", "last-ack"));
	assert_false(M("tcp-state", "fin-wait2"));
	/* the exact check on a row read from the kernel */
	assert_true(cb_filter_match_row(&(struct cb_filter){ .fields = CB_FLT_TCP_STATE,
							     .tcp_state_mask = 1u << CB_TCP_FIN_WAIT2 },
					&r));
	assert_false(cb_filter_match_row(&(struct cb_filter){ .fields = CB_FLT_TCP_STATE,
							      .tcp_state_mask = 1u << CB_TCP_FIN_WAIT1 },
					 &r));
}

/* --netns is an inode on the wire, the map's interned id in the scan;
 * --cgroup a bitmap over interned cgroup ids. */
static void test_netns_cgroup(void **state)
{
	struct cb_map *m = the_map();
	uint64_t bits[CB_CGROUP_BITMAP_WORDS] = { 0 };
	struct cb_filter f = { .fields = CB_FLT_NETNS, .netns = 4026532001u };
	struct cb_row r = { .family = 4, .netns = 4026532001u };
	struct cb_match mt;
	struct cb_session s;

	mk_session(&s);
	assert_false(match_f(&f, &s)); /* no session has that netns: nothing matches */
	s.netns_id = cb_intern_get(cb_map_netns(m), 4026532001u);
	assert_true(match_f(&f, &s));
	f.netns = 4026532002u;
	assert_false(match_f(&f, &s));
	assert_false(cb_filter_match_row(&f, &r));
	f.netns = 4026532001u;
	assert_true(cb_filter_match_row(&f, &r));

	f = (struct cb_filter){ .fields = CB_FLT_CGROUP };
	snprintf(f.cgroup, sizeof(f.cgroup), "/system.slice");
	s.cgroup_id = cb_intern_get(cb_map_cgroups(m), 77);
	cb_match_init(&mt, &f, m, bits);
	assert_false(cb_filter_match(&mt, &s));
	bits[s.cgroup_id / 64] |= 1ull << (s.cgroup_id % 64);
	assert_true(cb_filter_match(&mt, &s));
	s.cgroup_id = 0; /* unknown cgroup: never under a path */
	assert_false(cb_filter_match(&mt, &s));
}

static void test_filter_errors(void **state)
{
	struct cb_filter f = { 0 };
	char err[256];

	assert_int_equal(cb_filter_set(&f, "port", "http", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'http'"));
	assert_int_equal(cb_filter_set(&f, "addr", "10.0.0.256", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "10.0.0.256"));
	assert_int_equal(cb_filter_set(&f, "state", "idle", err, sizeof(err)), -EINVAL);
	assert_int_equal(cb_filter_set(&f, "pid", "-1", err, sizeof(err)), -EINVAL);
	assert_int_equal(cb_filter_set(&f, "colour", "red", err, sizeof(err)), -ENOENT);
	assert_int_equal(cb_filter_set(&f, "port", "80", err, sizeof(err)), 0);
	assert_int_equal(cb_filter_set(&f, "port", "81", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "twice"));

	/* wire validation */
	f = (struct cb_filter){ .fields = 1u << 20 };
	assert_int_equal(cb_filter_check(&f), -EINVAL);
	f = (struct cb_filter){ .fields = CB_FLT_STATE, .state_mask = 1u << 4 };
	assert_int_equal(cb_filter_check(&f), -EINVAL);
	f = (struct cb_filter){ .fields = CB_FLT_TCP_STATE, .tcp_state_mask = 1u << 13 };
	assert_int_equal(cb_filter_check(&f), -EINVAL);
	f = (struct cb_filter){ .fields = CB_FLT_ADDR, .addr_family = 5 };
	assert_int_equal(cb_filter_check(&f), -EINVAL);
	f = (struct cb_filter){ .fields = CB_FLT_NETNS }; /* inode 0 */
	assert_int_equal(cb_filter_check(&f), -EINVAL);
	f = (struct cb_filter){ .fields = CB_FLT_CGROUP };
	snprintf(f.cgroup, sizeof(f.cgroup), "relative/path");
	assert_int_equal(cb_filter_check(&f), -EINVAL);
	f.cgroup[0] = '/';
	assert_int_equal(cb_filter_check(&f), 0);
	memset(f.cgroup, 'x', sizeof(f.cgroup)); /* not terminated */
	f.cgroup[0] = '/';
	assert_int_equal(cb_filter_check(&f), -EINVAL);
	f = (struct cb_filter){ .fields = CB_FLT_CGROUP };
	snprintf(f.cgroup, sizeof(f.cgroup), "/a");
	f.cgroup[10] = 'z'; /* bytes after the terminator must be zero */
	assert_int_equal(cb_filter_check(&f), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_state_names), cmocka_unit_test(test_drain_state_names),
		cmocka_unit_test(test_addr),            cmocka_unit_test(test_filter_match),
		cmocka_unit_test(test_filter_errors),   cmocka_unit_test(test_tcp_state_widened),
		cmocka_unit_test(test_netns_cgroup),
	};
	int rc = cmocka_run_group_tests_name("filter", tests, NULL, NULL);

	cb_map_free(map);
	return rc;
}
