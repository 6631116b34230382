#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""connbeatd as users run it, with real loopback connections (issue 4):
seeding from sock_diag, idle -> stale -> active, a CLOSE_WAIT leak,
kill -9 and restart, a tiny ring converging through reconciliation, a
client that never reads, malformed requests, and SIGTERM draining the rings.
The CLI (build/connbeat) is the client."""
import os
import re
import signal
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

FAST = ["--tick", "100ms", "--reconcile-interval", "1s"]


def by_id(rows):
    return {r["id"]: r for r in rows}


def wait_rows(d, pred, *filters, timeout=10):
    """Poll `connbeat list --json FILTERS` until pred(rows) holds; the rows."""
    rows = []

    def check():
        nonlocal rows
        rows = d.sessions(*filters)
        return pred(rows)

    t.wait_until(check, timeout, 0.1)
    return rows


def test_seeded_before_start():
    c, a, lst = t.tcp_pair(4)
    c6, a6, lst6 = t.tcp_pair(6)
    t.send_bytes(c, 1000)
    t.recv_bytes(a, 1000)
    port, port6 = lst.getsockname()[1], lst6.getsockname()[1]
    with t.Daemon(*FAST, trace=False) as d:
        rows = by_id(d.sessions("--port", str(port)) + d.sessions("--port", str(port6)))
        for s, name in ((c, "v4 client"), (a, "v4 server"), (c6, "v6 client"),
                        (a6, "v6 server")):
            r = rows.get(t.cookie(s))
            if not t.ok(r is not None, "opened before the daemon: %s found" % name, rows):
                continue
            src, sport = t.endpoint(s)
            dst, dport = t.peer(s)
            t.ok(r["src"] == src and r["sport"] == sport and r["dst"] == dst
                 and r["dport"] == dport, "%s: addresses and ports" % name, r)
            t.eq((r["state"], r["tcp_state"]), ("active", "ESTABLISHED"),
                 "%s: active, ESTABLISHED" % name)
            t.eq(r["first_seen"], "before connbeat", "%s: marked as seeded" % name)
        r = rows.get(t.cookie(a))
        if r:
            t.eq(r["rx_bytes"], 1000, "seeded counters come from tcp_info")
    for s in (c, a, lst, c6, a6, lst6):
        s.close()


def test_idle_stale_then_active():
    with t.Daemon("--idle", "1s", *FAST, trace=False) as d:
        c, a, lst = t.tcp_pair(4)
        port = str(lst.getsockname()[1])
        t.send_bytes(c, 10)
        t.recv_bytes(a, 10)
        cid = t.cookie(c)
        # records reach the daemon within one ingest poll (20 ms)
        rows = by_id(wait_rows(d, lambda rs: cid in by_id(rs), "--port", port, timeout=5))
        t.eq(rows.get(cid, {}).get("state"), "active", "a new connection is active")
        rows = wait_rows(d, lambda rs: by_id(rs).get(cid, {}).get("state") == "stale",
                         "--port", port, timeout=10)
        t.eq(by_id(rows).get(cid, {}).get("state"), "stale", "silent for --idle: stale")
        p = d.cli("stale", "--port", port, "--json")
        ids = [r["id"] for r in __import__("json").loads(p.stdout)] if p.returncode == 0 else []
        t.ok(cid in ids, "connbeat stale lists it", p.stderr)
        stale_row = by_id(rows).get(cid, {})
        t.ok(stale_row.get("idle_ms", 0) >= 1000, "its idle_ms is at least the threshold",
             stale_row)
        t.send_bytes(c, 10)
        t.recv_bytes(a, 10)
        rows = wait_rows(d, lambda rs: by_id(rs).get(cid, {}).get("state") == "active",
                         "--port", port, timeout=10)
        t.eq(by_id(rows).get(cid, {}).get("state"), "active", "traffic makes it active again")
        for s in (c, a, lst):
            s.close()


def test_close_wait_leak():
    with t.Daemon("--idle", "1s", *FAST, trace=False) as d:
        c, a, lst = t.tcp_pair(4)
        port = str(lst.getsockname()[1])
        t.half_close(c)  # the peer sends FIN; the application (a) never closes
        aid, cid = t.cookie(a), t.cookie(c)
        rows = wait_rows(d, lambda rs: by_id(rs).get(aid, {}).get("tcp_state") == "CLOSE_WAIT",
                         "--port", port)
        r = by_id(rows).get(aid, {})
        t.eq((r.get("state"), r.get("tcp_state")), ("draining", "CLOSE_WAIT"),
             "the leaking side is DRAINING in CLOSE_WAIT")
        r = by_id(rows).get(cid, {})
        t.eq((r.get("state"), r.get("tcp_state")), ("draining", "FIN_WAIT2"),
             "the closing side is DRAINING in FIN_WAIT2")
        ids = []

        def leak_found():
            ids[:] = [r["id"] for r in d.cli_json("stale", "--tcp-state", "close-wait",
                                                  "--idle", "500ms", "--port", port)]
            return ids

        t.wait_until(leak_found, 10, 0.1)
        t.eq(ids, [aid], "stale --tcp-state close-wait finds exactly the leak")
        for s in (c, a, lst):
            s.close()


def test_kill9_restart():
    pin = t.unique_pin_dir()
    sock = "/run/connbeat-test/restart-%d.sock" % os.getpid()
    pairs = [t.tcp_pair(4), t.tcp_pair(6), t.tcp_pair(4)]
    d1 = t.Daemon(*FAST, trace=False, pin_dir=pin, socket_path=sock)
    try:
        d1.start()
        later = t.tcp_pair(4)  # opened while the first daemon runs
        pairs.append(later)
        want = {t.cookie(s) for p in pairs for s in p[:2]}
        wait_rows(d1, lambda rs: want <= set(by_id(rs)))
        d1.proc.send_signal(signal.SIGKILL)
        t.eq(d1.proc.wait(10), -signal.SIGKILL, "first daemon killed with SIGKILL")
        d2 = t.Daemon(*FAST, trace=False, pin_dir=pin, socket_path=sock)
        try:
            d2.start()
            rows = wait_rows(d2, lambda rs: want <= set(by_id(rs)))
            got = by_id(rows)
            t.eq(sorted(want - set(got)), [], "after restart every open connection is back")
            t.ok(all(got[i]["state"] != "closed" for i in want if i in got),
                 "and none of them is closed")
        finally:
            d2.cleanup()
    finally:
        d1.cleanup()
        t.remove_pin_dir(pin)
        for p in pairs:
            for s in p:
                s.close()


def test_tiny_ring_converges():
    """A burst far larger than a 4 KiB ring (~26 records) while the daemon
    cannot read (SIGSTOP, as in test_bpf_overflow.py): records are dropped
    for sure, and reconciliation repairs the map once it runs again."""
    with t.Daemon("--events-ring-size", "4096", "--beats-ring-size", "4096", *FAST,
                  trace=False) as d:
        lst = t.tcp_listener(4)
        port = lst.getsockname()[1]
        held, gone = [], set()
        d.send_signal(signal.SIGSTOP)
        try:
            for i in range(400):
                c = socket.create_connection(("127.0.0.1", port))
                a, _ = lst.accept()
                if i % 2:
                    gone |= {t.cookie(c), t.cookie(a)}
                    c.close()
                    a.close()
                else:
                    held.append((c, a))
            st = t.stats(d.pin_dir)
        finally:
            d.send_signal(signal.SIGCONT)
        dropped = st[t.STAT_EVENTS_DROPPED]
        t.ok(dropped > 0, "the tiny events ring overflowed (%d records dropped)" % dropped)
        want = {t.cookie(s) for pr in held for s in pr}
        t.eq(t.ss_session_ids([port]), want, "ss sees the 200 held connections (both ends)")
        rows = []

        def repaired():
            rows[:] = d.sessions("--port", str(port))
            return d.open_ids(rows=rows) == want

        t.ok(t.wait_until(repaired, 20, 0.25),
             "after reconciliation every held socket is listed open, and nothing else",
             "missing: %r" % sorted(want - d.open_ids(rows=rows)),
             "extra: %r" % sorted(d.open_ids(rows=rows) - want))
        bad = [r for r in rows if r["id"] in gone and r["state"] != "closed"]
        t.eq(bad, [], "every closed socket is closed or gone")
        st = d.stats()
        corr = {k: v for k, v in st.items()
                if k.startswith("connbeat_reconcile_corrections_total")}
        t.ok(corr.get('connbeat_reconcile_corrections_total{kind="missing_open"}', 0) > 0,
             "reconciliation counted the opens it added", corr)
        t.diag("dropped %d events; corrections %r" % (dropped, corr))
        for c, a in held:
            c.close()
            a.close()
        lst.close()


def frame(msg_type, payload=b"", magic=0x31504243, version=2, flags=0):
    return struct.pack("<IHHII", magic, version, msg_type, len(payload), flags) + payload


def read_frame(s):
    hdr = b""
    while len(hdr) < 16:
        b = s.recv(16 - len(hdr))
        if not b:
            return None, None
        hdr += b
    magic, ver, mtype, length, flags = struct.unpack("<IHHII", hdr)
    body = b""
    while len(body) < length:
        b = s.recv(length - len(body))
        if not b:
            break
        body += b
    return mtype, body


def error_message(body):
    code, _ = struct.unpack("<iI", body[:8])
    return code, body[8:].split(b"\0", 1)[0].decode()


def test_malformed_requests():
    with t.Daemon(*FAST, trace=False) as d:
        cases = [
            (b"GET / HTTP/1.0\r\n\r\n", "not a connbeat control frame"),
            (frame(99), "unknown message type"),
            (frame(2, version=7), "version"),
            (frame(1, b"\x00" * 10), "wrong size"),
        ]
        for raw, needle in cases:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(d.socket_path)
            s.sendall(raw)
            mtype, body = read_frame(s)
            if t.eq(mtype, 20, "malformed request (%s) gets an ERROR reply" % needle):
                code, msg = error_message(body)
                t.ok(needle in msg, "the error says what is wrong", msg)
            s.close()
        p = d.cli("stats")
        t.eq(p.returncode, 0, "the next client is served", p.stderr)


def test_stuck_client_does_not_stall():
    with t.Daemon(*FAST, trace=False) as d:
        lst = t.tcp_listener(4)
        port = lst.getsockname()[1]
        held = []
        for _ in range(1500):  # 3000 sessions: a dump of ~400 KB
            c = socket.create_connection(("127.0.0.1", port))
            a, _ = lst.accept()
            held.append((c, a))
        wait_rows(d, lambda rs: len(rs) >= 3000, "--port", str(port), timeout=15)
        stuck = socket.socket(socket.AF_UNIX)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(d.socket_path)
        # a DUMP_REQ of protocol 2: an empty 560-byte filter, then mode,
        # idle basis, sort, pad, limit, idle_ns
        dump = b"\0" * 560 + struct.pack("<BBBBIQ", 0, 0, 0, 0, 0, 0)
        assert len(dump) == 576
        stuck.sendall(frame(1, dump))  # ... and never read the reply (but its start)
        stuck.settimeout(10)
        hdr = stuck.recv(16, socket.MSG_WAITALL)
        t.ok(len(hdr) == 16 and struct.unpack("<IHHII", hdr)[2] == 16,
             "the stuck client's dump began (a ROWS frame)", hdr)
        c2, a2, l2 = t.tcp_pair(4)
        rows = wait_rows(d, lambda rs: len(rs) == 2, "--port", str(l2.getsockname()[1]),
                         timeout=10)
        t.eq(len(rows), 2, "a new connection is ingested and listed while a client is stuck")
        p = d.cli("stats")
        t.eq(p.returncode, 0, "other clients are served while one is stuck", p.stderr)
        stuck.close()
        for c, a in held:
            c.close()
            a.close()
        for s in (c2, a2, l2, lst):
            s.close()


def test_sigterm_drains():
    d = t.Daemon(*FAST, trace=False)
    try:
        d.start()
        lst = t.tcp_listener(4)
        t.short_connections(lst, 200)
        rc = d.stop(signal.SIGTERM)
        t.eq(rc, 0, "SIGTERM: exit 0", d.stderr_text()[-2000:])
        n = d.stop_counts()
        if t.ok(n is not None, "it reports what it read at exit", d.stderr_text()[-2000:]):
            ev_read, bt_read, ev_emit, bt_emit = n
            t.eq(ev_read, ev_emit, "every lifecycle record emitted was read (nothing left)")
            t.eq(bt_read, bt_emit, "every heartbeat record emitted was read")
            t.ok(ev_emit >= 200 * 2 * 3, "lifecycle records were emitted (%d)" % ev_emit)
        t.ok(not os.path.exists(d.socket_path), "the control socket is removed at exit")
        lst.close()
    finally:
        d.cleanup()


def test_usage_and_config_errors():
    p = t.run_connbeatd("--idle", "soon")
    t.ok(p.returncode == 2 and "--idle" in p.stderr, "bad --idle: exit 2 naming it", p.stderr)
    cfg = "/tmp/connbeatd-test-%d.conf" % os.getpid()
    with open(cfg, "w") as f:
        f.write("idle = 30s\n# comment\nidel = 5s\n")
    p = t.run_connbeatd("--config", cfg)
    t.ok(p.returncode == 2 and "%s:3" % cfg in p.stderr and "idel" in p.stderr,
         "config error: exit 2 naming file, line and key", p.stderr)
    os.unlink(cfg)
    p = t.run_connbeatd("--idle", "1s", "--beat-interval", "1s")
    t.ok(p.returncode == 2 and "--beat-interval" in p.stderr and "500ms" in p.stderr,
         "--idle under two beat intervals: exit 2 saying what to set", p.stderr)
    p = t.run_connbeatd("--config", "/nonexistent/connbeatd.conf")
    t.ok(p.returncode == 2 and "/nonexistent/connbeatd.conf" in p.stderr,
         "missing --config file: exit 2 naming it", p.stderr)


def test_socket_permissions():
    with t.Daemon(*FAST, trace=False) as d:
        st = os.stat(d.socket_path)
        t.eq(oct(st.st_mode & 0o777), oct(0o600), "control socket is 0600")
        st = os.stat(os.path.dirname(d.socket_path))
        t.eq(oct(st.st_mode & 0o777), oct(0o700), "its directory is 0700")
        p = t.cli("--socket", d.socket_path, "stats",
                  prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        t.ok(p.returncode == 1 and "root" in p.stderr,
             "a non-root client is refused and told why", p.stderr)
        # what its work in every netns needs (caps.h): setns, other users'
        # /proc/PID/ns/net, SOCK_DESTROY; nothing else, bounding set included
        kept = (1 << 21) | (1 << 19) | (1 << 12)  # SYS_ADMIN, SYS_PTRACE, NET_ADMIN
        caps = open("/proc/%d/status" % d.pid).read()
        for k in ("CapEff", "CapPrm", "CapBnd"):
            v = int(re.search(k + r":\s*([0-9a-f]+)", caps).group(1), 16)
            t.eq(v, kept, "after loading, %s holds only CAP_SYS_ADMIN, CAP_SYS_PTRACE and "
                 "CAP_NET_ADMIN" % k)
        for k in ("CapInh", "CapAmb"):
            t.eq(int(re.search(k + r":\s*([0-9a-f]+)", caps).group(1), 16), 0,
                 "after loading, %s is empty" % k)
        t.ok(re.search(r"NoNewPrivs:\s*1", caps), "no_new_privs is set")


def test_sighup_reload():
    cfg = "/tmp/connbeatd-reload-%d.conf" % os.getpid()
    # beats every 250 ms: an idle threshold down to 500 ms can be reloaded
    with open(cfg, "w") as f:
        f.write("idle = 1h\nbeat-interval = 250ms\n")
    try:
        with t.Daemon("--config", cfg, *FAST, trace=False) as d:
            c, a, lst = t.tcp_pair(4)
            port = str(lst.getsockname()[1])
            cid = t.cookie(c)
            rows = wait_rows(d, lambda rs: by_id(rs).get(cid, {}).get("idle_ms", 0) >= 1500,
                             "--port", port, timeout=10)
            r = by_id(rows).get(cid, {})
            t.ok(r.get("idle_ms", 0) >= 1500 and r.get("state") == "active",
                 "with idle = 1h a connection silent for 1.5 s is active", r)
            with open(cfg, "w") as f:
                f.write("idle = 1s\nbeat-interval = 250ms\n"
                        "# a restart-only key, changed: only warned about\nshards = 2\n")
            d.proc.send_signal(signal.SIGHUP)
            rows = wait_rows(d, lambda rs: by_id(rs).get(cid, {}).get("state") == "stale",
                             "--port", port, timeout=10)
            t.eq(by_id(rows).get(cid, {}).get("state"), "stale",
                 "after SIGHUP with idle = 1s it turns stale")
            t.ok(any("shards" in l and "restart" in l for l in d.err),
                 "a changed restart-only key is reported as needing a restart",
                 d.stderr_text()[-1500:])
            with open(cfg, "w") as f:
                f.write("idle = 400ms\nbeat-interval = 250ms\n")
            d.proc.send_signal(signal.SIGHUP)
            t.ok(d.wait_stderr("shorter than twice --beat-interval"),
                 "an idle threshold under two beat intervals is refused on SIGHUP",
                 d.stderr_text()[-1500:])
            with open(cfg, "w") as f:
                f.write("idle = soon\n")
            d.proc.send_signal(signal.SIGHUP)
            t.ok(d.wait_stderr("idle 'soon': not a duration"), "a bad config on SIGHUP says so",
                 d.stderr_text()[-1500:])
            t.ok(d.proc.poll() is None and d.cli("stats").returncode == 0,
                 "and keeps the daemon running on its settings")
            for s in (c, a, lst):
                s.close()
    finally:
        os.unlink(cfg)


t.run(test_seeded_before_start, test_sighup_reload, test_idle_stale_then_active, test_close_wait_leak,
      test_kill9_restart, test_tiny_ring_converges, test_malformed_requests,
      test_stuck_client_does_not_stall, test_sigterm_drains, test_usage_and_config_errors,
      test_socket_permissions)
t.done()
