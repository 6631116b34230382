#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A row is the kernel's truth (design.md §3), socket by socket.

Every comparison is per cookie: what `connbeat list --json` says about a
socket against what `ss -tanpie` says about the same `sk:`. The sockets
belong to separate processes (small Python agents with a comm of their
own, driven over a pipe), so the owner is a real question: idle, chatty
and half-closed connections, an orphan in FIN_WAIT1 (its process exited
with data the peer will not take), a FIN_WAIT2 remnant (its process
exited after its FIN was acked), a connection still in the accept queue
and one reset by a close with unread data. Then: connections older than
the daemon, `kill -9` and a restart with traffic while no daemon ran,
`--sort KEY --limit N` against the rows and against ss, and `summary
--by port|comm` against a recount of `list`.

A snapshot is "ss, then connbeat, then ss again": connbeat's row is
compared with the kernel only when the kernel's values did not move
between the two ss reads (so they held all through the query); the
snapshot is retried (bounded) until they do. Nothing else is waited for,
and no value is compared with a tolerance but RTT at ss's printed
precision (see rtt_as_ss)."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

# A process holding sockets, driven by one JSON command per line on stdin,
# one JSON reply per line on stdout. argv[1] becomes its comm.
AGENT = r'''
import ctypes, json, socket, struct, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
socks = {}
def cookie(s):
    return struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 57, 8))[0]  # SO_COOKIE
def reply(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()
for line in sys.stdin:
    c = json.loads(line)
    op, n = c["op"], c.get("name")
    try:
        if op == "listen":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(c.get("backlog", 128))
            socks[n] = s
            reply(port=s.getsockname()[1])
        elif op == "connect":
            s = socket.create_connection(("127.0.0.1", c["port"]), timeout=10)
            socks[n] = s
            reply(cookie=cookie(s), sport=s.getsockname()[1])
        elif op == "connect_nb":  # stays in SYN_SENT if nobody answers
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", c["port"]))
            socks[n] = s
            reply(cookie=cookie(s), sport=s.getsockname()[1])
        elif op == "accept":
            socks[c["lst"]].settimeout(10)
            s, _ = socks[c["lst"]].accept()
            s.settimeout(10)
            socks[n] = s
            reply(cookie=cookie(s), dport=s.getpeername()[1])
        elif op == "send":
            socks[n].sendall(b"x" * c["n"])
            reply()
        elif op == "recv":
            got = 0
            while got < c["n"]:
                b = socks[n].recv(c["n"] - got)
                if not b:
                    raise EOFError("peer closed after %d bytes" % got)
                got += len(b)
            reply(n=got)
        elif op == "fill":  # send until the peer's window and our buffer are full
            s, tot = socks[n], 0
            s.setblocking(False)
            try:
                while True:
                    tot += s.send(b"y" * 65536)
            except BlockingIOError:
                pass
            reply(n=tot)
        elif op == "shutdown":
            socks[n].shutdown(socket.SHUT_WR)
            reply()
        elif op == "eof":
            tot = 0
            while True:
                b = socks[n].recv(65536)
                if not b:
                    break
                tot += len(b)
            reply(n=tot)
        elif op == "close":
            socks.pop(n).close()
            reply()
        elif op == "exit":
            reply()
            sys.exit(0)
        else:
            reply(error="unknown op " + op)
    except Exception as e:
        reply(error="%s %s: %r" % (op, n, e))
'''


class Agent:
    """One agent process; .do(op, ...) returns its reply (raises on an error
    or when it does not answer in 15 s)."""

    def __init__(self, comm, pool):
        self.comm = comm
        self.p = subprocess.Popen([sys.executable, "-c", AGENT, comm], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        pool.append(self)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line)
        self.q.put(None)

    @property
    def pid(self):
        return self.p.pid

    def do(self, op, **kw):
        kw["op"] = op
        self.p.stdin.write(json.dumps(kw) + "\n")
        self.p.stdin.flush()
        try:
            line = self.q.get(timeout=15)
        except queue.Empty:
            raise RuntimeError("agent %s: no answer to %r" % (self.comm, kw))
        if line is None:
            raise RuntimeError("agent %s exited (status %r) on %r" % (self.comm, self.p.poll(), kw))
        r = json.loads(line)
        if "error" in r:
            raise RuntimeError("agent %s: %s" % (self.comm, r["error"]))
        return r

    def exit(self):
        """Exit, closing every socket it holds (sockets the kernel must
        keep become orphans)."""
        self.do("exit")
        self.p.wait(10)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)


def kill_all(pool):
    # the server side last: closing it resets whatever orphan still waits on it
    for a in reversed(pool):
        try:
            a.kill()
        except Exception as e:  # noqa: BLE001 — keep cleaning up
            t.diag("cleanup: agent %s: %r" % (a.comm, e))


def connect(srv, cli, port, name):
    """A connection from agent cli to agent srv's listener: (client cookie,
    server cookie)."""
    c = cli.do("connect", name=name, port=port)
    s = srv.do("accept", name=name, lst="l")
    if s["dport"] != c["sport"]:
        raise RuntimeError("accepted another connection than %s" % name)
    return c["cookie"], s["cookie"]


# ---------------------------------------------------------------- kernel ----

# What must not move between the two ss reads of a snapshot.
KERNEL_KEYS = ("state", "pid", "comm", "bytes_acked", "bytes_received", "segs_in", "segs_out",
               "retrans", "rtt_ms", "timewait")


def ss(port):
    socks = t.ss_socks([port])
    for k in socks.values():
        # a timewait socket (a FIN_WAIT2 remnant): ss has no tcp_info for it
        k["timewait"] = "timer:(timewait," in k["line"]
    return socks


def kernel_key(k):
    return None if k is None else tuple(k[x] for x in KERNEL_KEYS)


def snapshot(d, port, want):
    """(ss, connbeat rows by id) for the sockets on `port`, such that every
    cookie in `want` had the same kernel values in the ss reads before and
    after connbeat's answer, and connbeat listed it (a new socket reaches
    the daemon with its OPEN record, one ingest poll later)."""
    view = {}

    def attempt():
        before = ss(port)
        rows = {r["id"]: r for r in d.sessions("--port", str(port))}
        after = ss(port)
        view.update(kern=after, rows=rows)
        return all(kernel_key(before.get(ck)) == kernel_key(after.get(ck)) and ck in rows
                   for ck in want)

    if not t.wait_until(attempt, 20, 0.05):
        t.diag("snapshot on port %d: the kernel kept changing or connbeat did not list all "
               "of %s" % (port, sorted(want)))
    return view["kern"], view["rows"]


def rtt_as_ss(rtt_us):
    """connbeat's rtt_us as ss prints the same tcpi_rtt: ss divides it by
    1000 and prints it with %g (6 significant digits, so exact below
    1000 ms: every loopback RTT), and prints none when it is 0. So this is
    equality at ss's precision, with no slack of our own."""
    return float("%g" % (rtt_us / 1000.0)) if rtt_us else None


def agree(where, kern, rows, want, last_owner=None):
    """Compare connbeat's row with ss for every cookie of `want`
    ({cookie: label}). A socket ss shows with no users (an orphan, a
    remnant, one not yet accepted) is flagged orphan, and keeps its last
    known owner (design.md §3): the pid in `last_owner` ({cookie: (pid,
    comm)}) when connbeat could know it, or none."""
    last_owner = last_owner or {}
    for ck, label in want.items():
        name = "%s: %s (sk:%x)" % (where, label, ck)
        k, r = kern.get(ck), rows.get(ck)
        if not t.ok(k is not None and r is not None, "%s: in ss and in connbeat" % name,
                    "ss: %r" % (k and k["line"]), "connbeat: %r" % (r,)):
            continue
        t.eq((r["src"], r["sport"], r["dst"], r["dport"]),
             (k["src"], k["sport"], k["dst"], k["dport"]), "%s: addresses as ss" % name)
        t.eq(r["tcp_state"], k["state"], "%s: tcp_state as ss" % name, k["line"])
        if k["pid"] is not None:
            t.eq((r["pid"], r["comm"], r["orphan"]), (k["pid"], k["comm"], False),
                 "%s: owner as ss" % name, k["line"])
        else:
            # no users in ss <=> orphan in connbeat, with its last owner
            t.eq((r["orphan"], (r["pid"], r["comm"])),
                 (True, last_owner.get(ck, (None, None))),
                 "%s: no process holds it, as ss says: orphan, with its last known owner"
                 % name, k["line"])
        t.eq(r["remnant"], k["timewait"], "%s: a remnant exactly when ss shows a timewait "
             "socket" % name, k["line"])
        if k["timewait"]:
            continue  # ss prints no counters for a timewait socket: nothing to compare
        t.eq((r["tx_bytes"], r["rx_bytes"], r["segs_in"], r["segs_out"], r["retrans"]),
             (k["bytes_acked"], k["bytes_received"], k["segs_in"], k["segs_out"],
              k["retrans"]),
             "%s: tx/rx bytes, segs in/out, retrans as ss" % name, k["line"])
        t.eq(rtt_as_ss(r["rtt_us"]), k["rtt_ms"], "%s: rtt as ss (rtt_us %d)"
             % (name, r["rtt_us"]), k["line"])


def peer_of(kern, sport, dport):
    """The cookie of the socket sport -> dport in an ss view (for a socket
    no process holds: it has no fd to ask)."""
    for ck, k in kern.items():
        if k["sport"] == sport and k["dport"] == dport:
            return ck
    return None


def listed_at_once(where, d, port, want):
    """The daemon's first answer after "ready" lists every socket: seeding
    from sock_diag comes before it."""
    ids = {r["id"] for r in d.sessions("--port", str(port)) if r["state"] != "closed"}
    t.eq(sorted(want[ck] for ck in set(want) - ids), [],
         "%s: every socket listed in the first answer after ready" % where)


def wait_kernel(port, pred, what):
    """Wait until the ss view of `port` satisfies pred (the kernel's own
    timing: an ACK, a FIN, an orphan's state); raise if it never does."""
    if not t.wait_until(lambda: pred(ss(port)), 15, 0.05):
        raise RuntimeError("the kernel never got there: %s\n%s" % (
            what, "\n".join(k["line"] for k in ss(port).values())))


# ------------------------------------------------------------------ cases ----

def build_population(pool, tag):
    """Agents and connections on one listener: (port, {cookie: label}, the
    cookies to orphan, the agent holding them, (server, client)). The
    caller makes the orphans with orphan()."""
    srv = Agent("fid-srv-" + tag, pool)
    cli = Agent("fid-cli-" + tag, pool)
    orph = Agent("fid-orph-" + tag, pool)
    port = srv.do("listen", name="l")["port"]
    want = {}
    c, s = connect(srv, cli, port, "idle")
    want.update({c: "idle client", s: "idle server"})
    c, s = connect(srv, cli, port, "chat")
    want.update({c: "chatty client", s: "chatty server"})
    for i in range(3):
        cli.do("send", name="chat", n=1500 + 7 * i)
        srv.do("recv", name="chat", n=1500 + 7 * i)
        srv.do("send", name="chat", n=1100 + 5 * i)
        cli.do("recv", name="chat", n=1100 + 5 * i)
    c, s = connect(srv, cli, port, "half")
    want.update({c: "half-closed client (FIN_WAIT2)", s: "half-closed server (CLOSE_WAIT)"})
    cli.do("send", name="half", n=300)
    srv.do("recv", name="half", n=300)
    cli.do("shutdown", name="half")
    srv.do("eof", name="half")
    # to be orphaned: one with data the peer does not take (FIN_WAIT1), one
    # whose FIN the peer acks (a FIN_WAIT2 remnant)
    c1, s1 = connect(srv, orph, port, "fw1")
    orph.do("fill", name="fw1")
    c2, s2 = connect(srv, orph, port, "fw2")
    srv.do("send", name="fw2", n=700)
    orph.do("recv", name="fw2", n=700)
    orph.do("send", name="fw2", n=200)
    srv.do("recv", name="fw2", n=200)
    want.update({c1: "orphan (FIN_WAIT1, unsent data)", s1: "peer of the FIN_WAIT1 orphan",
                 c2: "orphan remnant (FIN_WAIT2)", s2: "peer of the remnant (CLOSE_WAIT)"})
    return port, want, (c1, c2), orph, (srv, cli)


def orphan(port, orph, orphans):
    """orph exits; wait until the kernel holds its sockets as orphans: the
    first in FIN_WAIT1 (data still queued), the second as a FIN_WAIT2
    timewait remnant."""
    orph.exit()
    fw1, fw2 = orphans
    wait_kernel(port, lambda k: fw1 in k and k[fw1]["state"] == "FIN_WAIT1" and
                fw2 in k and k[fw2]["state"] == "FIN_WAIT2" and k[fw2]["timewait"],
                "orphans in FIN_WAIT1 and a FIN_WAIT2 remnant")


def test_separate_processes():
    pool = []
    d = t.Daemon(trace=False)
    try:
        d.start()
        port, want, orphans, orph, (srv, cli) = build_population(pool, "a")
        # its connect()s named it (the daemon ran): the orphans' last owner,
        # once connbeat has it (the OPENs are read within a ring poll)
        last = {ck: (orph.pid, orph.comm) for ck in orphans}
        t.ok(t.wait_until(lambda: {r["id"]: (r["pid"], r["comm"]) for r in
                                   d.sessions("--port", str(port)) if r["id"] in last} == last,
                          10, 0.05),
             "separate processes: the owner of the sockets to be orphaned is known")
        orphan(port, orph, orphans)
        # one closed with unread data: a RST, and the kernel forgets both ends
        rst = Agent("fid-rst-a", pool)
        rc, rs = connect(srv, rst, port, "rst")
        srv.do("send", name="rst", n=500)
        wait_kernel(port, lambda k: rc in k and k[rc]["bytes_received"] == 500, "data queued")
        rst.exit()
        wait_kernel(port, lambda k: rc not in k and rs not in k, "the reset pair gone")
        # one still in the accept queue: no process holds it yet
        pend = cli.do("connect", name="pend", port=port)
        k0 = ss(port)
        pend_srv = peer_of(k0, port, pend["sport"])
        t.ok(pend_srv is not None, "separate processes: the queued connection is in ss")
        want.update({pend["cookie"]: "client of a queued connection",
                     pend_srv: "queued, not accepted (no owner)"})

        kern, rows = snapshot(d, port, want)
        lbl = {v: k for k, v in want.items()}
        k_of = lambda label: kern.get(lbl[label], {})  # noqa: E731
        t.eq([(k_of(x).get("state"), k_of(x).get("pid") is None) for x in
              ("half-closed client (FIN_WAIT2)", "half-closed server (CLOSE_WAIT)",
               "orphan (FIN_WAIT1, unsent data)", "orphan remnant (FIN_WAIT2)",
               "queued, not accepted (no owner)", "idle server")],
             [("FIN_WAIT2", False), ("CLOSE_WAIT", False), ("FIN_WAIT1", True),
              ("FIN_WAIT2", True), ("ESTABLISHED", True), ("ESTABLISHED", False)],
             "separate processes: the kernel is where the case wants it (state, no owner)")
        t.eq({k_of(x).get("comm") for x in ("idle server", "idle client")},
             {"fid-srv-a", "fid-cli-a"}, "separate processes: ss sees two processes")
        agree("separate processes", kern, rows, want, last)
        for ck, name in ((rc, "client"), (rs, "server")):
            r = rows.get(ck)
            t.ok(r is None or (r["state"], r["tcp_state"]) == ("closed", "CLOSE"),
                 "separate processes: reset %s (gone from ss): closed or gone in connbeat"
                 % name, r)
    finally:
        kill_all(pool)
        d.cleanup()


def test_older_than_daemon():
    pool = []
    d = t.Daemon(trace=False)
    try:
        port, want, orphans, orph, _ = build_population(pool, "b")
        orphan(port, orph, orphans)
        d.start()
        listed_at_once("older than the daemon", d, port, want)
        kern, rows = snapshot(d, port, want)
        agree("older than the daemon", kern, rows, want)
        t.eq({ck: rows[ck]["first_seen"] for ck in want if ck in rows},
             {ck: "before connbeat" for ck in want},
             "older than the daemon: every row says first_seen \"before connbeat\"")
    finally:
        kill_all(pool)
        d.cleanup()


def test_kill9_restart():
    pool = []
    pin = t.unique_pin_dir()
    d1 = t.Daemon(trace=False, pin_dir=pin)
    d2 = None
    try:
        d1.start()
        srv = Agent("fid-srv-c", pool)
        cli = Agent("fid-cli-c", pool)
        port = srv.do("listen", name="l")["port"]
        want = {}
        for name in ("idle", "busy", "half"):
            c, s = connect(srv, cli, port, name)
            want.update({c: name + " client", s: name + " server"})
        cli.do("send", name="busy", n=2000)
        srv.do("recv", name="busy", n=2000)
        kern, rows = snapshot(d1, port, want)
        agree("before kill -9", kern, rows, want)
        d1.proc.send_signal(signal.SIGKILL)
        t.eq(d1.proc.wait(10), -signal.SIGKILL, "kill -9: the daemon is gone")
        # while no daemon runs: data both ways, a half-close, a new
        # connection with data, an orphan
        cli.do("send", name="busy", n=3333)
        srv.do("recv", name="busy", n=3333)
        srv.do("send", name="busy", n=4444)
        cli.do("recv", name="busy", n=4444)
        cli.do("send", name="half", n=120)
        srv.do("recv", name="half", n=120)
        cli.do("shutdown", name="half")
        srv.do("eof", name="half")
        c, s = connect(srv, cli, port, "late")
        want.update({c: "opened while down, client", s: "opened while down, server"})
        srv.do("send", name="late", n=999)
        cli.do("recv", name="late", n=999)
        orph = Agent("fid-orph-c", pool)
        c, s = connect(srv, orph, port, "fw1")
        orph.do("fill", name="fw1")
        want.update({c: "orphaned while down (FIN_WAIT1)", s: "peer of that orphan"})
        orph.exit()
        wait_kernel(port, lambda k: c in k and k[c]["pid"] is None, "an orphan")
        d2 = t.Daemon(trace=False, pin_dir=pin)
        d2.start()
        listed_at_once("after kill -9 and restart", d2, port, want)
        kern, rows = snapshot(d2, port, want)
        agree("after kill -9 and restart", kern, rows, want)
    finally:
        kill_all(pool)
        if d2:
            d2.cleanup()
        d1.cleanup()
        t.remove_pin_dir(pin)


SORT_KEYS = {  # --sort KEY: the JSON field, and whether it is exact (not a rounded time)
    "idle": ("idle_ms", False), "age": ("age_ms", False), "tx": ("tx_bytes", True),
    "rx": ("rx_bytes", True), "retrans": ("retrans", True), "rtt": ("rtt_us", True)}


def check_top(d, port, key, n, want, ss_field=None):
    """`list --port P --sort KEY --limit N` against the full list of the
    same instant and, for a kernel counter (ss_field), against ss."""
    field, exact = SORT_KEYS[key]
    got = {}

    def attempt():
        # top N and the full list, between two ss reads that agree
        before = ss(port)
        got["top"] = d.cli_json("list", "--port", str(port), "--sort", key, "--limit", str(n))
        got["all"] = d.sessions("--port", str(port))
        got["kern"] = after = ss(port)
        return all(kernel_key(before.get(ck)) == kernel_key(after.get(ck)) for ck in want)

    t.wait_until(attempt, 20, 0.05)
    top, full, kern = got["top"], {r["id"]: r for r in got["all"]}, got["kern"]
    name = "list --port --sort %s --limit %d" % (key, n)
    ids = [r["id"] for r in top]
    vals = [r[field] for r in top]
    t.eq(len(top), min(n, len(full)), "%s: N rows" % name, top)
    if exact:
        # largest first, ties by cookie; the same N the full list gives
        t.eq(ids, [r["id"] for r in sorted(top, key=lambda r: (-r[field], r["id"]))],
             "%s: in order (largest first, ties by id)" % name, vals)
        t.eq(ids, [r["id"] for r in sorted(full.values(),
                                           key=lambda r: (-r[field], r["id"]))][:n],
             "%s: the top N of the full list" % name,
             {i: r[field] for i, r in full.items()})
    else:
        # milliseconds of a clock that runs on between the two queries: the
        # order is of first_seen / last data, so within one answer it is
        # monotonic; two rows of the same millisecond may come either way
        t.ok(all(a >= b for a, b in zip(vals, vals[1:])), "%s: in order" % name, vals)
        rest = [r[field] for i, r in full.items() if i not in ids]
        mine = [full[i][field] for i in ids if i in full]
        t.ok(len(mine) == len(ids) and (not rest or min(mine) >= max(rest)),
             "%s: no row left out is above one taken (in the full list)" % name,
             {i: r[field] for i, r in full.items()}, ids)
    if ss_field:
        # against the kernel itself
        t.eq(ids, sorted((ck for ck in want if ck in kern),
                         key=lambda ck: (-kern[ck][ss_field], ck))[:n],
             "%s: the top N by ss %s" % (name, ss_field),
             {ck: kern[ck][ss_field] for ck in want if ck in kern})
        t.eq(vals, [kern[i][ss_field] if i in kern else None for i in ids],
             "%s: values as ss %s" % (name, ss_field))


def test_sort_limit():
    pool = []
    d = t.Daemon(trace=False)
    try:
        d.start()
        srv = Agent("fid-srv-d", pool)
        cli = Agent("fid-cli-d", pool)
        port = srv.do("listen", name="l")["port"]
        want = {}
        names = ["k%d" % i for i in range(5)]
        for i, name in enumerate(names):
            c, s = connect(srv, cli, port, name)
            want.update({c: name + " client", s: name + " server"})
            # each its own amount, the orders of tx and rx differing
            cli.do("send", name=name, n=1000 * (i + 1) + 3 * i)
            srv.do("recv", name=name, n=1000 * (i + 1) + 3 * i)
            srv.do("send", name=name, n=900 * ((i * 3) % 5 + 1))
            cli.do("recv", name=name, n=900 * ((i * 3) % 5 + 1))
        # last data in another order than the opens: idle differs from age
        for name in ("k2", "k0", "k4"):
            cli.do("send", name=name, n=10)
            srv.do("recv", name=name, n=10)
        # retransmits that are not all 0: filling a receive queue nobody
        # reads makes loopback drop a segment and retransmit it
        c, s = connect(srv, cli, port, "full")
        want.update({c: "full client", s: "full server"})
        cli.do("fill", name="full")
        if not t.wait_until(lambda: ss(port).get(c, {}).get("retrans", 0) >= 1, 5, 0.05):
            t.skip("--sort retrans over values that are not all 0",
                   "this kernel retransmitted nothing on a full receive queue")
        snapshot(d, port, want)  # every socket listed, the kernel at rest
        for key in SORT_KEYS:
            for n in (1, 3):
                check_top(d, port, key, n, want,
                          {"tx": "bytes_acked", "rx": "bytes_received",
                           "retrans": "retrans"}.get(key))
        # bad values are named
        for args, bad in ((["list", "--sort", "speed"], "speed"),
                          (["stale", "--sort", "7", "--limit", "1"], "'7'"),
                          (["summary", "--by", "planet"], "planet")):
            p = d.cli(*args)
            t.ok(p.returncode == 2 and bad in p.stderr, "connbeat %s: exit 2 naming %s"
                 % (" ".join(args), bad), p.returncode, p.stderr)
    finally:
        kill_all(pool)
        d.cleanup()


def recount(rows, by):
    """summary --by port|comm, recomputed from list rows: {group: (sessions,
    states, tcp_states)}. `port` groups the listening side of a service by
    its local port: here the accepted sockets, whose sport is the
    listener's."""
    out = {}
    for r in rows:
        g = r["comm"] if by == "comm" else r["sport"]
        n, st, tst = out.get(g, (0, {}, {}))
        st = dict(st, **{r["state"]: st.get(r["state"], 0) + 1})
        tst = dict(tst, **{r["tcp_state"]: tst.get(r["tcp_state"], 0) + 1})
        out[g] = (n + 1, st, tst)
    return out


def summary_groups(d, by, port):
    out = {}
    for g in d.cli_json("summary", "--by", by, "--port", str(port)):
        out[g[by]] = (g["sessions"], {k: v for k, v in g["states"].items() if v},
                      g["tcp_states"])
    return out


def test_summary():
    pool = []
    d = t.Daemon(trace=False)
    try:
        d.start()
        srv = Agent("fid-srv-e", pool)
        cli = Agent("fid-cli-e", pool)
        cli2 = Agent("fid-cli2-e", pool)
        port = srv.do("listen", name="l")["port"]
        want = {}
        for name, who in (("a", cli), ("b", cli), ("c", cli2), ("h", cli2), ("z", cli)):
            c, s = connect(srv, who, port, name)
            want.update({c: name + " client", s: name + " server"})
        cli2.do("shutdown", name="h")
        srv.do("eof", name="h")
        # one closed by both ends: CLOSED sessions are counted too
        cli.do("close", name="z")
        srv.do("close", name="z")
        closed = {ck for ck, lbl in want.items() if lbl.startswith("z ")}
        for ck in closed:
            del want[ck]
        kern, rows = snapshot(d, port, want)
        agree("summary population", kern, rows, want)
        for by in ("port", "comm"):
            got = {}

            def same():
                got["list"] = d.sessions("--port", str(port))
                got["sum"] = summary_groups(d, by, port)
                rc = recount(got["list"] if by == "comm" else
                             [r for r in got["list"] if r["sport"] == port], by)
                got["recount"] = rc
                return got["sum"] == rc

            # the summary counts the map, the list reads the kernel: the
            # map catches up with the records (one ingest poll)
            t.wait_until(same, 10, 0.05)
            t.eq(got["sum"], got["recount"], "summary --by %s --port: counts = recount of "
                 "list --json --port" % by, got["list"])
            # and the list it is recounted from is the kernel's
            open_rows = [r for r in got["list"] if r["state"] != "closed"]
            t.eq(sorted((r["id"], r["tcp_state"], r["comm"]) for r in open_rows),
                 sorted((ck, kern[ck]["state"], kern[ck]["comm"]) for ck in want if ck in kern),
                 "summary --by %s: the open rows recounted are ss's sockets" % by)
            t.ok(closed <= {r["id"] for r in got["list"] if r["state"] == "closed"},
                 "summary --by %s: the closed pair is in the recount, closed" % by)
    finally:
        kill_all(pool)
        d.cleanup()


t.skip_all_if_no_bpf()
t.run(test_separate_processes, test_older_than_daemon, test_kill9_restart, test_sort_limit,
      test_summary)
t.done()
