#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Network namespaces end to end (design.md §3 "Namespaces", §7 faults):
real namespaces (`ip netns add`, and `unshare --net` for an unnamed one,
as a container's), real loopback traffic inside them, the real programs
and daemon, every answer compared per cookie with `ss` run inside the
namespace. Connections opened before and after the daemon; `--netns` by
name, inode and path; the same 5-tuple in several namespaces; kill -9 and
restart; a lost burst repaired inside a namespace; a namespace deleted
under the daemon (with and without lost records); a FIN_WAIT2 remnant
under a short tcp_fin_timeout; a netns born after the last discovery
(listed and killable before any pass, and a SIGHUP that shortens the
interval); a netns that lived and died between two discoveries with its
closes lost.

Inside each namespace an agent (python3 under `ip netns exec`, driven by
JSON lines on its stdin) listens, connects, moves bytes and closes on
request, and says which socket cookies it made. Each namespace is private,
so fixed ports are safe there and everything in its `ss` is the test's."""
import atexit
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

FAST = ["--tick", "100ms", "--reconcile-interval", "1s"]
WAIT = 30  # generous bound (s) for anything the daemon converges to
OPEN = ("active", "stale", "draining")

AGENT = r'''
import json, os, socket, struct, sys
def ck(s):
    return struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 57, 8))[0]
lst, socks = {}, {}
def pair(port, cport=0, nbytes=100):
    c = socket.socket()
    c.settimeout(10)
    if cport:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.bind(("127.0.0.1", cport))
    c.connect(("127.0.0.1", port))
    a, _ = lst[port].accept()
    a.settimeout(10)
    if nbytes:
        c.sendall(b"q" * nbytes)
        got = 0
        while got < nbytes:
            got += len(a.recv(nbytes - got))
    socks[ck(c)] = c
    socks[ck(a)] = a
    return [ck(c), ck(a)]
def do(m):
    op = m["op"]
    if op == "pid":
        return {"pid": os.getpid()}
    if op == "listen":
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", m.get("port", 0)))
        s.listen(1024)
        s.settimeout(10)
        p = s.getsockname()[1]
        lst[p] = s
        return {"port": p}
    if op == "open":
        return {"pairs": [pair(m["port"], m.get("cport", 0), m.get("bytes", 100))
                          for _ in range(m.get("n", 1))]}
    if op == "send":
        src, dst, n = socks[m["from"]], socks[m["to"]], m["n"]
        src.sendall(b"d" * n)
        got = 0
        while got < n:
            got += len(dst.recv(min(65536, n - got)))
        return {"sent": n}
    if op == "close":
        for c in m["cookies"]:
            socks.pop(c).close()
        return {"closed": len(m["cookies"])}
    if op == "burst":
        kept, gone = [], []
        for i in range(m["n"]):
            pr = pair(m["port"], 0, 0)
            if i % m["keep_every"] == 0:
                kept += pr
            else:
                for c in pr:
                    socks.pop(c).close()
                gone += pr
        return {"kept": kept, "gone": gone}
    raise ValueError("unknown op %r" % op)
for line in sys.stdin:
    try:
        r = do(json.loads(line))
    except Exception as e:
        r = {"error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(r) + "\n")
    sys.stdout.flush()
'''


class Agent:
    """python3 running AGENT inside a netns."""

    def __init__(self, ns, argv=None):
        self.ns = ns
        argv = argv or ["ip", "netns", "exec", ns.name, "python3", "-c", AGENT]
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.buf = b""
        self.pid = self.cmd("pid")["pid"]

    def cmd(self, op, timeout=60, **kw):
        """One request, one reply (raises on an error reply or a timeout)."""
        kw["op"] = op
        self.p.stdin.write((json.dumps(kw) + "\n").encode())
        self.p.stdin.flush()
        end = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError("agent in %s: no reply to %r" % (self.ns.label, kw))
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("agent in %s exited (%r)" % (self.ns.label, self.p.poll()))
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        r = json.loads(line)
        if "error" in r:
            raise RuntimeError("agent in %s: %r: %s" % (self.ns.label, kw, r["error"]))
        return r

    def listen(self, port=0):
        return self.cmd("listen", port=port)["port"]

    def open(self, port, n=1, **kw):
        """n connected pairs to its listener on port: [[client, server], ...]"""
        return self.cmd("open", port=port, n=n, **kw)["pairs"]

    def close(self, cookies):
        self.cmd("close", cookies=list(cookies))

    def stop(self):
        """End it (its sockets close with it); idempotent."""
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait(10)


_live_ns = []


class Netns:
    """A named netns cbt-<pid>-<tag> with lo up; .inode; .path; .sel is
    what --netns takes for it, .label what messages call it."""

    def __init__(self, tag):
        self.name = self.sel = self.label = "cbt-%d-%s" % (os.getpid(), tag)
        self.path = "/run/netns/" + self.name
        self.agents = []
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        _live_ns.append(self)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        out = subprocess.run(["stat", "-L", "-c", "%i", self.path], check=True,
                             capture_output=True, text=True).stdout
        self.inode = int(out)

    def agent(self):
        a = Agent(self)
        self.agents.append(a)
        return a

    def sysctl(self, kv):
        subprocess.run(["ip", "netns", "exec", self.name, "sysctl", "-q", "-w", kv], check=True)

    def ss(self):
        """{cookie: ss record} of the sockets connbeat must list as open here."""
        return {c: r for c, r in t.ss_socks(None, netns=self.name).items()
                if r["state"] not in t.NOT_SESSIONS}

    def delete(self):
        """Its processes first, then the name: nothing keeps it alive."""
        for a in self.agents:
            a.stop()
        if self in _live_ns:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            _live_ns.remove(self)


class Unnamed:
    """A netns with no name, as a container's: made by `unshare --net` for
    its one agent, reachable only through that process, gone with it."""

    def __init__(self, tag):
        self.name = None
        self.label = "unnamed-%s" % tag
        a = Agent(self, ["unshare", "--net", "sh", "-c",
                         'ip link set lo up && exec python3 -c "$1"', "sh", AGENT])
        self.agents = [a]
        _live_ns.append(self)
        self.sel = self.path = "/proc/%d/ns/net" % a.pid
        self.inode = os.stat(self.path).st_ino

    def agent(self):
        return self.agents[0]

    def ss(self):
        """{cookie: ss record} of its sessions: ss run in it with nsenter."""
        p = subprocess.run(["nsenter", "--net=" + self.path, "ss", "-Htanie", "state", "all"],
                           capture_output=True, text=True, check=True)
        out = {}
        for line in p.stdout.replace("\n\t", " ").splitlines():
            f = line.split()
            m = re.search(r"\bsk:([0-9a-f]+)", line)
            state = t.SS_STATE.get(f[0], f[0]) if f else None
            if len(f) < 5 or not m or state in t.NOT_SESSIONS:
                continue
            src, sport = t.split_addrport(f[3])
            dst, dport = t.split_addrport(f[4])
            out[int(m.group(1), 16)] = {"state": state, "src": src, "sport": sport,
                                        "dst": dst, "dport": dport, "line": line}
        return out

    def delete(self):
        self.agents[0].stop()
        if self in _live_ns:
            _live_ns.remove(self)


def delete_all():
    for ns in list(_live_ns):
        ns.delete()


atexit.register(delete_all)


def by_id(rows):
    return {r["id"]: r for r in rows}


def disagreements(d, ns):
    """Compare `connbeat list --netns NS` with ss inside ns, per cookie:
    (ss sessions, rows, [what is wrong])."""
    rows = by_id(d.sessions("--netns", ns.sel))
    ss = ns.ss()
    bad = []
    for c, s in sorted(ss.items()):
        r = rows.get(c)
        if r is None:
            bad.append("%s: cookie %d (%s %s:%d > %s:%d) not listed" % (
                ns.label, c, s["state"], s["src"], s["sport"], s["dst"], s["dport"]))
            continue
        if r["state"] not in OPEN or r["tcp_state"] != s["state"]:
            bad.append("%s: cookie %d is %s/%s, ss says %s" % (ns.label, c, r["state"],
                                                              r["tcp_state"], s["state"]))
        if (r["src"], r["sport"], r["dst"], r["dport"]) != \
                (s["src"], s["sport"], s["dst"], s["dport"]):
            bad.append("%s: cookie %d tuple %r, ss %r" % (ns.label, c, r, s["line"]))
        if r["netns"] != ns.inode or r.get("netns_name") != ns.name:
            bad.append("%s: cookie %d has netns %r (%r), want %d (%s)" % (
                ns.label, c, r["netns"], r.get("netns_name"), ns.inode, ns.name))
    for c, r in sorted(rows.items()):
        if r["state"] in OPEN and c not in ss:
            bad.append("%s: cookie %d listed %s/%s, ss has no such session" % (
                ns.label, c, r["state"], r["tcp_state"]))
        if r["netns"] != ns.inode:
            bad.append("%s: --netns returned cookie %d of netns %r" % (ns.label, c, r["netns"]))
    return ss, rows, bad


def wait_agree(d, ns, name, timeout=WAIT):
    """Wait until the daemon's rows of ns are ss's, per cookie; report."""
    last = {}

    def check():
        last["ss"], last["rows"], last["bad"] = disagreements(d, ns)
        return not last["bad"]

    t.ok(t.wait_until(check, timeout, 0.2), name, *last["bad"][:20])
    return last["ss"], last["rows"]


def passes(d):
    st = d.stats()
    return int(st.get("connbeat_reconcile_passes_total", 0)) + \
        int(st.get("connbeat_reconcile_failures_total", 0))


def still_agrees(d, nss, name, n=2):
    """After n more reconcile passes, each netns still agrees with ss: a
    repair that converged only for a moment (closing live sessions that
    something else then brings back) is not convergence."""
    p0 = passes(d)
    t.wait_until(lambda: passes(d) >= p0 + n, WAIT, 0.1)
    bad = [b for ns in nss for b in disagreements(d, ns)[2]]
    return t.ok(passes(d) >= p0 + n and not bad, name, *bad[:20])


def map_open(d, *filters):
    """Open sessions the daemon's map holds (summary walks the map itself;
    a list refreshes its rows from the kernel, a summary does not)."""
    return sum(g["states"][s] for g in d.cli_json("summary", "--by", "cgroup", *filters)
               for s in OPEN)


def wait_map_open(d, want, name, *filters):
    got = []

    def check():
        got[:] = [map_open(d, *filters)]
        return got[0] == want

    return t.ok(t.wait_until(check, WAIT, 0.2), name, "map: %r, want %d" % (got, want))


def reachable_netns():
    """The inodes of every netns a process is in or /run/netns names."""
    nsfs = os.stat("/proc/self/ns/net").st_dev
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                found.add(os.stat("/proc/%s/ns/net" % pid).st_ino)
            except OSError:
                pass
    if os.path.isdir("/run/netns"):
        for name in os.listdir("/run/netns"):
            try:
                st = os.stat("/run/netns/" + name)
            except OSError:
                continue
            if st.st_dev == nsfs:
                found.add(st.st_ino)
    return found


def netns_gauge(d):
    return int(d.stats().get("connbeat_netns", -1))


def wait_gauge(d, name, present=(), absent=()):
    """Wait until connbeat_netns is the count of netns reachable now (and
    the inodes in present are among them, those in absent are not)."""
    seen = []

    def check():
        want = reachable_netns()
        g = netns_gauge(d)
        seen[:] = [g, len(want)]
        return g == len(want) and set(present) <= want and not set(absent) & want

    return t.ok(t.wait_until(check, WAIT, 0.2), name, "gauge, reachable: %r" % seen)


def stat_of(d, name):
    return int(d.stats().get(name, 0))


def lost_by_netns(pin_dir):
    """{netns inode: lifecycle records lost} from the pinned `lost` map."""
    out = {}
    for e in t.map_dump(pin_dir + "/lost"):
        f = e.get("formatted", e)
        out[int(f["key"])] = int(f["value"])
    return out


# ------------------------------------------------------------------ 1 ----

def test_two_netns_before_and_after():
    """Two named namespaces and an unnamed one (a container's, reachable
    only through its process): connections opened before the daemon
    (seeded from each netns's sock_diag) and after it (from the rings)."""
    a, b, u = Netns("a"), Netns("b"), Unnamed("c")
    nss = (a, b, u)
    try:
        ags = {ns.label: ns.agent() for ns in nss}
        ports = {ns.label: ags[ns.label].listen(24100 + i) for i, ns in enumerate(nss)}
        before = {ns.label: ags[ns.label].open(ports[ns.label], 3) for ns in nss}
        with t.Daemon(*FAST, trace=False) as d:
            after = {ns.label: ags[ns.label].open(ports[ns.label], 2) for ns in nss}
            # one connection of each namespace opened before and closed after
            for ns in nss:
                ags[ns.label].close(before[ns.label][0])
            for ns in nss:
                held = {c for pr in before[ns.label][1:] + after[ns.label] for c in pr}
                gone = set(before[ns.label][0])
                ss, rows = wait_agree(d, ns, "%s: every session listed, as ss has it, with "
                                      "its netns inode and name" % ns.label)
                t.eq(set(ss), held, "%s: ss has exactly the %d sockets held there"
                     % (ns.label, len(held)))
                t.ok(all(rows[c]["first_seen"] == "before connbeat"
                         for pr in before[ns.label][1:] for c in pr if c in rows),
                     "%s: the ones opened before the daemon are seeded" % ns.label)
                t.ok(all(rows[c]["first_seen"] == "observed"
                         for pr in after[ns.label] for c in pr if c in rows),
                     "%s: the ones opened after it are observed" % ns.label)
                t.ok(all(rows.get(c, {"state": "closed"})["state"] == "closed" for c in gone),
                     "%s: the one closed after the start is not open" % ns.label,
                     [rows.get(c) for c in gone])
                wait_map_open(d, len(held), "%s: the map itself holds them open, no more"
                              % ns.label, "--netns", ns.sel)
            still_agrees(d, nss, "all three stay so over the next reconcile passes")

            # --netns by name, inode and path select the same sessions
            for ns in nss:
                want = set(ns.ss())
                forms = [("inode", str(ns.inode)),
                         ("/proc/PID/ns/net", "/proc/%d/ns/net" % ags[ns.label].pid)]
                if ns.name:
                    forms += [("name", ns.name), ("path", ns.path)]
                for label, arg in forms:
                    rows = d.sessions("--netns", arg)
                    ids = {r["id"] for r in rows if r["state"] in OPEN}
                    t.ok(ids == want and all(r["netns"] == ns.inode for r in rows),
                         "%s: --netns by %s (%s) selects its sessions and only those"
                         % (ns.label, label, arg), "got %r" % sorted(ids),
                         "want %r" % sorted(want))
            allss = [set(ns.ss()) for ns in nss]
            t.ok(all(x and not x & y for x in allss for y in allss if x is not y),
                 "each namespace has sessions of its own")
            allrows = by_id(d.sessions())
            t.ok(set().union(*allss) <= {c for c, r in allrows.items() if r["state"] in OPEN},
                 "an unfiltered list has every namespace's sessions")

            bad = ["cbt-%d-nosuch" % os.getpid(), "/run/netns/cbt-%d-nosuch" % os.getpid(),
                   "4294967296", "12abc!", "/etc/hostname", ".."]
            for arg in bad:
                p = d.cli("list", "--netns", arg)
                t.ok(p.returncode == 2 and "'%s'" % arg in p.stderr,
                     "--netns %r: exit 2 with a message naming it" % arg,
                     "exit %d: %s" % (p.returncode, p.stderr.strip()))
    finally:
        for ns in nss:
            ns.delete()


# ------------------------------------------------------------------ 2 ----

def root_pair(lst, cport):
    """127.0.0.1:cport > lst, in the test's own (the daemon's) netns."""
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.settimeout(10)
    c.bind(("127.0.0.1", cport))
    c.connect(lst.getsockname())
    s, _ = lst.accept()
    return c, s


def test_same_tuple_two_netns():
    """127.0.0.1:24202 > 127.0.0.1:24201 and 127.0.0.1:24203 > 127.0.0.1:24201
    in two namespaces, and in the daemon's own too when those ports are
    free here: one session per socket, each the kernel's of its own netns."""
    a, b = Netns("ta"), Netns("tb")
    self_ns = os.stat("/proc/self/ns/net").st_ino
    lst, root = None, []
    try:
        ags = {a.name: a.agent(), b.name: b.agent()}
        pairs = {}
        for ns in (a, b):
            ags[ns.name].listen(24201)
            pairs[ns.name] = ags[ns.name].open(24201, 1, cport=24202)
        try:
            lst = socket.socket()
            lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lst.bind(("127.0.0.1", 24201))
            lst.listen(8)
            lst.settimeout(10)
            root.append(root_pair(lst, 24202))
        except OSError as e:
            t.skip("the same tuple in the daemon's own netns", "port in use here: %s" % e)
            root = None
        with t.Daemon(*FAST, trace=False) as d:
            for ns in (a, b):
                # and one more after the start
                pairs[ns.name] += ags[ns.name].open(24201, 1, cport=24203)
            if root is not None:
                root.append(root_pair(lst, 24203))
            # different byte counts on the same tuple: rows must not mix them up
            for i, ns in enumerate((a, b)):
                for c, s in pairs[ns.name]:
                    ags[ns.name].cmd("send", **{"from": c, "to": s, "n": 1000 * (i + 1)})
            for c, s in root or []:
                t.send_bytes(c, 3000)
                t.recv_bytes(s, 3000)
            for ns in (a, b):
                ss, rows = wait_agree(d, ns, "%s: its sessions are ss's, per cookie" % ns.name)
                t.eq(len(ss), 4, "%s: ss has the 2 pairs" % ns.name)
                for c, s in ss.items():
                    r = rows.get(c, {})
                    t.ok((r.get("tx_bytes"), r.get("rx_bytes")) ==
                         (s["bytes_acked"], s["bytes_received"]),
                         "%s: cookie %d: tx/rx are its own netns's (%r/%r)"
                         % (ns.name, c, s["bytes_acked"], s["bytes_received"]),
                         "row: %r" % r, "ss: %s" % s["line"])
            inodes = [a.inode, b.inode] + ([self_ns] if root is not None else [])
            want = {c for ns in (a, b) for pr in pairs[ns.name] for c in pr} | \
                {t.cookie(x) for pr in root or [] for x in pr}
            rows = []

            def listed():
                rows[:] = [r for r in d.sessions("--port", "24201") if r["state"] in OPEN and
                           r["id"] in want]
                return len(rows) == len(want)

            t.ok(t.wait_until(listed, WAIT, 0.2), "%d sessions for the same 2 connections in "
                 "%d namespaces, one per socket" % (len(want), len(inodes)),
                 "got %r" % sorted(r["id"] for r in rows), "want %r" % sorted(want))
            tuples = {}
            for r in rows:
                tuples.setdefault((r["src"], r["sport"], r["dst"], r["dport"]), []).append(r)
            t.ok(len(tuples) == 4 and all(sorted(x["netns"] for x in v) == sorted(inodes)
                                          for v in tuples.values()),
                 "each 5-tuple (2 connections, both ends) is one session per netns",
                 {k: [(x["id"], x["netns"]) for x in v] for k, v in tuples.items()})
            if root is not None:
                ss = t.ss_socks([24201])
                byid = by_id(rows)
                for c in {t.cookie(x) for pr in root for x in pr}:
                    r, s = byid.get(c, {}), ss.get(c, {})
                    t.ok((r.get("netns"), r.get("tcp_state"), r.get("tx_bytes"),
                          r.get("rx_bytes")) ==
                         (self_ns, s.get("state"), s.get("bytes_acked"), s.get("bytes_received")),
                         "daemon's netns: cookie %d is ss's (%r/%r)"
                         % (c, s.get("bytes_acked"), s.get("bytes_received")),
                         "row: %r" % r, "ss: %s" % s.get("line"))
    finally:
        for pr in root or []:
            for x in pr:
                x.close()
        if lst:
            lst.close()
        a.delete()
        b.delete()


# ------------------------------------------------------------------ 3 ----

def test_kill9_restart_netns():
    a, b, u = Netns("ka"), Netns("kb"), Unnamed("kc")
    nss = (a, b, u)
    pin = t.unique_pin_dir()
    sock = "/run/connbeat-test/netns-restart-%d.sock" % os.getpid()
    d1 = d2 = None
    try:
        ags = {ns.label: ns.agent() for ns in nss}
        held = {}
        for ns in nss:
            ags[ns.label].listen(24301)
            held[ns.label] = ags[ns.label].open(24301, 4)
        d1 = t.Daemon(*FAST, trace=False, pin_dir=pin, socket_path=sock)
        d1.start()
        for ns in nss:
            held[ns.label] += ags[ns.label].open(24301, 2)
            wait_agree(d1, ns, "%s: the first daemon lists its sessions" % ns.label)
        d1.proc.send_signal(signal.SIGKILL)
        t.eq(d1.proc.wait(10), -signal.SIGKILL, "first daemon killed with SIGKILL")
        closed, opened = {}, {}
        for ns in nss:
            ag = ags[ns.label]
            # while it is down: some close, some open, some open and close
            closed[ns.label] = [c for pr in held[ns.label][:3] for c in pr]
            ag.close(closed[ns.label])
            opened[ns.label] = ag.open(24301, 3)
            ag.cmd("burst", port=24301, n=10, keep_every=100)  # 1 kept, 9 come and go
        d2 = t.Daemon(*FAST, trace=False, pin_dir=pin, socket_path=sock)
        d2.start()
        for ns in nss:
            ss, rows = wait_agree(d2, ns, "%s: after kill -9 and restart, its open sessions "
                                  "are exactly ss's, per cookie" % ns.label)
            now_open = {c for pr in opened[ns.label] for c in pr}
            t.ok(now_open <= set(ss) and not set(closed[ns.label]) & set(ss),
                 "%s: ss has the ones opened while it was down, not the ones closed"
                 % ns.label)
            t.ok(all(rows.get(c, {"state": "closed"})["state"] == "closed"
                     for c in closed[ns.label]),
                 "%s: the ones closed while it was down are not open" % ns.label)
            wait_map_open(d2, len(ss), "%s: the map holds exactly those open" % ns.label,
                          "--netns", ns.sel)
        still_agrees(d2, nss, "all three stay so over the next reconcile passes")
    finally:
        for d in (d2, d1):
            if d:
                d.cleanup()
        t.remove_pin_dir(pin)
        for ns in nss:
            ns.delete()


# ------------------------------------------------------------------ 4 ----

def test_lost_burst_repaired_in_netns():
    n = Netns("lost")
    try:
        ag = n.agent()
        port = ag.listen(24401)
        # --verbose: the repair's whole-netns dump logs what it added
        with t.Daemon("--events-ring-size", "4096", "--beats-ring-size", "4096", "--verbose",
                      *FAST, trace=False) as d:
            early = ag.open(port, 10)
            wait_agree(d, n, "the connections opened before the burst are listed")
            repairs0 = stat_of(d, "connbeat_reconcile_repairs_total")
            d.send_signal(signal.SIGSTOP)
            try:
                # ~26 records fit in 4 KiB; each connection makes 8+
                burst = ag.cmd("burst", port=port, n=300, keep_every=2)
                ag.close([c for pr in early for c in pr])  # closes nobody will hear of
                st = t.stats(d.pin_dir)
                lost = lost_by_netns(d.pin_dir)
                mark = len(d.stderr_text().splitlines())
            finally:
                d.send_signal(signal.SIGCONT)
            dropped = st[t.STAT_EVENTS_DROPPED]
            t.ok(dropped > 0, "the tiny events ring overflowed (%d records dropped)" % dropped)
            t.ok(lost.get(n.inode, 0) > 0, "the losses are counted under the netns's inode",
                 lost)
            ss, rows = wait_agree(d, n, "after the burst the daemon converges to ss's open "
                                  "set in the netns, per cookie")
            t.eq(set(ss), set(burst["kept"]), "ss has the %d sockets the burst kept"
                 % len(burst["kept"]))
            wait_map_open(d, len(ss), "and so does the map itself (missed closes repaired)",
                          "--netns", n.name)
            still_agrees(d, [n], "and it stays so over the next reconcile passes")
            added = re.compile(r"reconcile: netns %d: \d+ sockets, [1-9]\d* added" % n.inode)
            dumps = [l for l in d.stderr_text().splitlines()[mark:] if added.search(l)]
            t.ok(dumps, "the repair dumped that netns whole and added what was missing",
                 d.stderr_text()[-2000:])
            gone = set(burst["gone"]) | {c for pr in early for c in pr}
            t.eq([c for c in gone if rows.get(c, {"state": "closed"})["state"] != "closed"],
                 [], "no closed socket is listed open")
            st = d.stats()
            t.ok(stat_of(d, "connbeat_reconcile_repairs_total") > repairs0,
                 "the repair is counted in connbeat_reconcile_repairs_total",
                 {k: v for k, v in st.items() if "reconcile" in k})
            t.ok(st.get('connbeat_reconcile_corrections_total{kind="missing_open"}', 0) > 0,
                 "the opens it added are counted as corrections")
            t.ok(st.get('connbeat_reconcile_corrections_total{kind="missed_close"}', 0) > 0,
                 "the closes it found are counted as corrections")
            t.ok(d.wait_stderr("network namespace %d lost" % n.inode, 5),
                 "the daemon logs which netns it repaired", d.stderr_text()[-1500:])
    finally:
        n.delete()


# ------------------------------------------------------------------ 5 ----

def test_netns_deleted_while_running():
    with t.Daemon(*FAST, trace=False) as d:
        n = Netns("del")
        try:
            ag = n.agent()
            port = ag.listen(24501)
            pairs = ag.open(port, 3)
            wait_gauge(d, "a new netns is counted in connbeat_netns", present=[n.inode])
            wait_agree(d, n, "its sessions are listed")
            ids = {c for pr in pairs for c in pr}
            n.delete()
        finally:
            n.delete()
        wait_gauge(d, "once it is deleted connbeat_netns goes back down", absent=[n.inode])
        rows = by_id(d.sessions())
        t.eq(sorted(c for c in ids if c in rows and rows[c]["state"] in OPEN), [],
             "its sessions are closed or not listed")
        wait_map_open(d, len(t.ss_session_ids([port])), "and the map holds none of them open",
                      "--port", str(port))
        p = d.cli("list", "--netns", str(n.inode))
        t.ok(p.returncode == 2 and str(n.inode) in p.stderr,
             "--netns with the inode of the deleted netns: exit 2 naming it", p.stderr)


def test_netns_deleted_with_lost_records():
    """The netns goes away while the daemon cannot read and its ring is
    full: its closes never arrive, and the repair cannot dump a netns
    that is gone. Forgetting the netns must close its sessions."""
    with t.Daemon("--events-ring-size", "4096", "--beats-ring-size", "4096", *FAST,
                  trace=False) as d:
        n = Netns("dlost")
        try:
            ag = n.agent()
            port = ag.listen(24601)
            pairs = ag.open(port, 10)
            wait_gauge(d, "lost: the new netns is counted", present=[n.inode])
            wait_agree(d, n, "lost: its sessions are listed")
            ids = {c for pr in pairs for c in pr}
            d.send_signal(signal.SIGSTOP)
            try:
                ag.cmd("burst", port=port, n=100, keep_every=1000)
                n.delete()  # every socket closes: those records are lost
                st = t.stats(d.pin_dir)
            finally:
                d.send_signal(signal.SIGCONT)
            t.ok(st[t.STAT_EVENTS_DROPPED] > 0, "lost: the ring overflowed (%d dropped)"
                 % st[t.STAT_EVENTS_DROPPED])
        finally:
            n.delete()
        wait_gauge(d, "lost: connbeat_netns goes back down", absent=[n.inode])
        wait_map_open(d, len(t.ss_session_ids([port])),
                      "lost: the map holds none of its sessions open", "--port", str(port))
        rows = by_id(d.sessions())
        t.eq(sorted(c for c in ids if c in rows and rows[c]["state"] in OPEN), [],
             "lost: its sessions are closed or not listed")
        t.ok(d.proc.poll() is None and d.cli("stats").returncode == 0,
             "lost: the daemon keeps running and serving")


# ------------------------------------------------------------------ 6 ----

def test_fin_wait2_remnant():
    n = Netns("fw2")
    try:
        n.sysctl("net.ipv4.tcp_fin_timeout=5")
        ag = n.agent()
        port = ag.listen(24701)
        with t.Daemon(*FAST, trace=False) as d:
            (cli, srv), = ag.open(port, 1)
            wait_agree(d, n, "the pair is listed")
            ag.close([cli])  # the closer; the server never closes (CLOSE_WAIT)
            seen = {}

            def remnant_listed():
                rows = by_id(d.sessions("--netns", n.name))
                ss = t.ss_socks(None, netns=n.name)
                seen.update(row=rows.get(cli), ss=ss.get(cli), srv=rows.get(srv),
                            ss_srv=ss.get(srv))
                r, s = seen["row"] or {}, seen["ss"] or {}
                return (r.get("state"), r.get("tcp_state"), r.get("remnant"),
                        s.get("state")) == ("draining", "FIN_WAIT2", True, "FIN_WAIT2")

            t.ok(t.wait_until(remnant_listed, WAIT, 0.05),
                 "while ss shows FIN-WAIT-2 for the closer's cookie, its row is DRAINING in "
                 "FIN_WAIT2 with remnant: true", "row: %r" % seen.get("row"),
                 "ss: %r" % (seen.get("ss") or {}).get("line"))
            r = seen.get("srv") or {}
            t.eq((r.get("state"), r.get("tcp_state"), (seen.get("ss_srv") or {}).get("state")),
                 ("draining", "CLOSE_WAIT", "CLOSE_WAIT"), "the peer is DRAINING in CLOSE_WAIT")
            t.eq(len([x for x in d.sessions("--netns", n.name) if x["id"] == cli]), 1,
                 "the remnant is one session")
            last = {}

            def remnant_gone():
                ss = t.ss_socks(None, netns=n.name)
                rows = by_id(d.sessions("--netns", n.name))
                last.update(ss=ss.get(cli), row=rows.get(cli))
                return cli not in ss and (cli not in rows or rows[cli]["state"] == "closed")

            t.ok(t.wait_until(remnant_gone, WAIT, 0.1),
                 "once the kernel drops the remnant, the session is closed",
                 "row: %r" % last.get("row"), "ss: %r" % last.get("ss"))
            wait_map_open(d, 1, "and the map holds only the CLOSE_WAIT side open",
                          "--netns", n.name)
    finally:
        n.delete()


# ------------------------------------------------------------------ 7 ----

def test_new_netns_before_discovery():
    """A netns born after the daemon's last discovery (a new pod's, within
    its first --reconcile-interval): its connections, known from the
    rings, are listed as the kernel has them and can be killed before any
    discovery has seen the netns; a SIGHUP that shortens the interval
    brings the next pass at once, not at the end of the old interval."""
    cfg = "/tmp/connbeatd-netns-%d.conf" % os.getpid()
    with open(cfg, "w") as f:
        f.write("reconcile-interval = 1h\n")
    n = None
    try:
        with t.Daemon("--config", cfg, "--tick", "100ms", trace=False) as d:
            g0 = netns_gauge(d)
            n = Netns("new")
            ag = n.agent()
            port = ag.listen(24801)
            pairs = ag.open(port, 2)
            wait_map_open(d, 4, "new: its connections reach the map from the rings",
                          "--netns", n.name)
            ss, rows = wait_agree(d, n, "new: before any discovery has seen the netns, its "
                                  "rows are ss's, per cookie")
            t.ok(stat_of(d, "connbeat_reconcile_passes_total") == 0 and netns_gauge(d) == g0,
                 "new: (no reconcile pass has run: connbeat_netns has not counted it)")
            victim = pairs[0][0]
            vport = ss.get(victim, {}).get("sport", 0)
            p = d.cli("kill", "--netns", n.name, "--sport", str(vport))
            t.ok(p.returncode == 0 and t.wait_until(lambda: victim not in n.ss(), WAIT, 0.1),
                 "new: kill --netns reaches a socket of the new netns", p.stdout, p.stderr)
            with open(cfg, "w") as f:
                f.write("reconcile-interval = 1s\n")
            d.send_signal(signal.SIGHUP)
            wait_gauge(d, "new: after a SIGHUP shortens --reconcile-interval from 1h to 1s, "
                       "the next pass comes and counts the netns", present=[n.inode])
    finally:
        if n:
            n.delete()
        os.unlink(cfg)


def test_unseen_netns_gone_with_lost_records():
    """A netns that lives and dies between two discoveries, its closes lost
    (the ring full while the daemon cannot read): no dump can reach it any
    more, yet its sessions must not stay open forever."""
    cfg = "/tmp/connbeatd-unseen-%d.conf" % os.getpid()
    with open(cfg, "w") as f:
        f.write("reconcile-interval = 1h\n")
    n = None
    try:
        # 64 KiB: a few hundred records, so the opens get through; the
        # burst below is thousands
        with t.Daemon("--config", cfg, "--events-ring-size", "65536", "--sweep-period", "1s",
                      "--tick", "100ms", trace=False) as d:
            n = Netns("unseen")
            ag = n.agent()
            port = ag.listen(24901)
            ag.open(port, 5)
            wait_map_open(d, 10, "unseen: its connections reach the map from the rings",
                          "--netns", n.name)
            d.send_signal(signal.SIGSTOP)
            try:
                ag.cmd("burst", port=port, n=400, keep_every=1000)
                n.delete()  # every socket closes, and the netns goes
                st = t.stats(d.pin_dir)
            finally:
                d.send_signal(signal.SIGCONT)
            t.ok(st[t.STAT_EVENTS_DROPPED] > 0, "unseen: the ring overflowed (%d dropped)"
                 % st[t.STAT_EVENTS_DROPPED])
            t.ok(stat_of(d, "connbeat_reconcile_passes_total") == 0,
                 "unseen: (no reconcile pass has run: no discovery saw the netns)")
            with open(cfg, "w") as f:
                f.write("reconcile-interval = 1s\n")
            d.send_signal(signal.SIGHUP)
            wait_map_open(d, len(t.ss_session_ids([port])),
                          "unseen: the map ends up holding none of its sessions open",
                          "--port", str(port))
            t.ok(stat_of(d, 'connbeat_reconcile_corrections_total{kind="missed_close"}') > 0,
                 "unseen: those closes are counted as corrections")
    finally:
        if n:
            n.delete()
        os.unlink(cfg)


t.run(test_two_netns_before_and_after, test_same_tuple_two_netns, test_kill9_restart_netns,
      test_lost_burst_repaired_in_netns, test_netns_deleted_while_running,
      test_netns_deleted_with_lost_records, test_fin_wait2_remnant,
      test_new_netns_before_discovery, test_unseen_netns_gone_with_lost_records)
delete_all()
t.done()
