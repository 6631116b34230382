// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for the control protocol (proto.h): round trips of every
 * message through a socketpair, and each way a frame can be malformed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/proto.h"
#include "connbeat_abi.h"

static int sp[2];

static int setup(void **state)
{
	return socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
}

static int teardown(void **state)
{
	close(sp[0]);
	close(sp[1]);
	return 0;
}

static char buf[CB_PROTO_MAX_PAYLOAD];

/* Send a frame on sp[0], read it on sp[1]; returns the payload length. */
static uint32_t roundtrip(enum cb_msg_type type, const void *p, uint32_t len)
{
	struct cb_frame_hdr h;
	const char *why = NULL;

	assert_int_equal(cb_proto_write(sp[0], type, p, len), 0);
	assert_int_equal(cb_proto_read(sp[1], &h, buf, sizeof(buf), &why), 0);
	assert_int_equal(h.type, type);
	assert_int_equal(h.length, len);
	return h.length;
}

static void test_requests(void **state)
{
	struct cb_dump_req d = { .mode = CB_DUMP_STALE, .idle_basis = CB_BASIS_ANY, .limit = 10,
				 .idle_ns = 5000000000ULL };
	struct cb_drain_req r = { .filter = { .fields = CB_FLT_PORT, .port = 8080 } }, r2;
	struct cb_dump_req d2;
	const char *why;

	d.filter.fields = CB_FLT_STATE;
	d.filter.state_mask = 1 << 1;
	roundtrip(CB_MSG_DUMP_REQ, &d, sizeof(d));
	assert_int_equal(cb_proto_decode_dump_req(buf, sizeof(d), &d2, &why), 0);
	assert_memory_equal(&d, &d2, sizeof(d));

	roundtrip(CB_MSG_DRAIN_REQ, &r, sizeof(r));
	assert_int_equal(cb_proto_decode_drain_req(buf, sizeof(r), &r2, &why), 0);
	assert_int_equal(r2.filter.port, 8080);

	assert_int_equal(roundtrip(CB_MSG_STATS_REQ, NULL, 0), 0);

	/* malformed requests */
	assert_int_equal(cb_proto_decode_dump_req(&d, sizeof(d) - 1, &d2, &why), -EINVAL);
	d2 = d;
	d2.mode = 7;
	assert_int_equal(cb_proto_decode_dump_req(&d2, sizeof(d2), &d, &why), -EINVAL);
	assert_non_null(strstr(why, "mode"));
	d2 = d;
	d2.idle_basis = 3;
	assert_int_equal(cb_proto_decode_dump_req(&d2, sizeof(d2), &d, &why), -EINVAL);
	d2 = d;
	d2.__pad0 = 1;
	assert_int_equal(cb_proto_decode_dump_req(&d2, sizeof(d2), &d, &why), -EINVAL);
	d2 = d;
	d2.filter.fields = 1u << 30;
	assert_int_equal(cb_proto_decode_dump_req(&d2, sizeof(d2), &d, &why), -EINVAL);
	assert_int_equal(cb_proto_decode_drain_req(&r, sizeof(r) + 1, &r2, &why), -EINVAL);
}

/* The requests of drain --wait, kill, summary and events. */
static void test_new_requests(void **state)
{
	struct cb_kill_req k = { .filter = { .fields = CB_FLT_TCP_STATE,
					     .tcp_state_mask = 1u << 8 },
				 .flags = CB_KILL_DRY_RUN },
			   k2;
	struct cb_summary_req sm = { .by = CB_BY_PORT }, sm2;
	struct cb_events_req ev = { .filter = { .fields = CB_FLT_NETNS, .netns = 4026531840u } },
			     ev2;
	struct cb_drain_status_req ds = { .rows = 1 }, ds2;
	const char *why;

	assert_int_equal(cb_proto_decode_kill_req(&k, sizeof(k), &k2, &why), 0);
	k2 = k;
	k2.flags = 0x80;
	assert_int_equal(cb_proto_decode_kill_req(&k2, sizeof(k2), &k, &why), -EINVAL);
	k2.flags = 0;
	k2.__pad0[3] = 1;
	assert_int_equal(cb_proto_decode_kill_req(&k2, sizeof(k2), &k, &why), -EINVAL);
	assert_int_equal(cb_proto_decode_summary_req(&sm, sizeof(sm), &sm2, &why), 0);
	sm.by = CB_BY_COUNT;
	assert_int_equal(cb_proto_decode_summary_req(&sm, sizeof(sm), &sm2, &why), -EINVAL);
	sm.by = 0;
	assert_int_equal(cb_proto_decode_summary_req(&sm, sizeof(sm), &sm2, &why), -EINVAL);
	assert_int_equal(cb_proto_decode_events_req(&ev, sizeof(ev), &ev2, &why), 0);
	assert_int_equal(ev2.filter.netns, 4026531840u);
	ev.filter.netns = 0; /* NETNS without an inode */
	assert_int_equal(cb_proto_decode_events_req(&ev, sizeof(ev), &ev2, &why), -EINVAL);
	assert_int_equal(cb_proto_decode_drain_status_req(&ds, sizeof(ds), &ds2, &why), 0);
	ds.rows = 2;
	assert_int_equal(cb_proto_decode_drain_status_req(&ds, sizeof(ds), &ds2, &why), -EINVAL);
}

/* Summary groups and event frames: counted arrays with sane fields. */
static void test_groups_events(void **state)
{
	static struct {
		struct cb_groups_hdr h;
		struct cb_group g[2];
	} gr = { .h.count = 2 };
	static struct {
		struct cb_events_hdr h;
		struct cb_event e[1];
	} ev = { .h = { .count = 1, .missed = 5 } };
	const struct cb_group *g;
	const struct cb_event *e;
	uint64_t missed;
	uint32_t n;
	const char *why;

	gr.g[0].sessions = 3;
	strcpy(gr.g[1].comm, "nginx");
	assert_int_equal(cb_proto_decode_groups(&gr, sizeof(gr), &g, &n, &why), 0);
	assert_int_equal(n, 2);
	assert_string_equal(g[1].comm, "nginx");
	gr.g[1].family = 9;
	assert_int_equal(cb_proto_decode_groups(&gr, sizeof(gr), &g, &n, &why), -EINVAL);

	ev.e[0].kind = CB_EV_CLOSE;
	ev.e[0].end = CB_END_RST_SENT;
	ev.e[0].row.family = 4;
	ev.e[0].new_state = CB_TCP_CLOSE;
	assert_int_equal(cb_proto_decode_events(&ev, sizeof(ev), &e, &n, &missed, &why), 0);
	assert_int_equal(n, 1);
	assert_int_equal(missed, 5);
	assert_int_equal(e[0].end, CB_END_RST_SENT);
	ev.e[0].kind = 9;
	assert_int_equal(cb_proto_decode_events(&ev, sizeof(ev), &e, &n, &missed, &why), -EINVAL);
	ev.e[0].kind = CB_EV_OPEN;
	assert_int_equal(cb_proto_decode_events(&ev, sizeof(ev) - 1, &e, &n, &missed, &why),
			 -EINVAL);
}

static void test_replies(void **state)
{
	static struct {
		struct cb_rows_hdr h;
		struct cb_row rows[3];
	} rows;
	const struct cb_row *got;
	const struct cb_stat_entry *ents;
	struct {
		struct cb_stats_hdr h;
		struct cb_stat_entry e[2];
	} st = { .h.count = 2 };
	struct cb_end end = { .rows = 3, .matched = 5 }, end2;
	struct cb_drained dr = { .count = 7, .matched = 9 }, dr2;
	struct cb_error er;
	uint32_t n;
	const char *why;

	rows.h.count = 3;
	for (int i = 0; i < 3; i++) {
		rows.rows[i].cookie = 100 + i;
		rows.rows[i].family = 4;
		rows.rows[i].state = 1;
		rows.rows[i].tcp_state = 8;
		strcpy(rows.rows[i].comm, "nginx");
	}
	roundtrip(CB_MSG_ROWS, &rows, sizeof(rows));
	assert_int_equal(cb_proto_decode_rows(buf, sizeof(rows), &got, &n, &why), 0);
	assert_int_equal(n, 3);
	assert_int_equal(got[2].cookie, 102);
	assert_string_equal(got[1].comm, "nginx");
	/* count and length disagree */
	assert_int_equal(cb_proto_decode_rows(&rows, sizeof(rows) - 8, &got, &n, &why), -EINVAL);
	rows.h.count = 4;
	assert_int_equal(cb_proto_decode_rows(&rows, sizeof(rows), &got, &n, &why), -EINVAL);
	rows.h.count = 3;
	rows.rows[1].family = 5;
	assert_int_equal(cb_proto_decode_rows(&rows, sizeof(rows), &got, &n, &why), -EINVAL);
	rows.rows[1].family = 6;
	memset(rows.rows[1].comm, 'x', sizeof(rows.rows[1].comm)); /* unterminated */
	assert_int_equal(cb_proto_decode_rows(&rows, sizeof(rows), &got, &n, &why), -EINVAL);

	roundtrip(CB_MSG_END, &end, sizeof(end));
	assert_int_equal(cb_proto_decode_end(buf, sizeof(end), &end2, &why), 0);
	assert_int_equal(end2.matched, 5);
	end.rows = 6; /* more rows than matched */
	assert_int_equal(cb_proto_decode_end(&end, sizeof(end), &end2, &why), -EINVAL);

	strcpy(st.e[0].name, "connbeat_sessions{state=\"active\"}");
	st.e[0].value = 12;
	strcpy(st.e[1].name, "connbeat_evictions_total");
	roundtrip(CB_MSG_STATS, &st, sizeof(st));
	assert_int_equal(cb_proto_decode_stats(buf, sizeof(st), &ents, &n, &why), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ents[0].value, 12);
	memset(st.e[1].name, 'a', sizeof(st.e[1].name));
	assert_int_equal(cb_proto_decode_stats(&st, sizeof(st), &ents, &n, &why), -EINVAL);

	roundtrip(CB_MSG_DRAINED, &dr, sizeof(dr));
	assert_int_equal(cb_proto_decode_drained(buf, sizeof(dr), &dr2, &why), 0);
	assert_int_equal(dr2.count, 7);
	dr.matched = 6; /* more marked than matched */
	assert_int_equal(cb_proto_decode_drained(&dr, sizeof(dr), &dr2, &why), -EINVAL);

	assert_int_equal(cb_proto_write_error(sp[0], EINVAL, "bad %s", "request"), 0);
	{
		struct cb_frame_hdr h;

		assert_int_equal(cb_proto_read(sp[1], &h, buf, sizeof(buf), &why), 0);
		assert_int_equal(h.type, CB_MSG_ERROR);
		assert_int_equal(cb_proto_decode_error(buf, h.length, &er, &why), 0);
		assert_int_equal(er.code, EINVAL);
		assert_string_equal(er.message, "bad request");
	}
}

/* Write raw bytes as they would arrive on the socket; read a frame. */
static int read_raw(const void *raw, size_t len, size_t cap, const char **why)
{
	struct cb_frame_hdr h;

	assert_int_equal(write(sp[0], raw, len), (ssize_t)len);
	return cb_proto_read(sp[1], &h, buf, cap, why);
}

static void test_bad_frames(void **state)
{
	struct cb_frame_hdr h;
	const char *why = NULL;

	cb_proto_hdr(&h, CB_MSG_STATS_REQ, 0);
	h.magic ^= 1;
	assert_int_equal(read_raw(&h, sizeof(h), sizeof(buf), &why), -EINVAL);
	assert_non_null(strstr(why, "magic"));

	cb_proto_hdr(&h, CB_MSG_STATS_REQ, 0);
	h.version = CB_PROTO_VERSION - 1; /* a connbeat of another release */
	assert_int_equal(read_raw(&h, sizeof(h), sizeof(buf), &why), -EPROTONOSUPPORT);

	cb_proto_hdr(&h, 99, 0);
	assert_int_equal(read_raw(&h, sizeof(h), sizeof(buf), &why), -EINVAL);

	cb_proto_hdr(&h, CB_MSG_STATS_REQ, 0);
	h.flags = 1;
	assert_int_equal(read_raw(&h, sizeof(h), sizeof(buf), &why), -EINVAL);

	cb_proto_hdr(&h, CB_MSG_ROWS, CB_PROTO_MAX_PAYLOAD + 1);
	assert_int_equal(read_raw(&h, sizeof(h), sizeof(buf), &why), -EMSGSIZE);

	/* a length above what the receiver accepts: refused before reading */
	cb_proto_hdr(&h, CB_MSG_DUMP_REQ, 4096);
	assert_int_equal(read_raw(&h, sizeof(h), 64, &why), -EMSGSIZE);

	/* truncated header, then EOF */
	cb_proto_hdr(&h, CB_MSG_STATS_REQ, 0);
	assert_int_equal(write(sp[0], &h, 7), 7);
	shutdown(sp[0], SHUT_WR);
	{
		struct cb_frame_hdr got;

		assert_int_equal(cb_proto_read(sp[1], &got, buf, sizeof(buf), &why), -EPIPE);
		/* and a clean EOF */
		assert_int_equal(cb_proto_read(sp[1], &got, buf, sizeof(buf), &why), -ENODATA);
	}
	assert_int_equal(cb_proto_check_hdr(&h, 3, &h, &why), -EINVAL);
}

static void test_payload_truncated(void **state)
{
	struct cb_frame_hdr h, got;
	const char *why;

	close(sp[0]);
	close(sp[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	cb_proto_hdr(&h, CB_MSG_DUMP_REQ, sizeof(struct cb_dump_req));
	assert_int_equal(write(sp[0], &h, sizeof(h)), (ssize_t)sizeof(h));
	assert_int_equal(write(sp[0], "abc", 3), 3);
	shutdown(sp[0], SHUT_WR);
	assert_int_equal(cb_proto_read(sp[1], &got, buf, sizeof(buf), &why), -EPIPE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replies, setup, teardown),
		cmocka_unit_test(test_new_requests),
		cmocka_unit_test(test_groups_events),
		cmocka_unit_test_setup_teardown(test_bad_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payload_truncated, setup, teardown),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
