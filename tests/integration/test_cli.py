#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The connbeat CLI (issue 5).

Golden tests: a fake connbeatd (this file, speaking the control protocol of
include/connbeat_proto.h) serves fixed rows, so the table and JSON outputs
are compared byte for byte with tests/data/golden/. Against the real
daemon and real loopback sockets: the JSON, parsed by Python's json module,
checked field by field against `ss -tanei`; drain --wait returning 0 and 3;
every error path with its exit code; --maps with the daemon stopped."""
import json
import os
import socket
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

GOLDEN = os.path.join(t.ROOT, "tests", "data", "golden")
MAGIC, VERSION = 0x31504243, 2
DUMP_REQ, STATS_REQ, DRAIN_REQ = 1, 2, 3
ROWS, END, STATS, DRAINED, ERROR = 16, 17, 18, 19, 20
ROW = struct.Struct("<Q16s16sHHIBBBBIQQQQQIIII16sIIQ")
assert ROW.size == 144
MS = 1000 * 1000


def frame(mtype, payload=b""):
    return struct.pack("<IHHII", MAGIC, VERSION, mtype, len(payload), 0) + payload


def v4(a):
    return socket.inet_pton(socket.AF_INET, a) + b"\0" * 12


def v6(a):
    return socket.inet_pton(socket.AF_INET6, a)


# cookie, saddr, daddr, sport, dport, netns, family, tcp_state, state, flags, pid,
# idle, seen, age, tx, rx, segs_in, segs_out, retrans, resets, comm, rtt_us,
# flags2 (1: orphan), cgroup_id
FIXED_ROWS = [
    (4097, v4("10.0.0.1"), v4("10.0.0.2"), 8080, 51000, 4026531840, 4, 1, 1, 2, 1234,
     92 * 1000 * MS, 92 * 1000 * MS, 3600 * 1000 * MS, 13000000, 2048, 10, 12, 0, 0,
     b"nginx", 1250, 0, 0),
    (4098, v6("2001:db8::1"), v6("2001:db8::2"), 443, 60000, 4026531840, 6, 8, 2, 0, 0,
     5 * 60 * 1000 * MS, 4 * 1000 * MS, 7200 * 1000 * MS, 0, 512, 3, 2, 1, 0, b"", 0, 1, 0),
    (4099, v6("::ffff:127.0.0.1"), v6("::ffff:127.0.0.1"), 5432, 40000, 4026531840, 6, 1,
     0, 7 | 8 | 64, 77, 1500, 1500, 250 * MS, 1 << 30, 5, 100, 100, 0, 1, b"psql", 31, 0,
     0),
]
FLAG_AGE_UNKNOWN = 1


class FakeDaemon:
    """Serves FIXED_ROWS on a Unix socket; records the requests it got."""

    def __init__(self):
        self.path = "/run/connbeat-test/fake-%d.sock" % os.getpid()
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.requests = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read(self, c, n):
        b = b""
        while len(b) < n:
            x = c.recv(n - len(b))
            if not x:
                return None
            b += x
        return b

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                while True:
                    h = self._read(c, 16)
                    if not h:
                        break
                    _, _, mtype, length, _ = struct.unpack("<IHHII", h)
                    body = self._read(c, length) if length else b""
                    self.requests.append((mtype, body))
                    if mtype == DUMP_REQ:
                        rows = b"".join(ROW.pack(*r) for r in FIXED_ROWS)
                        c.sendall(frame(ROWS, struct.pack("<II", len(FIXED_ROWS), 0) + rows))
                        c.sendall(frame(END, struct.pack("<QQiI", len(FIXED_ROWS),
                                                         len(FIXED_ROWS), 0, 0)))
                    elif mtype == STATS_REQ:
                        ents = [(b'connbeat_sessions{state="active"}', 1),
                                (b"connbeat_sessions_opened_total", 3)]
                        p = struct.pack("<II", len(ents), 0) + b"".join(
                            struct.pack("<96sQ", n, v) for n, v in ents)
                        c.sendall(frame(STATS, p))
                    else:
                        c.sendall(frame(ERROR, struct.pack("<iI160s", 22, 0, b"fake: no")))

    def close(self):
        self.stop = True
        self.sock.close()
        os.unlink(self.path)


def golden(name, got):
    """Compare with the golden file. CONNBEAT_UPDATE_GOLDEN=1 rewrites it
    instead, which checks nothing: the case is reported as skipped."""
    path = os.path.join(GOLDEN, name)
    if os.environ.get("CONNBEAT_UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(got)
        t.skip("golden %s" % name, "CONNBEAT_UPDATE_GOLDEN is set: the file was rewritten, "
               "review it with git diff")
        return True
    want = open(path).read()
    return t.ok(got == want, "golden %s" % name, "got:\n" + got, "want:\n" + want)


def test_golden():
    fake = FakeDaemon()
    try:
        for args, name in ((["list"], "list.txt"), (["list", "--json"], "list.json"),
                           (["stale"], "stale.txt"), (["list", "-H"], "list-noheader.txt"),
                           (["stats"], "stats.txt"), (["stats", "--json"], "stats.json")):
            p = t.cli("--socket", fake.path, *args)
            if t.eq(p.returncode, 0, "fake daemon: connbeat %s exits 0" % " ".join(args),
                    p.stderr):
                golden(name, p.stdout)
        rows = json.loads(t.cli("--socket", fake.path, "list", "--json").stdout)
        t.eq([r["id"] for r in rows], [4097, 4098, 4099], "JSON ids are numbers, in order")
        t.eq(rows[1]["src"], "2001:db8::1", "IPv6 in the usual notation")
        t.eq(rows[2]["src"], "::ffff:127.0.0.1", "v4-mapped IPv6 as ss prints it")
        t.eq((rows[1]["pid"], rows[1]["comm"]), (None, None), "unknown owner is null")
        t.eq(rows[2]["first_seen"], "before connbeat", "seeded rows say so")
        p = t.cli("--socket", fake.path, "stale")
        lines = p.stdout.splitlines()[1:]
        t.ok(lines and "2001:db8::1" in lines[0], "stale: most idle first", p.stdout)
        # the filters travel in the request
        fake.requests.clear()
        t.cli("--socket", fake.path, "list", "--port", "8080", "--state", "stale",
              "--tcp-state", "close-wait", "--addr", "10.0.0.1", "--pid", "1234")
        # (a table asks for the stats first: how many netns, for its columns)
        mtype, body = next((r for r in fake.requests if r[0] == DUMP_REQ), (None, b"\0" * 18))
        fields, smask, tmask, pid, port = struct.unpack("<IIIIH", body[:18])
        t.eq((mtype, smask, tmask, pid, port), (DUMP_REQ, 1 << 1, 1 << 8, 1234, 8080),
             "filters are sent to the daemon")
    finally:
        fake.close()


def test_json_vs_ss():
    # Counters reach the session map with heartbeats (at most one per second
    # per connection and CPU) and each reconciliation; a dump refreshes its
    # rows from the kernel's heartbeats map, so the answer is exact at once,
    # with reconciliation pushed out of the way (1 h).
    with t.Daemon("--tick", "100ms", "--reconcile-interval", "1h", trace=False) as d:
        c, a, lst = t.tcp_pair(4)
        c6, a6, lst6 = t.tcp_pair(6)
        for x, y in ((c, a), (c6, a6)):
            t.send_bytes(x, 50000)
            t.recv_bytes(y, 50000)
            t.send_bytes(y, 700)
            t.recv_bytes(x, 700)
        for lsock, socks in ((lst, (c, a)), (lst6, (c6, a6))):
            port = lsock.getsockname()[1]
            kern = t.ss_socks([port])
            rows = {}

            def converged():
                rows.clear()
                rows.update({r["id"]: r for r in d.sessions("--port", str(port))})
                return all(ck in rows and (rows[ck]["tx_bytes"], rows[ck]["rx_bytes"]) ==
                           (k["bytes_acked"], k["bytes_received"]) and rows[ck]["pid"]
                           for ck, k in kern.items())

            t.wait_until(converged, 3, 0.1)
            for s in socks:
                ck = t.cookie(s)
                r, k = rows.get(ck), kern.get(ck)
                if not t.ok(r is not None and k is not None,
                            "socket %d: in connbeat and in ss" % ck, rows, kern):
                    continue
                t.eq((r["src"], r["sport"], r["dst"], r["dport"]),
                     (k["src"], k["sport"], k["dst"], k["dport"]),
                     "socket %d: addresses and ports as ss" % ck)
                t.eq(r["tcp_state"], k["state"],
                     "socket %d: tcp_state as ss" % ck)
                t.eq((r["tx_bytes"], r["rx_bytes"]), (k["bytes_acked"], k["bytes_received"]),
                     "socket %d: bytes as ss (bytes_acked, bytes_received)" % ck)
                t.eq(r["family"], 6 if ":" in k["src"] else 4, "socket %d: family" % ck)
                t.ok(isinstance(r["idle_ms"], int) and isinstance(r["age_ms"], int) and
                     r["age_ms"] >= r["idle_ms"] >= 0, "socket %d: durations are numbers" % ck,
                     r)
                t.eq((r["pid"], r["comm"]), (os.getpid(), t.self_comm()),
                     "socket %d: owner is this process" % ck)
        for s in (c, a, lst, c6, a6, lst6):
            s.close()


def test_filters_on_the_daemon():
    """FILTERS applied by the real daemon, and stale --limit N giving the N
    most idle."""
    with t.Daemon("--tick", "100ms", trace=False) as d:
        lst = t.tcp_listener(4)
        port = lst.getsockname()[1]
        pairs = []
        for _ in range(3):
            c = socket.create_connection(("127.0.0.1", port))
            a, _ = lst.accept()
            t.send_bytes(c, 10)
            t.recv_bytes(a, 10)
            pairs.append((c, a))
        c6, a6, lst6 = t.tcp_pair(6)
        p6 = lst6.getsockname()[1]
        ids = lambda rows: sorted(r["id"] for r in rows)  # noqa: E731
        t.wait_until(lambda: len(d.sessions("--port", str(port))) == 6, 5, 0.05)
        t.eq(ids(d.sessions("--sport", str(port))), sorted(t.cookie(a) for _, a in pairs),
             "--sport: the accepted sides only")
        t.eq(ids(d.sessions("--dport", str(port))), sorted(t.cookie(c) for c, _ in pairs),
             "--dport: the connecting sides only")
        t.eq(ids(d.sessions("--addr", "::1", "--port", str(p6))),
             sorted([t.cookie(c6), t.cookie(a6)]), "--addr ::1: the IPv6 pair")
        t.eq(d.sessions("--addr", "10.9.9.9"), [], "--addr of nobody: nothing")
        mine = ids(d.sessions("--pid", str(os.getpid()), "--port", str(port)))
        t.eq(mine, sorted(t.cookie(s) for pr in pairs for s in pr),
             "--pid: this process's sockets")
        t.eq(len(d.sessions("--state", "active", "--tcp-state", "established", "--port",
                            str(port))), 6, "--state and --tcp-state together")
        # the first pair idles while the others move data again: it is the most idle
        first = {t.cookie(pairs[0][0]), t.cookie(pairs[0][1])}
        t.wait_until(lambda: all(r["idle_ms"] >= 400 for r in d.sessions("--port", str(port))
                                 if r["id"] in first), 10, 0.05)
        for c, a in pairs[1:]:
            t.send_bytes(a, 10)
            t.recv_bytes(c, 10)
        rows = d.cli_json("stale", "--idle", "200ms", "--limit", "1", "--port", str(port))
        t.ok(len(rows) == 1 and rows[0]["id"] in first, "stale --limit 1: the most idle session",
             rows)
        for pr in pairs + [(c6, a6)]:
            for s in pr:
                s.close()
        lst.close()
        lst6.close()


def test_drain_wait():
    with t.Daemon("--tick", "100ms", trace=False) as d:
        c, a, lst = t.tcp_pair(4)
        port = str(lst.getsockname()[1])
        t.wait_until(lambda: len(d.sessions("--port", port)) == 2, 5, 0.05)
        p = d.cli("drain", "--port", port, "--wait", "--timeout", "1s")
        t.eq(p.returncode, 3, "drain --wait: exit 3 when the timeout passes", p.stderr)
        t.ok(port in p.stdout, "and it lists what is left", p.stdout)
        rows = d.sessions("--port", port)
        t.eq(sorted(r["state"] for r in rows), ["draining", "draining"],
             "drained sessions are DRAINING")
        t.eq({r["drained_by"] for r in rows}, {"operator"}, "marked as drained by an operator")
        proc = subprocess.Popen([t.CONNBEAT, "--socket", d.socket_path, "drain", "--port",
                                 port, "--wait", "--timeout", "20s"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # it has drained (and so started waiting) once it prints the count
        first = proc.stdout.readline()
        t.ok("marked" in first and proc.poll() is None,
             "drain --wait waits while the connections are open", first)
        c.close()
        a.close()
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        t.eq(rc, 0, "drain --wait: exit 0 once they are closed", proc.stderr.read())
        lst.close()


def test_errors():
    p = t.cli("--socket", "/run/connbeat-test/nobody.sock", "list")
    t.ok(p.returncode == 1 and "connbeatd" in p.stderr and "start" in p.stderr.lower(),
         "daemon not running: exit 1 saying how to start it", p.stderr)
    t.eq(p.stderr.count("\n"), 1, "in one line")
    for args, needle in ((["list", "--bogus"], "--bogus"), (["frobnicate"], "frobnicate"),
                         ([], "command"), (["list", "--limit", "x"], "--limit"),
                         (["stale", "--idle", "soon"], "soon")):
        p = t.cli(*args)
        t.ok(p.returncode == 2 and needle in p.stderr, "usage error %r: exit 2 naming %s"
             % (args, needle), p.stderr)
    p = t.cli("list", "--state", "sleepy")
    t.ok(p.returncode == 2 and "sleepy" in p.stderr, "unknown state is named", p.stderr)
    p = t.cli("list", "--tcp-state", "closed-ish")
    t.ok(p.returncode == 2 and "closed-ish" in p.stderr, "unknown tcp state is named", p.stderr)
    p = t.cli("list", "--addr", "10.0.0.300")
    t.ok(p.returncode == 2 and "10.0.0.300" in p.stderr, "malformed address is named", p.stderr)
    p = t.cli("--help")
    flags = ["--state", "--tcp-state", "--port", "--sport", "--dport", "--addr", "--pid",
             "--idle", "--limit", "--json", "--wait", "--timeout", "--socket", "--maps",
             "--pin-dir", "--no-header", "--idle-basis", "--netns", "--cgroup", "--sort", "--by",
             "--kill-after", "--dry-run", "--version"]
    t.ok(p.returncode == 0 and all(f in p.stdout for f in flags),
         "connbeat --help lists every flag", [f for f in flags if f not in p.stdout])
    v1, v2 = t.cli("--version"), t.run_connbeatd("--version")
    ver = lambda p: p.stdout.split()[-1] if p.returncode == 0 and p.stdout else None  # noqa: E731
    t.ok(ver(v1) and ver(v1) == ver(v2) and v1.stdout.startswith("connbeat ") and
         v2.stdout.startswith("connbeatd "),
         "--version: both binaries print the same version and exit 0", v1.stdout, v2.stdout)
    p = t.run_connbeatd("--help")
    dflags = ["--idle", "--idle-basis", "--drain-timeout", "--linger", "--tick",
              "--max-sessions", "--shards", "--reconcile-interval", "--pin-dir", "--socket",
              "--metrics", "--config", "--beat-interval", "--events-ring-size",
              "--beats-ring-size", "--trace", "--verbose", "--sweep-period", "--version"]
    t.ok(p.returncode == 0 and all(f in p.stdout for f in dflags),
         "connbeatd --help lists every flag", [f for f in dflags if f not in p.stdout])


def test_maps_without_daemon():
    pin = t.unique_pin_dir()
    d = t.Daemon("--tick", "100ms", trace=False, pin_dir=pin)
    try:
        d.start()
        c, a, lst = t.tcp_pair(4)
        t.send_bytes(c, 3000)
        t.recv_bytes(a, 3000)
        port = lst.getsockname()[1]
        t.wait_until(lambda: len(d.sessions("--port", str(port))) == 2, 5, 0.05)
        t.eq(d.stop(), 0, "daemon stopped")
        p = t.cli("--maps", "--pin-dir", pin, "list", "--json")
        if t.eq(p.returncode, 0, "--maps list with the daemon stopped", p.stderr):
            rows = {r["id"]: r for r in json.loads(p.stdout)}
            r = rows.get(t.cookie(a))
            t.ok(r is not None, "it finds the connection in the pinned map", sorted(rows))
            if r:
                t.eq(r["rx_bytes"], 3000, "with its byte count")
        p = t.cli("--maps", "--pin-dir", pin, "stale")
        t.eq(p.returncode, 0, "--maps stale prints a table", p.stderr)
        p = t.cli("--maps", "--pin-dir", pin, "stats", "--json")
        st = json.loads(p.stdout) if p.returncode == 0 else {}
        # one OPEN per side: nothing else happened to the pair yet
        t.ok(st.get('connbeat_ringbuf_emitted_total{ring="events"}', 0) >= 2,
             "--maps stats: the programs' counters, under the daemon's metric names", st)
        if t.need("valgrind", "valgrind", "valgrind: connbeat --maps list runs clean"):
            p = subprocess.run(["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                                "--errors-for-leak-kinds=definite", t.CONNBEAT, "--maps",
                                "--pin-dir", pin, "list", "--json"], capture_output=True,
                               text=True, timeout=120)
            t.ok(p.returncode == 0, "valgrind: connbeat --maps list runs clean",
                 p.stderr[-3000:])
        p = t.cli("--maps", "--pin-dir", "/sys/fs/bpf/connbeat-nothing-here", "list")
        t.ok(p.returncode == 1 and "connbeat-nothing-here" in p.stderr,
             "--maps without pinned maps: exit 1 naming the pin dir", p.stderr)
        for s in (c, a, lst):
            s.close()
    finally:
        d.cleanup()
        t.remove_pin_dir(pin)


def test_valgrind():
    """The CLI under valgrind memcheck: no errors, no definite leaks, on
    every kind of output and an error path."""
    if not t.need("valgrind", "valgrind", "the CLI under valgrind memcheck"):
        return
    fake = FakeDaemon()
    try:
        for args, want in ((["list", "--json"], 0), (["stale"], 0), (["stats", "--json"], 0),
                           (["list", "--state", "sleepy"], 2)):
            p = subprocess.run(["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                                "--errors-for-leak-kinds=definite", t.CONNBEAT, "--socket",
                                fake.path] + args, capture_output=True, text=True, timeout=120)
            t.eq(p.returncode, want, "valgrind: connbeat %s runs clean and exits %d"
                 % (" ".join(args), want), p.stderr[-3000:])
    finally:
        fake.close()


t.skip_all_if_no_bpf()
t.run(test_golden, test_errors, test_valgrind, test_json_vs_ss, test_filters_on_the_daemon, test_drain_wait, test_maps_without_daemon)
t.done()
