#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""connbeatd built with ThreadSanitizer (make check builds it with the
stress tests, in build/san-thread/) while all of its threads work at once:
loopback churn into the rings (the ingest thread), reconciliation every
100ms with its sweep, a network namespace with connections that comes and
goes (discovery, seeding, forgetting), two event streams, list, summary,
stats, drain and kill --dry-run on the control socket, /metrics scrapes and
a SIGHUP reload. ThreadSanitizer must report nothing, and the daemon must
exit 0.

The core's data structures have their own TSan stress test
(tests/stress); this one covers what joins the threads in the daemon
(ring_ingest.c, reconcile.c, events.c, control.c, metrics.c)."""
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

TSAN_BUILD = os.path.join(t.BUILD, "san-thread")
TSAN_DAEMON = os.path.join(TSAN_BUILD, "connbeatd")
# Bounded so that the rings hold it all although the TSan daemon reads them
# ~10x slower: 20000 connections are ~200k lifecycle records, the 64 MiB
# events ring ~400k. (An overflow would start repairs that take minutes
# under TSan; the repair path has its own tests.)
CHURN_SECONDS = 4
CHURN_COUNT = 20000

# inside the namespace: a listener and 20 connections, held until stdin closes
IN_NETNS = """
import socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
held = []
for _ in range(20):
    c = socket.create_connection(l.getsockname()); a, _ = l.accept(); held += [c, a]
print("up", flush=True)
sys.stdin.read()
"""


def netns_round(d, name):
    """A netns with 40 sockets that lives until the daemon lists them, then
    goes. Whether they were listed."""
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True)
        p = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", IN_NETNS],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        up = p.stdout.readline().strip() == "up"
        seen = []

        def listed_open():
            rows = d.sessions("--netns", name)
            seen[:] = [len(rows), sorted({r["state"] for r in rows})]
            return len([r for r in rows if r["state"] != "closed"]) == 40

        listed = up and t.wait_until(listed_open, 60)
        if not listed:
            st = d.cli("stats").stdout
            t.diag("netns %s: up %r, its rows (count, states) %r" % (name, up, seen))
            t.diag("\n".join(x for x in st.splitlines() if "netns" in x or "repair" in x or
                             "dropped" in x))
            t.diag(d.stderr_text()[-3000:])
            t.diag("(if the rings overflowed, pick a smaller CHURN_COUNT: under TSan the "
                   "daemon is ~10x slower, and a repair of 100k sessions takes minutes)")
        p.stdin.close()
        p.wait(30)
        return listed
    finally:
        subprocess.run(["ip", "netns", "del", name])


def test_daemon_under_tsan():
    if not os.path.exists(TSAN_DAEMON):
        t.ok(False, "the TSan daemon is built", "missing %s: run make check" % TSAN_DAEMON)
        return
    os.environ["TSAN_OPTIONS"] = "halt_on_error=0 second_deadlock_stack=1"
    port = t.free_port()
    ns = "cbt-tsan-%d" % os.getpid()
    d = t.Daemon("--reconcile-interval", "100ms", "--sweep-period", "2s",
                 "--events-ring-size", str(64 << 20), trace=False,
                 metrics="127.0.0.1:%d" % port, binary=TSAN_DAEMON)
    try:
        # queried from its first moment: the control socket serves before
        # the daemon says it is ready
        d.start(wait=False)
        t.ok(t.wait_until(lambda: os.path.exists(d.socket_path) and
                          d.cli("stats").returncode == 0, 60, 0.001),
             "the control socket answers while the daemon starts")
        d.wait_ready(60)
        st0 = d.stats()
        evs = [subprocess.Popen([t.CONNBEAT, "--socket", d.socket_path, "events", "--json"] +
                                extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for extra in ([], ["--tcp-state", "close-wait"])]
        churn = t.Churn("--seconds", str(CHURN_SECONDS), "--count", str(CHURN_COUNT),
                        "--threads", "4", "--server-first")
        churn.go()
        deadline = time.monotonic() + CHURN_SECONDS
        rounds, queries, netns_ok, reloaded = 0, [], True, False
        while time.monotonic() < deadline or rounds < 2:
            queries.append(d.cli("list", "--json").returncode)
            queries.append(d.cli("summary", "--by", "port").returncode)
            queries.append(d.cli("stats").returncode)
            queries.append(d.cli("drain", "--port", str(churn.ports[0])).returncode)
            queries.append(d.cli("kill", "--dry-run", "--port", str(churn.ports[0])).returncode)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
                queries.append(0 if r.status == 200 else r.status)
            netns_ok &= netns_round(d, "%s-%d" % (ns, rounds))
            if not reloaded:
                d.proc.send_signal(signal.SIGHUP)
                reloaded = True
            rounds += 1
        rc, out = churn.wait(CHURN_SECONDS + 120)
        t.eq(rc, 0, "churn ran: %s" % out)
        t.ok(netns_ok, "each round's netns: its 40 sockets listed, then it went")
        t.eq(sorted(set(queries)), [0], "every query, drain, kill --dry-run and scrape "
             "answered (%d in %d rounds)" % (len(queries), rounds))
        opened = lambda: (d.stats()["connbeat_sessions_opened_total"] -  # noqa: E731
                          st0["connbeat_sessions_opened_total"])
        t.ok(t.wait_until(lambda: opened() >= 2 * CHURN_COUNT, 120),
             "the daemon ingested the churn (%d sessions opened, both ends of %d "
             "connections and the namespaces')" % (opened(), CHURN_COUNT))
        for p in evs:
            p.send_signal(signal.SIGINT)
            p.wait(30)
        t.eq([p.returncode for p in evs], [0, 0], "both event streams ran until Ctrl-C")
        rc = d.stop()
        err = d.stderr_text()
        t.eq(rc, 0, "the TSan daemon exits 0 on SIGTERM")
        reports = err.count("WARNING: ThreadSanitizer")
        first = err[err.find("WARNING: ThreadSanitizer"):][:6000] if reports else ""
        t.eq(reports, 0, "ThreadSanitizer reports nothing", first)
    finally:
        d.cleanup()


t.run(test_daemon_under_tsan)
t.done()
