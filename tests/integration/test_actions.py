#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The operator's actions and streams, against the real daemon, the real BPF
programs and real loopback sockets, checked socket by socket (cookie) against
the kernel (`ss -tanpie`):

- kill: `kill --port P` destroys exactly the matching sockets (both owners
  see the abort), the sockets of another port survive; `--tcp-state
  close-wait` takes only the CLOSE_WAIT ones; `--dry-run` kills nothing;
  no filter is refused (exit 2); `--netns NAME` kills inside another
  network namespace; every kill is listed, logged and counted in
  connbeat_kills_total.
- drain --wait: exit 0 once every session of the set is closed, those that
  were already DRAINING when it was asked (CLOSE_WAIT, a FIN_WAIT2 remnant,
  an earlier drain) included; `--timeout` exits 3 listing what is left;
  `--kill-after` kills what is still open and returns 0.
- events --json: one JSON object per line, an open and a close for each end
  of each connection on the port (and nothing of other ports), closes whose
  bytes and duration agree with the traffic; a client that stops reading is
  told exactly how many events it missed while the daemon ingests on;
  SIGINT exits 0.
- cgroup: rows carry the socket's cgroup v2 path (as ss prints it),
  `list --cgroup` selects a cgroup and its descendants only, `summary --by
  cgroup` counts them.
"""
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

# A record's timestamp is taken on the programs' coarse clock: it may lag
# CLOCK_MONOTONIC by a tick (kernel/reconcile.h, CB_RECONCILE_MARGIN_NS).
CLOCK_SLACK_MS = 50
# SYN and FIN take a sequence number each: the kernel's bytes_acked and
# bytes_received (what connbeat reports) count them on top of the payload.
SEQ_EXTRA = 2


def kills(d):
    return int(d.stats().get("connbeat_kills_total", -1))


def pairs_on(lst, n, payload=0):
    """n connected pairs on listener `lst`; each moves `payload` bytes both
    ways first (so both owners are known and the counters are non-zero)."""
    out = []
    for _ in range(n):
        c = socket.create_connection(lst.getsockname()[:2], timeout=10)
        a, _ = lst.accept()
        a.settimeout(10)
        if payload:
            t.send_bytes(c, payload)
            t.recv_bytes(a, payload)
            t.send_bytes(a, payload)
            t.recv_bytes(c, payload)
        out.append((c, a))
    return out


def cookies(pairs):
    return {t.cookie(s) for p in pairs for s in p}


def recv_error(sock):
    """errno of a recv on a killed socket (None: it read data or EOF)."""
    try:
        sock.recv(16)
        return None
    except OSError as e:
        return e.errno


def close_all(*socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def port_of(lst):
    return lst.getsockname()[1]


def json_after_first_line(text):
    """drain prints "marked N sessions DRAINING" first; --json rows follow."""
    _, _, rest = text.partition("\n")
    rest = rest.strip()
    return json.loads(rest) if rest.startswith("[") else None


def map_states(d, port):
    """Sessions on `port` by drain state, as the daemon's map has them
    (summary counts the map; list would read the kernel for each row)."""
    out = {}
    for g in d.cli_json("summary", "--by", "cgroup", "--port", str(port)):
        for st, n in g["states"].items():
            out[st] = out.get(st, 0) + n
    return out


# ---------------------------------------------------------------- kill ----


def test_kill_port():
    with t.Daemon("--tick", "100ms", trace=False) as d:
        lst, other = t.tcp_listener(4), t.tcp_listener(4)
        p, q = port_of(lst), port_of(other)
        doomed, spared = pairs_on(lst, 3, 1000), pairs_on(other, 2, 1000)
        try:
            ck_p, ck_q = cookies(doomed), cookies(spared)
            t.ok(t.wait_until(lambda: ck_p | ck_q <= d.open_ids([p, q]), 10),
                 "kill: the daemon lists the 10 sessions", d.open_ids([p, q]))
            k0 = kills(d)
            r = d.cli("kill", "--port", str(p), "--json")
            t.eq(r.returncode, 0, "kill --port P: exit 0", r.stderr)
            rows = json.loads(r.stdout) if r.returncode == 0 else []
            killed = {x["id"] for x in rows}
            t.ok(killed and killed <= ck_p, "kill --port P: only sockets of port P are listed",
                 killed, ck_p)
            # destroying one end resets the other: each pair loses at least one
            # socket to the kill itself
            t.ok(all({t.cookie(c), t.cookie(a)} & killed for c, a in doomed),
                 "kill --port P: every connection of P was killed", killed)
            t.ok(all(x["sport"] == p or x["dport"] == p for x in rows),
                 "kill --json: the rows are of port P", rows)
            m = re.search(r"killed (\d+) connection", r.stderr)
            t.ok(m and int(m.group(1)) == len(killed),
                 "kill --json: says how many it killed (on stderr)", r.stderr)
            t.ok("could not be killed" not in r.stderr,
                 "kill: no failure reported when all of them are gone", r.stderr)
            gone = t.wait_until(lambda: not (ck_p & set(t.ss_socks([p]))), 10)
            t.ok(gone, "ss: no socket of port P is left",
                 {k: v["state"] for k, v in t.ss_socks([p]).items()})
            kern_q = t.ss_socks([q])
            t.ok(all(kern_q.get(ck, {}).get("state") == "ESTABLISHED" for ck in ck_q),
                 "ss: the sockets of the other port are untouched", kern_q)
            t.eq(kills(d) - k0, len(killed), "connbeat_kills_total grew by the number killed")
            log = d.stderr_text()
            t.ok(all("cookie %d," % ck in log for ck in killed),
                 "the daemon logs each kill", log[-2000:])
            # the owner of a destroyed socket sees the abort, its peer the reset
            errs = {t.cookie(s): recv_error(s) for pr in doomed for s in pr}
            want = {ck: errno.ECONNABORTED if ck in killed else errno.ECONNRESET for ck in errs}
            t.eq(errs, want, "recv: ECONNABORTED on a killed socket, ECONNRESET on its peer")
            for c, a in spared:
                t.send_bytes(c, 100)
                t.recv_bytes(a, 100)
            t.ok(True, "the other port's connections still carry data")
            t.ok(t.wait_until(lambda: not (d.open_ids([p]) & ck_p), 10),
                 "the daemon lists the killed connections closed", d.sessions("--port", str(p)))
        finally:
            close_all(lst, other, *[s for pr in doomed + spared for s in pr])


def test_kill_tcp_state_and_dry_run():
    with t.Daemon("--tick", "100ms", trace=False) as d:
        lst = t.tcp_listener(4)
        p = port_of(lst)
        leaking = pairs_on(lst, 2, 100)
        healthy = pairs_on(lst, 1, 100)
        try:
            # the peer hangs up, our side never closes: CLOSE_WAIT
            fw = {t.cookie(c) for c, _ in leaking}
            for c, _ in leaking:
                c.close()
            cw = {t.cookie(a) for _, a in leaking}
            t.ok(t.wait_until(lambda: all(t.ss_socks([p]).get(ck, {}).get("state") ==
                                          "CLOSE_WAIT" for ck in cw), 10),
                 "ss: two sockets in CLOSE_WAIT")
            t.ok(t.wait_until(lambda: all(t.ss_socks([p]).get(ck, {}).get("state") ==
                                          "FIN_WAIT2" for ck in fw), 10),
                 "ss: their peers in FIN_WAIT2 (nothing moves any more)")
            t.ok(t.wait_until(lambda: {r["id"] for r in d.sessions(
                "--port", str(p), "--tcp-state", "close-wait")} == cw, 10),
                "the daemon lists them in CLOSE_WAIT")
            k0 = kills(d)
            before = t.ss_socks([p])
            r = d.cli("kill", "--tcp-state", "close-wait", "--port", str(p), "--dry-run", "--json")
            t.eq(r.returncode, 0, "kill --dry-run: exit 0", r.stderr)
            rows = json.loads(r.stdout) if r.returncode == 0 else []
            t.eq({x["id"] for x in rows}, cw, "kill --dry-run: lists what it would kill")
            t.ok("would kill 2 connections" in r.stderr, "kill --dry-run: says 'would kill'",
                 r.stderr)
            r = d.cli("kill", "--tcp-state", "close-wait", "--port", str(p), "--dry-run")
            t.ok(r.returncode == 0 and r.stdout.count("CLOSE_WAIT") == 2 and
                 "would kill 2 connections" in r.stdout,
                 "kill --dry-run (table): the two CLOSE_WAIT rows", r.stdout, r.stderr)
            after = t.ss_socks([p])
            t.eq({k: v["state"] for k, v in after.items()},
                 {k: v["state"] for k, v in before.items()}, "kill --dry-run: ss unchanged")
            t.eq(kills(d), k0, "kill --dry-run: nothing counted")
            r = d.cli("kill", "--tcp-state", "close-wait", "--port", str(p), "--json")
            rows = json.loads(r.stdout) if r.returncode == 0 else []
            t.eq({x["id"] for x in rows}, cw, "kill --tcp-state close-wait: those two, no other",
                 r.stderr)
            t.ok(all(x["tcp_state"] == "CLOSE_WAIT" for x in rows),
                 "kill --tcp-state close-wait: rows in CLOSE_WAIT", rows)
            kern = t.ss_socks([p])
            t.ok(not (cw & set(kern)), "ss: the CLOSE_WAIT sockets are gone", kern)
            ok_ck = cookies(healthy)
            t.ok(all(kern.get(ck, {}).get("state") == "ESTABLISHED" for ck in ok_ck),
                 "ss: the ESTABLISHED connection of the same port survives", kern)
            t.eq(kills(d) - k0, 2, "connbeat_kills_total grew by 2")
        finally:
            close_all(lst, *[s for pr in leaking + healthy for s in pr])


def test_kill_needs_a_filter():
    with t.Daemon("--tick", "100ms", trace=False) as d:
        c, a, lst = t.tcp_pair(4)
        p = port_of(lst)
        try:
            ck = {t.cookie(c), t.cookie(a)}
            t.wait_until(lambda: ck <= d.open_ids([p]), 10)
            k0 = kills(d)
            for args in (["kill"], ["kill", "--json"], ["kill", "--dry-run"]):
                r = d.cli(*args)
                t.ok(r.returncode == 2 and "filter" in r.stderr,
                     "connbeat %s: exit 2 asking for a filter" % " ".join(args), r.returncode,
                     r.stderr)
            kern = t.ss_socks([p])
            t.ok(all(kern.get(x, {}).get("state") == "ESTABLISHED" for x in ck),
                 "kill without a filter: the connection is untouched", kern)
            t.eq(kills(d), k0, "kill without a filter: nothing counted")
            t.send_bytes(c, 10)
            t.recv_bytes(a, 10)
        finally:
            close_all(c, a, lst)


# A pair inside a network namespace: listens on the port given, prints the
# two cookies, then on a line from stdin reports what recv says on each.
NETNS_HOLDER = r"""
import socket, struct, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(8)
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
ck = lambda s: struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 57, 8))[0]
print(ck(c), ck(a), flush=True)
sys.stdin.readline()
out = []
for s in (c, a):
    s.settimeout(10)
    try:
        out.append("data" if s.recv(16) else "eof")
    except OSError as e:
        out.append(str(e.errno))
print(" ".join(out), flush=True)
"""


def test_kill_in_another_netns():
    if not t.need("ip", "iproute2", "kill --netns NAME"):
        return
    ns = "cbt-act-%d" % os.getpid()
    holder = None
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if not t.ok(r.returncode == 0, "ip netns add %s" % ns, r.stderr):
        return
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        with t.Daemon("--tick", "100ms", "--reconcile-interval", "1s", trace=False) as d:
            # the same port in our own netns: it must survive
            c, a, lst = t.tcp_pair(4)
            p = port_of(lst)
            try:
                holder = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                           NETNS_HOLDER, str(p)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True)
                inside = {int(x) for x in holder.stdout.readline().split()}
                t.eq(len(inside), 2, "a connected pair inside netns %s" % ns)
                # fresh: the daemon has read them in their netns (it knows how
                # to enter it: what a kill needs too)
                t.ok(t.wait_until(lambda: {x["id"] for x in d.sessions(
                    "--netns", ns, "--port", str(p)) if x["fresh"]} == inside, 15),
                    "list --netns NAME --port P: the pair inside it",
                    d.sessions("--port", str(p)))
                mine = {t.cookie(c), t.cookie(a)}
                t.wait_until(lambda: mine <= d.open_ids([p]), 10)
                k0 = kills(d)
                r = d.cli("kill", "--netns", ns, "--port", str(p), "--json")
                t.eq(r.returncode, 0, "kill --netns NAME --port P: exit 0", r.stderr)
                rows = json.loads(r.stdout) if r.returncode == 0 else []
                killed = {x["id"] for x in rows}
                t.ok(killed and killed <= inside, "kill --netns: it kills inside that netns",
                     killed, inside)
                t.ok("could not be killed" not in r.stderr, "kill --netns: no failure reported",
                     r.stderr)
                t.ok(not (inside & set(t.ss_socks([p], netns=ns))),
                     "ss in the netns: the pair is gone", t.ss_socks([p], netns=ns))
                kern = t.ss_socks([p])
                t.ok(all(kern.get(x, {}).get("state") == "ESTABLISHED" for x in mine),
                     "ss: the same port in our netns is untouched", kern)
                t.eq(kills(d) - k0, len(killed), "connbeat_kills_total grew by the number killed")
                holder.stdin.write("check\n")
                holder.stdin.flush()
                got = holder.stdout.readline().split()
                want = {str(errno.ECONNABORTED), str(errno.ECONNRESET)}
                t.ok(len(got) == 2 and set(got) <= want and str(errno.ECONNABORTED) in got,
                     "inside the netns: the owners see the abort and the reset", got)
            finally:
                close_all(c, a, lst)
    finally:
        if holder:
            holder.kill()
            holder.wait(10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# ---------------------------------------------------------------- drain ----


def test_drain_waits_for_the_already_draining():
    # closed sessions linger long enough for the map's counts to be read
    with t.Daemon("--tick", "100ms", "--reconcile-interval", "1s", "--linger", "10m",
                  trace=False) as d:
        lst = t.tcp_listener(4)
        p = port_of(lst)
        socks = [lst]
        waiter = None
        try:
            # B: drained by an earlier `drain` (no --wait)
            b = pairs_on(lst, 1, 10)
            socks += list(b[0])
            t.wait_until(lambda: cookies(b) <= d.open_ids([p]), 10)
            r = d.cli("drain", "--port", str(p))
            t.ok(r.returncode == 0 and "marked 2 sessions" in r.stdout,
                 "drain (no --wait): marks the two sessions", r.stdout, r.stderr)
            # A: the peer closed, we did not: CLOSE_WAIT here, a FIN_WAIT2
            # remnant there (both DRAINING, by TCP)
            (ca, aa), = pairs_on(lst, 1, 10)
            socks.append(aa)
            ck_ca, ck_aa = t.cookie(ca), t.cookie(aa)
            ca.close()
            # C: active
            cpair = pairs_on(lst, 1, 10)
            socks += list(cpair[0])

            def states():
                return {x["id"]: (x["state"], x["tcp_state"], x["drained_by"])
                        for x in d.sessions("--port", str(p))}

            want = {ck_aa: ("draining", "CLOSE_WAIT", "tcp"),
                    ck_ca: ("draining", "FIN_WAIT2", "tcp")}
            want.update({ck: ("draining", "ESTABLISHED", "operator") for ck in cookies(b)})
            want.update({ck: ("active", "ESTABLISHED", "none") for ck in cookies(cpair)})
            t.ok(t.wait_until(lambda: states() == want, 15),
                 "before: two drained by an operator, two by TCP, two active", states(), want)
            waiter = subprocess.Popen([t.CONNBEAT, "--socket", d.socket_path, "drain", "--port",
                                       str(p), "--wait", "--timeout", "120s"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            first = waiter.stdout.readline()
            t.ok("marked 2 sessions DRAINING" in first,
                 "drain --wait: marks the two active ones (the others already drain)", first)
            # B and C end; the map must have them closed before we look
            close_all(*cpair[0], *b[0])
            t.ok(t.wait_until(lambda: map_states(d, p).get("closed", 0) == 4 and
                              map_states(d, p).get("draining", 0) == 2, 15),
                 "the daemon has the four closed, A still draining", map_states(d, p))
            # a second drain --wait, asked now, holds exactly A: sessions that
            # were DRAINING already when it was asked are part of its set
            r = d.cli("drain", "--port", str(p), "--wait", "--timeout", "1s", "--json")
            t.eq(r.returncode, 3, "drain --wait --timeout 1s: exit 3 while A is open", r.stderr)
            left = json_after_first_line(r.stdout) or []
            t.eq({x["id"] for x in left}, {ck_aa, ck_ca},
                 "what is left: the CLOSE_WAIT socket and the FIN_WAIT2 remnant", r.stdout)
            t.ok("2 sessions still open" in r.stderr, "and it says how many are left", r.stderr)
            t.ok(waiter.poll() is None,
                 "the first drain --wait still waits for the already-draining ones",
                 waiter.poll())
            # A ends: our side closes too (LAST_ACK, then the remnant's TIME_WAIT)
            aa.close()
            try:
                rc = waiter.wait(60)
            except subprocess.TimeoutExpired:
                rc = None
            out, err = waiter.communicate(timeout=10) if rc is not None else ("", "")
            t.eq(rc, 0, "drain --wait: exit 0 once every session of its set is closed", err,
                 map_states(d, p), states())
            t.ok("drained" in out, "drain --wait: says it is drained", out)
            left = t.ss_session_ids([p]) & (want.keys())
            t.eq(left, set(), "ss: none of them is open any more")
        finally:
            if waiter and waiter.poll() is None:
                waiter.kill()
                waiter.wait(10)
            close_all(*socks)


def test_drain_timeout_lists_what_is_left():
    with t.Daemon("--tick", "100ms", trace=False) as d:
        lst = t.tcp_listener(4)
        p = port_of(lst)
        prs = pairs_on(lst, 2, 10)
        try:
            ck = cookies(prs)
            t.wait_until(lambda: ck <= d.open_ids([p]), 10)
            r = d.cli("drain", "--port", str(p), "--wait", "--timeout", "500ms", "--json")
            t.eq(r.returncode, 3, "drain --wait --timeout: exit 3", r.stderr)
            left = json_after_first_line(r.stdout) or []
            t.eq({x["id"] for x in left}, ck, "it lists the four sessions left", r.stdout)
            t.ok(all(x["state"] == "draining" for x in left), "all of them DRAINING", left)
            kern = t.ss_socks([p])
            t.ok(all(kern.get(x, {}).get("state") == "ESTABLISHED" for x in ck),
                 "a drain kills nothing: ss still has them", kern)
        finally:
            close_all(lst, *[s for pr in prs for s in pr])


def test_drain_kill_after():
    with t.Daemon("--tick", "100ms", trace=False) as d:
        lst = t.tcp_listener(4)
        p = port_of(lst)
        prs = pairs_on(lst, 2, 10)
        try:
            ck = cookies(prs)
            t.wait_until(lambda: ck <= d.open_ids([p]), 10)
            k0 = kills(d)
            r = d.cli("drain", "--port", str(p), "--wait", "--timeout", "60s", "--kill-after",
                      "300ms", timeout=90)
            t.eq(r.returncode, 0, "drain --wait --kill-after: exit 0 once they are gone",
                 r.stdout, r.stderr)
            m = re.search(r"killed (\d+) connections? still open after --kill-after", r.stdout)
            n = int(m.group(1)) if m else -1
            t.ok(2 <= n <= 4, "it says how many it killed (at least one end of each)", r.stdout)
            t.ok("drained" in r.stdout, "and that the set is drained", r.stdout)
            t.eq(set(t.ss_socks([p])) & ck, set(), "ss: none of the sockets is left")
            t.eq(kills(d) - k0, n, "connbeat_kills_total grew by the number killed")
            errs = [recv_error(s) for pr in prs for s in pr]
            t.ok(all(e in (errno.ECONNABORTED, errno.ECONNRESET) for e in errs),
                 "the owners see the abort or the reset", errs)
        finally:
            close_all(lst, *[s for pr in prs for s in pr])


# --------------------------------------------------------------- events ----


class Events:
    """`connbeat events --json ARGS` in the background; .lines: (monotonic
    arrival time, line) as they come."""

    def __init__(self, d, *args):
        self.p = subprocess.Popen([t.CONNBEAT, "--socket", d.socket_path, "events", "--json"] +
                                  list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.lines = []
        self.lock = threading.Lock()
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()

    def _read(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line))

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def objects(self):
        """Parsed lines; unparsable ones as None."""
        out = []
        for at, line in self.snapshot():
            try:
                o = json.loads(line)
            except ValueError:
                o = None
            out.append((at, o if isinstance(o, dict) else None, line))
        return out

    def total(self):
        """Events received plus those it was told it missed."""
        n = 0
        for _, o, _ in self.objects():
            n += o["count"] if o and o.get("event") == "missed" else 1
        return n

    def ids(self):
        return {o.get("id") for _, o, _ in self.objects() if o}

    def stop(self, sig=signal.SIGINT):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = None
        self.th.join(5)
        return rc


def rst_connection(lst):
    """One connection closed by an abort at once: exactly an open and a
    close for each end. Its two cookies."""
    c = socket.create_connection(lst.getsockname()[:2], timeout=10)
    a, _ = lst.accept()
    ck = (t.cookie(c), t.cookie(a))
    t.close_rst(c)
    t.wait_reset(a)
    a.close()
    return ck


def test_events():
    with t.Daemon("--tick", "100ms", "--reconcile-interval", "1s", trace=False) as d:
        lst, other = t.tcp_listener(4), t.tcp_listener(4)
        p, q = port_of(lst), port_of(other)
        ev = Events(d, "--port", str(p))
        held = []
        try:
            # subscribed once the events of a probe connection arrive
            probes = set()
            for _ in range(10):
                probes |= set(rst_connection(lst))
                if t.wait_until(lambda: probes <= ev.ids(), 3):
                    break
            t.ok(probes <= ev.ids(), "events: the stream is live", ev.snapshot())

            # graceful connections on P (client closes first), and others on Q
            plan = [(30000, 7000), (12345, 54321), (1, 2)]
            conns = []
            for sent, back in plan:
                t0 = time.monotonic()
                c = socket.create_connection(lst.getsockname()[:2], timeout=10)
                t1 = time.monotonic()
                a, _ = lst.accept()
                a.settimeout(10)
                t.send_bytes(c, sent)
                t.recv_bytes(a, sent)
                t.send_bytes(a, back)
                t.recv_bytes(c, back)
                conns.append({"c": c, "a": a, "sent": sent, "back": back, "t0": t0, "t1": t1,
                              "ck": t.cookie(c), "ak": t.cookie(a),
                              "cend": (t.endpoint(c), t.peer(c))})
            for i, x in enumerate(conns):
                x["t2"] = time.monotonic()
                x["c"].close()
                if i == 0:
                    # the server keeps its end open a while: the client's end
                    # lives on as a FIN_WAIT2 remnant (design.md §3), whose
                    # end the kernel reports to no program
                    t.ok(t.wait_until(lambda: any(r["id"] == x["ck"] and r["remnant"] for r in
                                                  d.sessions("--port", str(p))), 10),
                         "events: the first client's end is a FIN_WAIT2 remnant",
                         d.sessions("--port", str(p)))
                t.wait_eof(x["a"])
                x["a"].close()
                x["t3"] = time.monotonic()
            qck = set()
            for c, a in pairs_on(other, 2, 500):
                qck |= {t.cookie(c), t.cookie(a)}
                c.close()
                t.wait_eof(a)
                a.close()
            mine = {x["ck"] for x in conns} | {x["ak"] for x in conns}

            def closed_ids():
                return {o["id"] for _, o, _ in ev.objects() if o and o.get("event") == "close"}

            t.ok(t.wait_until(lambda: mine <= closed_ids(), 30),
                 "events: a close for each end of the connections on P", mine - closed_ids())
            objs = ev.objects()
            bad = [line for _, o, line in objs if o is None]
            t.eq(bad, [], "events --json: every line is one JSON object")
            objs = [(at, o) for at, o, _ in objs if o]
            t.ok(all(o["sport"] == p or o["dport"] == p for _, o in objs),
                 "events --port P: every event is of port P",
                 [o for _, o in objs if p not in (o["sport"], o["dport"])])
            t.eq([o for _, o in objs if o["id"] in qck or q in (o["sport"], o["dport"])], [],
                 "events --port P: nothing of the other port")
            for x in conns:
                for ck, side in ((x["ck"], "client"), (x["ak"], "server")):
                    mine_ev = [(at, o) for at, o in objs if o["id"] == ck]
                    kinds = [o["event"] for _, o in mine_ev]
                    label = "events: %s %d (%d bytes out, %d back)" % (side, ck, x["sent"],
                                                                       x["back"])
                    if not t.ok(kinds.count("open") == 1 and kinds.count("close") == 1 and
                                kinds[0] == "open" and kinds[-1] == "close",
                                "%s: one open first, one close last" % label, kinds):
                        continue
                    op, cl = mine_ev[0][1], mine_ev[-1][1]
                    cl_at = mine_ev[-1][0]
                    (la, lp), (ra, rp) = x["cend"]
                    want = (la, lp, ra, rp) if side == "client" else (ra, rp, la, lp)
                    t.eq((op["src"], op["sport"], op["dst"], op["dport"]), want,
                         "%s: the open has its addresses and ports" % label)
                    if side == "client":
                        t.eq(op["pid"], os.getpid(), "%s: the open names this process" % label)
                    out, back = (x["sent"], x["back"]) if side == "client" else \
                        (x["back"], x["sent"])
                    t.ok(0 <= cl["tx_bytes"] - out <= SEQ_EXTRA and
                         0 <= cl["rx_bytes"] - back <= SEQ_EXTRA,
                         "%s: the close's bytes are what it sent and received" % label,
                         (cl["tx_bytes"], cl["rx_bytes"]), (out, back))
                    t.eq(cl["end"], "fin", "%s: ended by FIN" % label)
                    # the clock: CLOCK_MONOTONIC ms, ours too
                    t.ok(x["t0"] * 1000 - CLOCK_SLACK_MS <= op["ts_ms"] <=
                         x["t1"] * 1000 + CLOCK_SLACK_MS,
                         "%s: the open is stamped while connect() ran" % label,
                         op["ts_ms"], x["t0"] * 1000, x["t1"] * 1000)
                    t.ok(x["t2"] * 1000 - CLOCK_SLACK_MS <= cl["ts_ms"] <= cl_at * 1000 + 1,
                         "%s: the close is stamped after close(), before it arrived" % label,
                         cl["ts_ms"], x["t2"] * 1000, cl_at * 1000)
                    t.ok(abs(cl["duration_ms"] - (cl["ts_ms"] - op["ts_ms"])) <= 2,
                         "%s: the duration is from the open to the close" % label,
                         cl["duration_ms"], cl["ts_ms"] - op["ts_ms"])

            # a client that stops reading: a bounded burst, then it is told
            # exactly how many events it missed; ingest goes on meanwhile
            base = ev.total()
            st0 = d.stats()
            burst = 5000  # 4 events each: past the 16384 a client may lag by (CB_EVENTS_RING)
            known = set(mine) | probes
            ev.p.send_signal(signal.SIGSTOP)
            try:
                for _ in range(burst):
                    known |= set(rst_connection(lst))
                held = pairs_on(lst, 3)
                hk = cookies(held)
                known |= hk
                t.ok(t.wait_until(lambda: d.stats().get("connbeat_events_missed_total", 0) >
                                  st0.get("connbeat_events_missed_total", 0), 20),
                     "events: the daemon counts what the stopped client misses")
                opened = lambda: d.stats()["connbeat_sessions_opened_total"]  # noqa: E731
                o0 = st0["connbeat_sessions_opened_total"]
                t.ok(t.wait_until(lambda: opened() - o0 >= 2 * burst + 2 * len(held), 20),
                     "ingest goes on while the client is stopped (every session opened)",
                     "opened %d before, %d now" % (o0, opened()))
                ok = t.wait_until(lambda: d.open_ids([p]) == t.ss_session_ids([p]), 20)
                t.ok(ok and hk <= d.open_ids([p]),
                     "while it is stopped, list agrees with ss on port P",
                     d.open_ids([p]) ^ t.ss_session_ids([p]))
            finally:
                ev.p.send_signal(signal.SIGCONT)
            # once it has caught up, every event so far was either received
            # or counted as missed, exactly
            caught_up = base + 4 * burst + 2 * len(held)
            t.wait_until(lambda: ev.total() >= caught_up, 30)
            objs = [o for _, o, _ in ev.objects() if o]
            missed = [o["count"] for o in objs if o["event"] == "missed"]
            t.ok(missed and all(isinstance(n, int) and n > 0 for n in missed),
                 "events: the client is told it missed events", missed)
            t.eq(ev.total(), caught_up, "events received + missed = every event of port P",
                 "received %d, missed %r" % (len(objs) - len(missed), missed))
            t.eq({o.get("id") for o in objs if o["event"] != "missed"} - known, set(),
                 "events: only sockets of port P appear")
            # and the stream goes on: the held connections' closes arrive
            for c, a in held:
                t.close_rst(c)
                t.wait_reset(a)
                a.close()
            t.ok(t.wait_until(lambda: all(any(o and o.get("id") == ck and o["event"] == "close"
                                              for _, o, _ in ev.objects()) for ck in hk), 30),
                 "events: after it caught up, the stream goes on (the held ones' closes)")
            t.eq(ev.total(), caught_up + 2 * len(held), "events: nothing missed any more")
            t.eq(ev.stop(signal.SIGINT), 0, "events: Ctrl-C (SIGINT) exits 0")
        finally:
            if ev.p.poll() is None:
                ev.p.send_signal(signal.SIGCONT)
                ev.stop(signal.SIGKILL)
            close_all(lst, other, *[s for pr in held for s in pr])


# --------------------------------------------------------------- cgroup ----


def cgroup2_mount():
    """The first cgroup2 mount of /proc/self/mountinfo (octal escapes
    decoded), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, sep, post = line.partition(" - ")
            if sep and post.split()[0] == "cgroup2":
                path = pre.split()[4]
                return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)
    return None


# Moves itself nowhere: the test writes its pid into cgroup.procs, then
# sends a line; it connects `n` times to the port, prints the cookies and
# holds them until the next line.
CG_CHILD = r"""
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
sys.stdin.readline()
cg = [l.split(":", 2)[2].strip() for l in open("/proc/self/cgroup") if l.startswith("0::")]
cs = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
ck = [struct.unpack("Q", c.getsockopt(socket.SOL_SOCKET, 57, 8))[0] for c in cs]
print((cg or ["?"])[0], " ".join(map(str, ck)), flush=True)
sys.stdin.readline()
"""

_SS_CGROUP = re.compile(r"\bcgroup:(\S+)")


def test_cgroup():
    mnt = cgroup2_mount()
    if not mnt:
        why = "this host has no cgroup2 mount (none in /proc/self/mountinfo)"
        print("*** SKIPPING test_cgroup: %s ***" % why, file=sys.stderr, flush=True)
        t.skip("cgroup: rows, list --cgroup, summary --by cgroup", why)
        return
    t.diag("cgroup2 is mounted at %s" % mnt)
    top = "/cbt-act-%d" % os.getpid()
    one, two = top + "/one", top + "/two"
    made, kids, socks = [], [], []
    try:
        for rel in (top, one, two):
            os.mkdir(mnt + rel)
            made.append(mnt + rel)
        with t.Daemon("--tick", "100ms", trace=False) as d:
            lst = t.tcp_listener(4)
            socks.append(lst)
            p = port_of(lst)
            ids, accepted = {}, []
            for rel, n in ((one, 3), (two, 2)):
                k = subprocess.Popen([sys.executable, "-c", CG_CHILD, str(p), str(n)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                kids.append(k)
                with open(mnt + rel + "/cgroup.procs", "w") as f:
                    f.write(str(k.pid))
                k.stdin.write("go\n")
                k.stdin.flush()
                line = k.stdout.readline().split()
                t.eq(line[:1], [rel], "the child is in cgroup %s" % rel)
                ids[rel] = {int(x) for x in line[1:]}
                accepted += [lst.accept()[0] for _ in range(n)]
            c = socket.create_connection(lst.getsockname())
            a, _ = lst.accept()
            socks += accepted + [c, a]
            ours = {t.cookie(s) for s in accepted + [c, a]}
            every = ids[one] | ids[two] | ours
            t.ok(t.wait_until(lambda: every <= d.open_ids([p]), 10),
                 "the daemon lists the 12 sessions", d.open_ids([p]))
            kern = t.ss_socks([p])
            ss_cg = {}
            for ck in every:
                m = _SS_CGROUP.search(kern.get(ck, {}).get("line", ""))
                ss_cg[ck] = m.group(1) if m else None
            t.ok(all(ss_cg[ck] == one for ck in ids[one]) and
                 all(ss_cg[ck] == two for ck in ids[two]),
                 "ss: the children's sockets are in their cgroups", ss_cg)

            def rows_cg():
                return {r["id"]: r["cgroup"] for r in d.sessions("--port", str(p))
                        if r["id"] in every}

            t.ok(t.wait_until(lambda: rows_cg() == ss_cg, 10),
                 "rows carry the cgroup ss names for each socket (relative to %s)" % mnt,
                 rows_cg(), ss_cg)

            def sel(path):
                return {r["id"] for r in d.sessions("--cgroup", path)}

            t.ok(t.wait_until(lambda: sel(one) == ids[one], 10),
                 "list --cgroup %s: its sockets only" % one, sel(one), ids[one])
            t.eq(sel(top), ids[one] | ids[two],
                 "list --cgroup %s: its descendants' sockets" % top)
            t.eq(sel(two.lstrip("/")), ids[two], "list --cgroup without the leading /")
            t.eq(sel(top + "/on"), set(), "list --cgroup: a name prefix is not a parent")
            t.eq(sel(top + "/nothing-here"), set(), "list --cgroup of an unknown cgroup: nothing")
            r = d.cli("list", "--cgroup", top + "/../etc")
            t.eq(r.returncode, 2, "list --cgroup with '..': usage error", r.stderr)

            def groups(*args):
                return {g["cgroup"]: g for g in d.cli_json("summary", "--by", "cgroup", *args)}

            g = groups("--port", str(p))
            t.ok(one in g and two in g, "summary --by cgroup: a group per child cgroup", g)
            if one in g and two in g:
                t.eq((g[one]["sessions"], g[one]["states"]["active"],
                      g[one]["tcp_states"].get("ESTABLISHED")), (3, 3, 3),
                     "summary --by cgroup: %s counts its 3 sessions" % one)
                t.eq(g[two]["sessions"], 2, "summary --by cgroup: %s counts its 2" % two)
                t.eq(sum(x["sessions"] for x in g.values()), len(every),
                     "summary --by cgroup --port P: every session in one group")
            g = groups("--cgroup", top)
            t.eq({k: v["sessions"] for k, v in g.items()}, {one: 3, two: 2},
                 "summary --by cgroup --cgroup %s: its two children" % top)
    finally:
        for k in kids:
            k.kill()
            k.wait(10)
        close_all(*socks)
        for path in reversed(made):
            # the children are reaped: the cgroup is empty (bounded retries)
            t.wait_until(lambda: _rmdir(path), 10, 0.1)
            if os.path.isdir(path):
                t.diag("could not remove %s" % path)


def _rmdir(path):
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


t.skip_all_if_no_bpf()
t.run(test_kill_port, test_kill_tcp_state_and_dry_run, test_kill_needs_a_filter,
      test_kill_in_another_netns, test_drain_waits_for_the_already_draining,
      test_drain_timeout_lists_what_is_left, test_drain_kill_after, test_events, test_cgroup)
t.done()
