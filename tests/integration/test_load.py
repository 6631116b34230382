#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Load (issue 7): 100k loopback sockets held open (50k connections,
spread over several processes: the open-files limit is 20000) plus a
full-rate connection churn for CONNBEAT_LOAD_SECONDS (default 30). After
it, the open sessions equal what ss reports, exactly. RSS and CPU of
connbeatd, ring drops and recursion misses are reported as diagnostics
(figures, not assertions)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

SECONDS = int(os.environ.get("CONNBEAT_LOAD_SECONDS", "30"))
HELD = int(os.environ.get("CONNBEAT_LOAD_HELD", "50000"))  # connections: 2x sockets


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0


def test_load():
    with t.Daemon("--reconcile-interval", "2s", trace=False) as d:
        hold = t.Hold(HELD, SECONDS + 300)
        try:
            t.eq(len(t.ss_session_ids(hold.ports)), 2 * HELD,
                 "holding %d connections (%d sockets): %s" % (HELD, 2 * HELD, hold.line))
            churn = t.Churn("--seconds", str(SECONDS))
            ports = hold.ports + churn.ports
            cpu0, t0 = cpu_s(d.pid), time.monotonic()
            st0 = d.stats()
            churn.go()
            rc, out = churn.wait(SECONDS + 120)
            cpu1, t1 = cpu_s(d.pid), time.monotonic()
            t.eq(rc, 0, "churn ran: %s" % out)
            want = t.ss_session_ids(ports)
            got = set()

            def converged():
                got.clear()
                got.update(d.open_ids(ports))
                return got == want

            ok = t.wait_until(converged, 30, 0.5)
            extra = sorted(got - want)[:20]
            rows = [r for r in d.sessions() if r["id"] in extra] if not ok else []
            now = t.ss_socks(ports) if not ok else {}
            t.ok(ok, "after the load the open sessions on the test's ports are ss's exactly, by "
                 "cookie (%d)" % len(want), "missing: %r" % sorted(want - got)[:20],
                 "extra: %r" % extra, "their rows: %r" % rows,
                 "ss now: %r" % [now[c]["line"] for c in extra if c in now],
                 "housekeeping: %r" % {k: v for k, v in d.stats().items()
                                       if "remnant" in k or "error" in k or "correction" in k
                                       or "reconcile" in k} if not ok else "",
                 "connbeatd said: %r" % list(d.err)[-10:] if not ok else "")
            st = d.stats()
            t.ok(d.proc.poll() is None, "connbeatd survived the load")
            drops = {k: st[k] - st0.get(k, 0) for k in st
                     if k.startswith("connbeat_ringbuf_dropped_total")}
            misses = sum(v for k, v in st.items()
                         if k.startswith("connbeat_bpf_prog_recursion_misses_total"))
            t.diag("load: %s" % out)
            t.diag("connbeatd: RSS %.1f MiB, CPU %.1f%% of one core during the churn"
                   % (rss_mib(d.pid), 100 * (cpu1 - cpu0) / (t1 - t0)))
            t.diag("ring drops during the load: %r; recursion misses %d" % (drops, misses))
            t.diag("sessions opened %d, refused %d, evicted early %d" % (
                st["connbeat_sessions_opened_total"] - st0["connbeat_sessions_opened_total"],
                st["connbeat_sessions_refused_total"],
                st.get("connbeat_evictions_early_total", 0)))
        finally:
            hold.close()


t.run(test_load)
t.done()
