#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A deliberately tiny beats ring overflows and the drops are counted in
`stats`, while the events ring (default size) loses nothing: every
connection's OPEN and CLOSE is seen, on both sides."""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

N_CONN = 100
MSGS = 20


def test_overflow():
    page = os.sysconf("SC_PAGE_SIZE")
    with t.Daemon("--beats-ring-size", str(page), "--beat-interval", "0",
                  "--max-sessions", "4096") as d:
        # Stop the reader so that nothing is consumed while the traffic
        # runs: one page holds ~26 records, the traffic makes thousands.
        # The programs keep running (they are attached), only the reader
        # sleeps. SIGCONT later: the daemon picks up where it was.
        d.send_signal(signal.SIGSTOP)
        cookies = []
        try:
            lst = t.tcp_listener(4)
            for i in range(N_CONN):
                c = __import__("socket").create_connection(lst.getsockname())
                a, _ = lst.accept()
                cookies += [t.cookie(c), t.cookie(a)]
                for _ in range(MSGS):
                    c.sendall(b"q" * 10)
                    t.recv_bytes(a, 10)
                c.close()
                t.wait_eof(a)
                a.close()
            lst.close()
            st = t.stats(d.pin_dir)
        finally:
            d.send_signal(signal.SIGCONT)
        t.diag("stats while stopped: %r" % st)
        t.ok(st[t.STAT_BEATS_DROPPED] > 0, "tiny beats ring: reservation failures counted",
             st)
        t.ok(st[t.STAT_BEATS_EMITTED] > 0, "tiny beats ring: some beats still fit", st)
        t.eq(st[t.STAT_EVENTS_DROPPED], 0, "events ring: nothing dropped", st)

        last = cookies[-1]
        t.ok(d.wait_for(lambda r: r["cookie"] == last and r["kind"] == "CLOSE", 20),
             "the reader catches up after SIGCONT")
        rc = d.stop()
        t.eq(rc, 0, "daemon exits 0 after the drain")
        recs = d.records()
        opens = {r["cookie"] for r in recs if r["kind"] == "OPEN"}
        closes = {r["cookie"] for r in recs if r["kind"] == "CLOSE"}
        missing_open = [c for c in cookies if c not in opens]
        missing_close = [c for c in cookies if c not in closes]
        t.eq(len(missing_open), 0, "every connection's OPEN seen (both sides, %d)" % len(cookies))
        t.eq(len(missing_close), 0, "every connection's CLOSE seen (both sides)")
        sm = d.summary()
        if t.ok(sm, "final stats line printed", d.stderr_text()):
            t.ok(sm["beats_dropped"] > 0, "final stats line reports the beats drops", sm)
            t.eq(sm["events_dropped"], 0, "final stats line: no events dropped")
            t.eq(sm["read_beats"], sm["beats_emitted"], "every BEAT that fit was read")
            t.eq(sm["read_events"], sm["events_emitted"], "every events record was read")

t.run(test_overflow)
t.done()
