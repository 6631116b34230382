# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""cbtest — the shared library of connbeat's integration tests (plain stdlib).

What it gives a test (style.md #27, shaped like the kernel's test_progs):

TAP on stdout, plan-less, read by tests/run:
    ok(cond, name, *diag)      "ok N - name" / "not ok N - name" + "# diag" lines
    skip(name, reason)         "ok N - name # SKIP reason"
    diag(msg)                  "# msg" (stdout) — shown by VERBOSE=1 tests/run
    run(*funcs)                run test functions; an exception is a failed case
    done()                     exit status: 1 if any case failed
    skip_all_if_no_bpf()       one loud SKIP case and exit 0 when the kernel
                               truly lacks BPF or BTF (never for anything else)

The daemon:
    Daemon(*args, trace=True, pin_dir=None, prefix=(), binary=None)
        .start(wait=True)      run build/connbeatd with a unique pin dir under
                               /sys/fs/bpf/connbeat-test-<pid>-<n>; wait until
                               it traces (or raise with its stderr)
        .records()             parsed --trace lines so far (parse_trace_line)
        .wait_for(pred, timeout)   first record matching pred
        .stop(sig)             signal, wait, return the exit status
        .stderr_text()         everything it logged
        .summary()             its final stats line, parsed (after stop())
        .cleanup()             stop if running, remove the pin dir
    run_connbeatd(*args, prefix=()) -> CompletedProcess (for quick exits)

Loopback traffic (v4 and v6):
    tcp_pair(family, ...) -> (client, accepted, listener)
    send_bytes(sock, n), recv_bytes(sock, n), wait_eof(sock), close_rst(sock),
    wait_reset(sock), half_close(sock)
    free_port(lo=None, hi=None)  a free loopback port (any, or one in [lo, hi])
    cookie(sock)               SO_COOKIE: the id the programs key on
    endpoint(sock)/peer(sock)  (addr, port) normalised like the trace prints

bpftool (JSON):
    bpftool(*args)             parsed `bpftool -j ...` output
    map_dump(path)             entries of a pinned map
    heartbeats(pin_dir)        {cookie: merged value dict} from the pinned map
    stats(pin_dir)             [summed per-CPU counters] from the pinned map
"""
import ctypes
import errno
import itertools
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

ROOT = os.environ.get("CONNBEAT_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CONNBEAT_BUILD") or os.path.join(ROOT, "build")
CONNBEATD = os.path.join(BUILD, "connbeatd")
BPFFS = "/sys/fs/bpf"

# include/connbeat_abi.h
STAT_EVENTS_EMITTED, STAT_EVENTS_DROPPED = 0, 1
STAT_BEATS_EMITTED, STAT_BEATS_DROPPED = 2, 3
STAT_MAP_UPDATE_FAILED, STAT_MAP_SEEDED = 4, 5
HBF_SEEDED, HBF_BEAT = 1, 2

SO_COOKIE = 57

# ---------------------------------------------------------------- TAP ----

_n = 0
_failed = 0


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        print("# " + line, flush=True)


def ok(cond, name, *diags):
    """Report one case; returns cond so callers can chain."""
    global _n, _failed
    _n += 1
    name = name.replace("#", "No.")
    if cond:
        print("ok %d - %s" % (_n, name), flush=True)
    else:
        _failed += 1
        print("not ok %d - %s" % (_n, name), flush=True)
        for d in diags:
            diag(d)
    return bool(cond)


def eq(got, want, name, *diags):
    """ok(got == want) with both values in the diagnostics."""
    return ok(got == want, name, "got:  %r" % (got,), "want: %r" % (want,), *diags)


def skip(name, reason):
    global _n
    _n += 1
    print("ok %d - %s # SKIP %s" % (_n, name, reason), flush=True)


def need(tool, package, case):
    """True when `tool` is on PATH; otherwise report `case` as skipped,
    saying which Debian package has it (scripts/deps.sh check installs
    it: a missing tool here means deps.sh could not)."""
    if shutil.which(tool):
        return True
    skip(case, "%s is not installed (Debian package %s; `sudo make check` installs it)"
         % (tool, package))
    return False


def run(*funcs):
    """Run test functions in order; one that raises is one failed case
    named after it, with the traceback as diagnostics."""
    for f in funcs:
        try:
            f()
        except Exception:  # noqa: BLE001 — any failure is a test failure
            ok(False, "%s: raised" % f.__name__, traceback.format_exc())


def done():
    sys.stdout.flush()
    sys.exit(1 if _failed else 0)


def _bpf_syscall_available():
    """True unless bpf(2) is missing (ENOSYS). Any other error (EINVAL for
    the bogus command, EPERM) means the syscall exists."""
    nr = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
    if nr is None:
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(nr), ctypes.c_int(-1), None, ctypes.c_uint(0))
    return not (r < 0 and ctypes.get_errno() == errno.ENOSYS)


def skip_all_if_no_bpf():
    """Skip the whole file, loudly, only when this kernel cannot run the
    programs at all: no bpf(2) or no BTF. Not being root is a failure."""
    why = None
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        why = "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing)"
    elif not _bpf_syscall_available():
        why = "this kernel has no bpf() syscall (CONFIG_BPF_SYSCALL=n)"
    if why:
        banner = "*** SKIPPING %s: %s ***" % (os.path.basename(sys.argv[0]), why)
        print(banner, file=sys.stderr, flush=True)
        skip(os.path.basename(sys.argv[0]), why)
        done()
    if os.geteuid() != 0:
        ok(False, "integration tests need root", "run: sudo tests/run integration")
        done()
    if not os.access(CONNBEATD, os.X_OK):
        ok(False, "build/connbeatd exists", "run make first (missing %s)" % CONNBEATD)
        done()


# ------------------------------------------------------- trace lines ----

_LINE = re.compile(r"^(\d+)\.(\d{9}) (\w+) cookie=(\d+) (\S+) > (\S+) (\S+)>(\S+)(.*)$")
_INT_FIELDS = ("netns", "tx", "rx", "segs_in", "segs_out", "retrans", "rtt_us", "cgroup", "pid")


def split_addrport(s):
    """'127.0.0.1:80' -> ('127.0.0.1', 80); '[::1]:80' -> ('::1', 80)."""
    addr, port = s.rsplit(":", 1)
    return addr.strip("[]"), int(port)


def parse_trace_line(line):
    """One --trace line -> dict, or None if it is not one. Keys: ts_ns,
    kind, cookie, family, src, sport, dst, dport, old, new, netns, and
    when present tx rx segs_in segs_out retrans rtt_us cgroup pid comm, flags
    (a set, possibly empty)."""
    m = _LINE.match(line.rstrip("\n"))
    if not m:
        return None
    r = {
        "ts_ns": int(m.group(1)) * 10**9 + int(m.group(2)),
        "kind": m.group(3),
        "cookie": int(m.group(4)),
        "family": 6 if m.group(5).startswith("[") else 4,
        "old": m.group(7),
        "new": m.group(8),
        "flags": set(),
        "line": line.rstrip("\n"),
    }
    r["src"], r["sport"] = split_addrport(m.group(5))
    r["dst"], r["dport"] = split_addrport(m.group(6))
    for kv in m.group(9).split():
        k, _, v = kv.partition("=")
        if k in _INT_FIELDS:
            r[k] = int(v)
        elif k == "flags":
            r["flags"] = set(v.split(","))
        else:
            r[k] = v
    return r


_SUMMARY = re.compile(
    r"trace: read: events (\d+), beats (\d+), invalid (\d+); since the maps were created: "
    r"events emitted (\d+) dropped (\d+), beats emitted (\d+) dropped (\d+), "
    r"heartbeats seeded (\d+) insert failures (\d+)")
_SUMMARY_KEYS = ("read_events", "read_beats", "invalid", "events_emitted", "events_dropped",
                 "beats_emitted", "beats_dropped", "seeded", "insert_failures")


def parse_trace_summary(line):
    """The final stats line --trace prints on stderr -> dict, or None."""
    m = _SUMMARY.search(line)
    return dict(zip(_SUMMARY_KEYS, map(int, m.groups()))) if m else None


# ------------------------------------------------------------ daemon ----

_pin_seq = itertools.count()


def unique_pin_dir():
    return "%s/connbeat-test-%d-%d" % (BPFFS, os.getpid(), next(_pin_seq))


def remove_pin_dir(path):
    """rm -r of a pin directory (bpffs: unlink pins, rmdir)."""
    if path and os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


def run_connbeatd(*args, prefix=(), timeout=30):
    """Run connbeatd to completion (for flags and failures that exit at
    once). Returns subprocess.CompletedProcess with text output."""
    return subprocess.run(list(prefix) + [CONNBEATD] + list(args), capture_output=True,
                          text=True, timeout=timeout)


class DaemonError(Exception):
    pass


class Daemon:
    """connbeatd running in the background, its output collected by threads.

    pin_dir defaults to a fresh one that cleanup() removes; prefix runs it
    under a wrapper (e.g. unshare), which must exec it so that the pid is
    the daemon's."""

    READY = "tracing (pin dir"
    READY_DAEMON = "ready:"

    def __init__(self, *args, trace=True, pin_dir=None, prefix=(), socket_path=None,
                 metrics="off", binary=None):
        self.binary = binary or CONNBEATD
        self.own_pin_dir = pin_dir is None
        self.pin_dir = pin_dir or unique_pin_dir()
        self.trace = trace
        self.socket_path = None
        extra = []
        if not trace:
            # the session daemon: its own control socket, metrics off unless asked
            self.socket_path = socket_path or "/run/connbeat-test/%s.sock" % os.path.basename(
                self.pin_dir)
            extra = ["--socket", self.socket_path]
            if metrics is not None:
                extra += ["--metrics", metrics]
        self.args = (["--trace"] if trace else []) + ["--pin-dir", self.pin_dir] + extra + \
            list(args)
        self.prefix = list(prefix)
        self.proc = None
        self.out = []
        self.err = []
        self._outq = queue.Queue()
        self._cv = threading.Condition()
        self._threads = []
        self.returncode = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def _reader(self, stream, sink):
        for line in iter(stream.readline, ""):
            with self._cv:
                sink.append(line.rstrip("\n"))
                self._cv.notify_all()
        stream.close()

    def start(self, wait=True, timeout=20):
        self.proc = subprocess.Popen(self.prefix + [self.binary] + self.args,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            t = threading.Thread(target=self._reader, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=20):
        """Wait until it traces (or, the session daemon, says it is ready);
        raise DaemonError with its stderr if it exits first."""
        text = self.READY if self.trace else self.READY_DAEMON
        ok_ = self._wait(lambda: any(text in l for l in self.err), timeout)
        if not ok_:
            raise DaemonError("connbeatd did not start (exit %r):\n%s"
                              % (self.proc.poll(), self.stderr_text()))

    def _wait(self, cond, timeout):
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                if cond():
                    return True
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    return cond()
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.1))

    def lines(self):
        with self._cv:
            return list(self.out)

    def records(self):
        return [r for r in (parse_trace_line(l) for l in self.lines()) if r]

    def records_for(self, cookie):
        return [r for r in self.records() if r["cookie"] == cookie]

    def wait_for(self, pred, timeout=10):
        """The first record matching pred, waiting up to timeout; None if none."""
        found = []

        def cond():
            for line in self.out:
                r = parse_trace_line(line)
                if r and pred(r):
                    found.append(r)
                    return True
            return False

        self._wait(cond, timeout)
        return found[0] if found else None

    def wait_stderr(self, text, timeout=10):
        return self._wait(lambda: any(text in l for l in self.err), timeout)

    def stderr_text(self):
        with self._cv:
            return "\n".join(self.err)

    def summary(self):
        """The parsed final stats line (after stop()), or None."""
        for line in reversed(self.err):
            r = parse_trace_summary(line)
            if r:
                return r
        return None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal it, wait for it, return its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
        for t in self._threads:
            t.join(5)
        return self.returncode

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.stop(signal.SIGKILL)
        if self.own_pin_dir:
            remove_pin_dir(self.pin_dir)
        # a daemon killed with SIGKILL leaves its socket file behind
        if self.socket_path and self.proc is not None and self.proc.poll() is not None:
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass

    def cli(self, *args, timeout=30):
        """Run build/connbeat against this daemon's socket."""
        return cli("--socket", self.socket_path, *args, timeout=timeout)

    def cli_json(self, *args, timeout=30):
        """connbeat ... --json, parsed; raises with its stderr on failure."""
        p = self.cli(*(list(args) + ["--json"]), timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("connbeat %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                              p.stderr.strip()))
        return json.loads(p.stdout)

    def sessions(self, *filters):
        """Rows of `connbeat list --json` (FILTERS as args)."""
        return self.cli_json("list", *filters)

    def open_ids(self, ports=None, rows=None):
        """Cookies of the sessions not CLOSED (with a local or peer port in
        `ports` when given), from `connbeat list --json` (or `rows`)."""
        ports = set(ports) if ports is not None else None
        return {r["id"] for r in (self.sessions() if rows is None else rows)
                if r["state"] != "closed" and
                (ports is None or r["sport"] in ports or r["dport"] in ports)}

    def open_sessions(self):
        """Sessions not CLOSED, from the daemon's gauges."""
        st = self.stats()
        return sum(int(st.get('connbeat_sessions{state="%s"}' % s, 0))
                   for s in ("active", "stale", "draining"))

    STOP_LINE = re.compile(r"stopped: read events (\d+) beats (\d+); kernel emitted events "
                           r"(\d+) beats (\d+)")

    def stop_counts(self):
        """(events read, beats read, events emitted, beats emitted) from the
        daemon's last "stopped:" line, or None."""
        m = None
        for line in self.err:
            m = self.STOP_LINE.search(line) or m
        return tuple(map(int, m.groups())) if m else None

    def stats(self):
        return self.cli_json("stats")


CONNBEAT = os.path.join(BUILD, "connbeat")


def cli(*args, timeout=30, prefix=()):
    """Run build/connbeat; CompletedProcess with text output."""
    return subprocess.run(list(prefix) + [CONNBEAT] + list(args), capture_output=True,
                          text=True, timeout=timeout)


# ----------------------------------------------------------- traffic ----


SS_STATE = {"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV",
            "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT",
            "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK", "CLOSING": "CLOSING",
            "LISTEN": "LISTEN", "UNCONN": "CLOSE"}
_SS_OWNER = re.compile(r'users:\(\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=(\d+)\)')
_SS_NUM = {k: re.compile(r"\b%s:(\d+)" % k) for k in
           ("bytes_sent", "bytes_acked", "bytes_received", "segs_in", "segs_out", "ino")}
_SS_RTT = re.compile(r"\brtt:([\d.]+)/")
_SS_RETRANS = re.compile(r"\bretrans:\d+/(\d+)")


def ss_socks(ports=None, netns=None, states="all"):
    """TCP sockets as the kernel reports them (`ss -Htanpie`): {cookie: dict}
    with state (connbeat's spelling: ESTABLISHED, CLOSE_WAIT...), src, sport,
    dst, dport, pid and comm of the first owner ss names (None when no
    process holds it), bytes_acked, bytes_received, bytes_sent, segs_in,
    segs_out, retrans (total), rtt_ms (None when ss prints none). Only
    sockets with a local or peer port in `ports` when given; in the named
    network namespace `netns` (ip netns exec) when given."""
    cmd = ["ss", "-Htanpie", "state", states]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    out = {}
    ports = set(ports) if ports is not None else None
    for line in p.stdout.replace("\n\t", " ").splitlines():
        f = line.split()
        m = re.search(r"\bsk:([0-9a-f]+)", line)
        if len(f) < 5 or not m:
            continue
        src, sport = split_addrport(f[3])
        dst, dport = split_addrport(f[4]) if f[4] != "*" and not f[4].endswith(":*") \
            else (f[4].rsplit(":", 1)[0].strip("[]"), 0)
        if ports is not None and sport not in ports and dport not in ports:
            continue
        rec = {"state": SS_STATE.get(f[0], f[0]), "src": src, "sport": sport, "dst": dst,
               "dport": dport, "pid": None, "comm": None, "rtt_ms": None, "retrans": 0,
               "line": line}
        own = _SS_OWNER.search(line)
        if own:
            rec["comm"], rec["pid"] = own.group(1), int(own.group(2))
        for k, rx in _SS_NUM.items():
            m2 = rx.search(line)
            rec[k] = int(m2.group(1)) if m2 else 0
        m2 = _SS_RTT.search(line)
        if m2:
            rec["rtt_ms"] = float(m2.group(1))
        m2 = _SS_RETRANS.search(line)
        if m2:
            rec["retrans"] = int(m2.group(1))
        out[int(m.group(1), 16)] = rec
    return out


# What connbeat counts as a session: every connection socket but listeners,
# TIME_WAIT remnants, request socks and handshakes not yet complete (a
# connection is a session from its ESTABLISHED on).
NOT_SESSIONS = ("LISTEN", "TIME_WAIT", "SYN_RECV", "SYN_SENT", "CLOSE")


def ss_session_ids(ports=None, netns=None):
    """Cookies of the sockets on `ports` that connbeat must list as open."""
    return {c for c, r in ss_socks(ports, netns).items() if r["state"] not in NOT_SESSIONS}


def ss_sessions(port=None):
    """How many sockets on `port` (either side) connbeat must list as open."""
    return len(ss_session_ids(None if port is None else [port]))


TOOLS = os.path.join(BUILD, "tests", "tools")


class Hold:
    """build/tests/tools/hold: N loopback connections held open; .ports are
    its listening ports."""

    def __init__(self, count, seconds=300):
        self.p = subprocess.Popen([os.path.join(TOOLS, "hold"), "--count", str(count),
                                   "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
        self.line = ""
        line = self.line = self.p.stdout.readline().strip()
        if "ready" not in line:
            raise RuntimeError("hold failed: %r" % line)
        self.ports = [int(x) for x in line.split("ports ")[1].split(",")]

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(120)


class Churn:
    """build/tests/tools/churn, set up (listening) but started only by
    .go(); .ports are its listening ports."""

    def __init__(self, *args):
        self.p = subprocess.Popen([os.path.join(TOOLS, "churn"), "--ready"] + list(args),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if "listening" not in line:
            raise RuntimeError("churn failed: %r" % line)
        self.ports = [int(x) for x in line.split("ports ")[1].split(",")]

    def go(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def wait(self, timeout=120):
        out = self.p.communicate(timeout=timeout)[0]
        return self.p.returncode, out.strip()


def short_connections(lst, n, payload=100):
    """n connections to listener `lst`, each sending `payload` bytes, then
    closed (both ends)."""
    for _ in range(n):
        c = socket.create_connection(lst.getsockname()[:2])
        a, _ = lst.accept()
        send_bytes(c, payload)
        c.close()
        a.close()

def _family(family):
    return socket.AF_INET6 if family == 6 else socket.AF_INET


def free_port(lo=None, hi=None):
    """A free loopback TCP port: any (lo None), or one in [lo, hi]."""
    for _ in range(200):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", 0 if lo is None else random.randint(lo, hi)))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free loopback port in %s-%s" % (lo, hi))


def tcp_listener(family=4, addr=None):
    fam = _family(family)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr or ("::1" if family == 6 else "127.0.0.1"), 0))
    s.listen(128)
    return s


def tcp_pair(family=4, listen_addr=None, connect_family=None, connect_addr=None, timeout=5):
    """A connected loopback pair: (client, accepted, listener). By default
    both on 127.0.0.1 (family 4) or ::1 (family 6); listen_addr/connect_addr
    and connect_family allow wildcard and v4-mapped set-ups."""
    lst = tcp_listener(family, listen_addr)
    port = lst.getsockname()[1]
    cfam = connect_family or family
    caddr = connect_addr or ("::1" if cfam == 6 else "127.0.0.1")
    c = socket.socket(_family(cfam), socket.SOCK_STREAM)
    c.settimeout(timeout)
    c.connect((caddr, port))
    lst.settimeout(timeout)
    a, _ = lst.accept()
    a.settimeout(timeout)
    return c, a, lst


def send_bytes(sock, n, chunk=65536):
    buf = b"x" * min(n, chunk)
    left = n
    while left:
        left -= sock.send(buf[:min(left, len(buf))])


def recv_bytes(sock, n):
    got = 0
    while got < n:
        b = sock.recv(min(n - got, 1 << 20))
        if not b:
            raise EOFError("peer closed after %d of %d bytes" % (got, n))
        got += len(b)
    return got


def wait_eof(sock):
    """Read until the peer's FIN (discarding data); returns the bytes read."""
    n = 0
    while True:
        b = sock.recv(65536)
        if not b:
            return n
        n += len(b)


def close_rst(sock):
    """Abortive close: SO_LINGER {on, 0} makes close() send a RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_reset(sock, timeout=10):
    """Block until `sock` has taken its peer's RST. On loopback the RST is
    usually processed inside the peer's close(), but under load the softirq
    runs later; closing `sock` before then would send a FIN and add state
    changes (FIN_WAIT1...) the caller did not ask for."""
    sock.settimeout(timeout)
    try:
        b = sock.recv(1)
    except ConnectionResetError:
        return
    raise AssertionError("wait_reset: expected the peer's RST, got %r: "
                         "the peer must close with close_rst()" % b)


def half_close(sock):
    sock.shutdown(socket.SHUT_WR)


def cookie(sock):
    return struct.unpack("Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0]


def endpoint(sock):
    return sock.getsockname()[:2]


def peer(sock):
    return sock.getpeername()[:2]


def possible_cpus():
    """Number of possible CPUs (what per-CPU maps are sized by)."""
    n = 0
    with open("/sys/devices/system/cpu/possible") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def self_comm():
    with open("/proc/self/comm") as f:
        return f.read().strip()


# ----------------------------------------------------------- bpftool ----

def bpftool(*args):
    """Parsed JSON of `bpftool -j ARGS`; raises with its stderr on failure."""
    p = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise RuntimeError("bpftool %s: %s" % (" ".join(args), p.stderr.strip()))
    return json.loads(p.stdout) if p.stdout.strip() else None


def map_dump(path):
    return bpftool("map", "dump", "pinned", path) or []


def map_show(path):
    return bpftool("map", "show", "pinned", path)


def heartbeats(pin_dir):
    """{cookie: merged value} from the pinned heartbeats map, merged across
    CPUs the way the daemon does (newest times, first non-zero pid, OR of
    flags; the counters live in the kernel's tcp_sock, not here). Also keeps the per-CPU values under
    'percpu'. Needs BTF: it reads bpftool's "formatted" view."""
    out = {}
    for e in map_dump(pin_dir + "/heartbeats"):
        f = e["formatted"]
        vals = [v["value"] for v in f["values"]]
        m = {"percpu": vals}
        for k in ("last_data_ns", "last_seen_ns"):
            m[k] = max(v[k] for v in vals)
        m["pid"] = next((v["pid"] for v in vals if v["pid"]), 0)
        m["flags"] = 0
        for v in vals:
            m["flags"] |= v["flags"]
        out[f["key"]["cookie"]] = m
    return out


def stats(pin_dir):
    """The pinned per-CPU stats array, summed over CPUs, indexed by CB_STAT_*."""
    res = []
    for e in sorted(map_dump(pin_dir + "/stats"), key=lambda e: e["key"]
                    if isinstance(e["key"], int) else e["formatted"]["key"]):
        vals = e.get("formatted", e)["values"]
        res.append(sum(v["value"] for v in vals))
    return res


def wait_until(cond, timeout=10, step=0.02):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)
