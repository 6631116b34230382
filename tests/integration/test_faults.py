#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Faults (issue 7): a ring overflowing at many times its drain rate, the
daemon killed mid-dump and a client killed mid-dump, --max-sessions
reached under a connection flood, SIGTERM under full load. (bpffs
unmounted at start and a second daemon on the same pin dir are in
test_bpf_daemon.py.)"""
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import termios

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

FAST = ["--tick", "100ms", "--reconcile-interval", "1s"]


def stat(d, name):
    return int(d.stats().get(name, 0))


def test_ring_overflow_converges():
    # 4 KiB rings hold ~26 records; with the reader stopped (SIGSTOP) a
    # churn of thousands of connections overflows them for sure.
    with t.Daemon("--events-ring-size", "4096", "--beats-ring-size", "4096", *FAST,
                  trace=False) as d:
        h = t.Hold(500)
        c = t.Churn("--count", "5000")
        ports = h.ports + c.ports
        t.ok(t.wait_until(lambda: d.open_ids(ports) == t.ss_session_ids(ports), 20, 0.25),
             "the held connections are listed before the churn")
        d.send_signal(signal.SIGSTOP)
        try:
            c.go()
            rc, out = c.wait()
            st = t.stats(d.pin_dir)
        finally:
            d.send_signal(signal.SIGCONT)
        t.eq(rc, 0, "the churn ran: %s" % out)
        dropped = st[t.STAT_EVENTS_DROPPED]
        t.ok(dropped > 0, "the events ring overflowed (%d records dropped)" % dropped)
        want = t.ss_session_ids(ports)
        got = set()

        def converged():
            got.clear()
            got.update(d.open_ids(ports))
            return got == want

        t.ok(t.wait_until(converged, 20, 0.25),
             "after reconciliation the open sessions on the test's ports are ss's, by cookie "
             "(%d)" % len(want), "missing: %r" % sorted(want - got)[:20],
             "extra: %r" % sorted(got - want)[:20])
        st = d.stats()
        corr = {k: v for k, v in st.items() if k.startswith("connbeat_reconcile_corr")}
        t.diag("dropped %d; corrections: %r" % (dropped, corr))
        t.ok(sum(corr.values()) > 0, "the corrections were counted", corr)
        h.close()


def test_max_sessions_flood():
    with t.Daemon("--max-sessions", "1024", *FAST, trace=False) as d:
        h = t.Hold(1500)  # 3000 sockets for a cap of 1024
        t.wait_until(lambda: stat(d, "connbeat_sessions_refused_total") > 0, 10, 0.1)
        refused = stat(d, "connbeat_sessions_refused_total")
        t.ok(refused > 0, "sessions beyond the cap are refused and counted (%d)" % refused)
        live = d.open_sessions() + stat(d, 'connbeat_sessions{state="closed"}')
        t.ok(live <= 1024, "the map never holds more than the cap (%d)" % live)
        p = d.cli("list", "--limit", "5")
        t.eq(p.returncode, 0, "the daemon keeps serving at the cap", p.stderr)
        c, a, lst = t.tcp_pair(4)
        t.ok(d.proc.poll() is None, "and keeps running")
        for s in (c, a, lst):
            s.close()
        h.close()
        # once the flood is gone, closed sessions make room: new ones are tracked
        c, a, lst = t.tcp_pair(4)
        port = str(lst.getsockname()[1])
        ok_ = t.wait_until(lambda: len(d.sessions("--port", port)) == 2, 15, 0.2)
        t.ok(ok_, "after the flood closes, new connections are tracked again")
        for s in (c, a, lst):
            s.close()


def dump_frame():
    req = struct.pack("<IIIIHHHBB16s", 0, 0, 0, 0, 0, 0, 0, 0, 0, b"\0" * 16) + \
        struct.pack("<BBHIQ", 0, 0, 0, 0, 0)
    return struct.pack("<IHHII", 0x31504243, 1, 1, len(req), 0) + req


def test_client_killed_mid_dump():
    with t.Daemon(*FAST, trace=False) as d:
        h = t.Hold(3000)
        held = t.ss_session_ids(h.ports)
        t.ok(t.wait_until(lambda: d.open_ids(h.ports) == held, 15, 0.2),
             "the %d held sockets are listed" % len(held))
        for _ in range(5):
            s = socket.socket(socket.AF_UNIX)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(d.socket_path)
            s.sendall(dump_frame())
            s.recv(1000)  # the dump has begun
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        p = subprocess.Popen([t.CONNBEAT, "--socket", d.socket_path, "list", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.read(4096)
        p.kill()
        p.wait()
        ok_ = t.wait_until(lambda: stat(d, "connbeat_control_clients") <= 1, 10, 0.1)
        t.ok(ok_, "clients that vanished mid-dump are gone from the daemon")
        p = d.cli("list", "--json")
        ids = {r["id"] for r in json.loads(p.stdout)} if p.returncode == 0 else set()
        t.ok(held <= ids, "the next client gets a whole dump (every held socket)", p.stderr)
        c, a, lst = t.tcp_pair(4)
        port = str(lst.getsockname()[1])
        t.ok(t.wait_until(lambda: len(d.sessions("--port", port)) == 2, 5, 0.05),
             "and ingestion went on")
        for s in (c, a, lst):
            s.close()
        h.close()


def test_daemon_killed_mid_dump():
    d = t.Daemon(*FAST, trace=False)
    try:
        d.start()
        h = t.Hold(3000)
        held = t.ss_session_ids(h.ports)
        t.ok(t.wait_until(lambda: d.open_ids(h.ports) == held, 15, 0.2),
             "the %d held sockets are listed" % len(held))
        # The CLI writes into a pipe nobody reads: once the pipe is full it
        # blocks, mid-dump (6000 rows do not fit in the socket buffers).
        p = subprocess.Popen([t.CONNBEAT, "--socket", d.socket_path, "list", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pipe_full = t.wait_until(lambda: pipe_bytes(p.stdout) >= 60000, 10, 0.02)
        t.ok(pipe_full, "the CLI is blocked mid-dump (%d bytes in its pipe)"
             % pipe_bytes(p.stdout))
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        try:
            out, err = p.communicate(timeout=20)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err, rc = b"", b"", None
        t.eq(rc, 1, "the CLI does not hang when the daemon dies mid-dump: exit 1",
             err.decode(errors="replace"))
        t.ok(b"connbeatd" in err, "and says the daemon went away", err)
        h.close()
    finally:
        d.cleanup()


def pipe_bytes(f):
    """Bytes waiting in a pipe (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(f.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def test_sigterm_under_load():
    d = t.Daemon(*FAST, trace=False)
    try:
        d.start()
        c = t.Churn("--seconds", "60")
        c.go()
        t.ok(t.wait_until(lambda: stat(d, 'connbeat_events_total{ring="events"}') >= 1000,
                          20, 0.05), "the churn is being ingested")
        running = c.p.poll() is None
        rc = d.stop(signal.SIGTERM)
        c.p.kill()
        c.wait()
        t.ok(running, "SIGTERM came while the churn was running")
        t.eq(rc, 0, "SIGTERM under full churn: exit 0", d.stderr_text()[-1500:])
        n = d.stop_counts()
        if t.ok(n is not None, "it reports what it read", d.stderr_text()[-1500:]):
            ev_read, bt_read, ev_emit, bt_emit = n
            t.eq(ev_read, ev_emit, "every lifecycle record emitted was read (%d)" % ev_emit)
            t.eq(bt_read, bt_emit, "every heartbeat record emitted was read (%d)" % bt_emit)
    finally:
        d.cleanup()


t.run(test_ring_overflow_converges, test_max_sessions_flood, test_client_killed_mid_dump,
      test_daemon_killed_mid_dump, test_sigterm_under_load)
t.done()
