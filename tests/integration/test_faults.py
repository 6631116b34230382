#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Faults (issue 7): a ring overflowing at many times its drain rate, the
daemon killed mid-dump and a client killed mid-dump, --max-sessions
reached under a connection flood, SIGTERM under full load. (bpffs
unmounted at start and a second daemon on the same pin dir are in
test_bpf_daemon.py.)"""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

FAST = ["--tick", "100ms", "--reconcile-interval", "1s"]
TOOLS = os.path.join(t.BUILD, "tests", "tools")


class Hold:
    """build/tests/tools/hold: N loopback connections held open."""

    def __init__(self, count):
        self.p = subprocess.Popen([os.path.join(TOOLS, "hold"), "--count", str(count),
                                   "--seconds", "300"], stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if "ready" not in line:
            raise RuntimeError("hold failed: %r" % line)

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(60)


def churn(seconds, *extra):
    return subprocess.Popen([os.path.join(TOOLS, "churn"), "--seconds", str(seconds)] +
                            list(extra), stdout=subprocess.PIPE, text=True)


def stat(d, name):
    return int(d.stats().get(name, 0))


def test_ring_overflow_converges():
    # 4 KiB rings hold ~26 records; a full-rate churn emits ~150k records/s:
    # far more than 10x what the daemon can take between two reads.
    with t.Daemon("--events-ring-size", "4096", "--beats-ring-size", "4096", *FAST,
                  trace=False) as d:
        h = Hold(500)
        c = churn(3)
        out = c.communicate(timeout=60)[0]
        t.diag(out.strip())
        dropped = stat(d, 'connbeat_ringbuf_dropped_total{ring="events"}')
        t.ok(dropped > 1000, "the events ring overflowed (%d records dropped)" % dropped)
        conv = t.wait_until(lambda: d.open_sessions() == t.ss_sessions(), 20, 0.25)
        t.ok(conv, "after reconciliation the open sessions equal ss (%d vs %d)"
             % (d.open_sessions(), t.ss_sessions()))
        st = d.stats()
        corr = {k: v for k, v in st.items() if k.startswith("connbeat_reconcile_corr")}
        t.diag("corrections: %r" % corr)
        t.ok(sum(corr.values()) > 0, "the corrections were counted")
        h.close()


def test_max_sessions_flood():
    with t.Daemon("--max-sessions", "1024", *FAST, trace=False) as d:
        h = Hold(1500)  # 3000 sockets for a cap of 1024
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
        h = Hold(3000)
        t.wait_until(lambda: d.open_sessions() >= 6000, 15, 0.2)
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
        t.ok(p.returncode == 0 and p.stdout.count('"id"') >= 6000,
             "the next client gets a whole dump", p.stderr)
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
        h = Hold(3000)
        t.wait_until(lambda: d.open_sessions() >= 6000, 15, 0.2)
        # the CLI blocks writing to a pipe nobody reads, mid-dump
        p = subprocess.Popen([t.CONNBEAT, "--socket", d.socket_path, "list", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        try:
            out, err = p.communicate(timeout=20)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err, rc = b"", b"", None
        t.ok(rc in (0, 1), "the CLI does not hang when the daemon dies mid-dump (exit %r)" % rc,
             err.decode(errors="replace"))
        if rc == 1:
            t.ok(b"connbeatd" in err, "and says the daemon went away", err)
        h.close()
    finally:
        d.cleanup()


def test_sigterm_under_load():
    d = t.Daemon(*FAST, trace=False)
    try:
        d.start()
        c = churn(6)
        time.sleep(2)
        rc = d.stop(signal.SIGTERM)
        c.communicate(timeout=60)
        t.eq(rc, 0, "SIGTERM under full churn: exit 0", d.stderr_text()[-1500:])
        n = d.stop_counts()
        if t.ok(n is not None, "it reports what it read", d.stderr_text()[-1500:]):
            ev_read, bt_read, ev_emit, bt_emit = n
            t.eq(ev_read, ev_emit, "every lifecycle record emitted was read (%d)" % ev_emit)
            t.eq(bt_read, bt_emit, "every heartbeat record emitted was read (%d)" % bt_emit)
            t.ok(ev_emit > 10000, "under load (%d lifecycle records)" % ev_emit)
    finally:
        d.cleanup()


t.run(test_ring_overflow_converges, test_max_sessions_flood, test_client_killed_mid_dump,
      test_daemon_killed_mid_dump, test_sigterm_under_load)
t.done()
