#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Prometheus /metrics (issue 6): the endpoint checked by a real
exposition-format parser (promtool, Debian's prometheus package), counters
moving with real loopback traffic, --metrics off serving nothing, and the
errors for a port in use and a malformed address."""
import os
import re
import socket
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def samples(text):
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


REQUIRED = ['connbeat_sessions{state="active"}', 'connbeat_sessions{state="stale"}',
            'connbeat_sessions{state="draining"}', 'connbeat_sessions{state="closed"}',
            "connbeat_sessions_opened_total", "connbeat_sessions_closed_total",
            'connbeat_events_total{ring="events"}', 'connbeat_events_total{ring="beats"}',
            'connbeat_ringbuf_dropped_total{ring="events"}',
            'connbeat_ringbuf_dropped_total{ring="beats"}', "connbeat_evictions_total",
            'connbeat_transitions_total{from="active",to="stale"}',
            "connbeat_illegal_transitions_total",
            'connbeat_reconcile_corrections_total{kind="missed_close"}',
            "connbeat_tick_seconds_count", "connbeat_ingest_batch_seconds_count",
            'connbeat_ringbuf_pending_bytes{ring="events"}', "connbeat_heartbeats_capacity",
            "connbeat_heartbeats_entries", "connbeat_sessions_refused_total",
            "connbeat_control_clients", 'connbeat_bpf_prog_recursion_misses_total{prog="cb_set_state"}',
            'connbeat_bpf_prog_runs_total{prog="cb_set_state"}']


def test_endpoint():
    mport = t.free_port()
    with t.Daemon("--tick", "100ms", "--reconcile-interval", "1s", trace=False,
                  metrics="127.0.0.1:%d" % mport) as d:
        ctype, body = scrape(mport)
        t.ok(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
             "text exposition format 0.0.4", ctype)
        if t.need("promtool", "prometheus", "promtool check metrics accepts it"):
            p = subprocess.run(["promtool", "check", "metrics"], input=body,
                               capture_output=True, text=True)
            t.eq(p.returncode, 0, "promtool check metrics accepts it", p.stdout + p.stderr)
        s0 = samples(body)
        missing = [n for n in REQUIRED if n not in s0]
        t.eq(missing, [], "every required series is there")
        t.ok(all(("# HELP %s " % f) in body and ("# TYPE %s " % f) in body
                 for f in ("connbeat_sessions", "connbeat_tick_seconds",
                           "connbeat_ingest_batch_seconds")), "HELP and TYPE lines")
        t.ok('connbeat_tick_seconds_bucket{le="+Inf"}' in body, "histograms have buckets")
        t.ok("bpf_stats_enabled" in body, "HELP says the run counters need bpf_stats_enabled")
        # real traffic moves the counters. They are host-wide, so other
        # traffic can only add to them: the test's own 100 sessions are
        # checked by cookie, the counters must have grown by at least them.
        lst = t.tcp_listener(4)
        port = lst.getsockname()[1]
        mine = set()
        for _ in range(50):
            c = socket.create_connection(lst.getsockname()[:2])
            a, _ = lst.accept()
            mine |= {t.cookie(c), t.cookie(a)}
            c.close()
            a.close()
        rows = {}

        def all_closed():
            rows.clear()
            rows.update({r["id"]: r for r in d.sessions("--port", str(port))})
            return all(rows.get(i, {}).get("state") == "closed" for i in mine)

        t.ok(t.wait_until(all_closed, 10, 0.1), "the 100 sessions are listed closed, by cookie",
             sorted(i for i in mine if rows.get(i, {}).get("state") != "closed"))
        s1 = samples(scrape(mport)[1])
        for name in ("connbeat_sessions_opened_total", "connbeat_sessions_closed_total",
                     'connbeat_transitions_total{from="draining",to="closed"}'):
            t.ok(s1.get(name, 0) - s0.get(name, 0) >= len(mine),
                 "%s counts them (grew by %d, %d sessions of the test's)"
                 % (name, s1.get(name, 0) - s0.get(name, 0), len(mine)))
        t.ok(s1.get('connbeat_events_total{ring="events"}', 0) >
             s0.get('connbeat_events_total{ring="events"}', 0), "events_total counts records")
        t.ok(t.wait_until(lambda: samples(scrape(mport)[1])["connbeat_tick_seconds_count"] >
                          s0["connbeat_tick_seconds_count"], 5, 0.05),
             "the tick histogram counts ticks")
        st = d.stats()
        t.ok(st.get("connbeat_sessions_opened_total", 0) >= s1["connbeat_sessions_opened_total"],
             "connbeat stats reads the same counters")
        lst.close()
        # the shipped dashboard and alert rules use only series that exist
        families = {re.sub(r"\{.*", "", k) for k in s1}
        for path in ("dist/grafana-connbeat.json", "dist/connbeat-alerts.yml"):
            used = set(re.findall(r"connbeat_[a-z_]+", open(os.path.join(t.ROOT, path)).read()))
            unknown = sorted(n for n in used if n not in families and
                             n + "_count" not in families)
            t.eq(unknown, [], "%s refers only to exported metrics" % path)
        if t.need("promtool", "prometheus", "promtool check rules accepts the alert rules"):
            p = subprocess.run(["promtool", "check", "rules",
                                os.path.join(t.ROOT, "dist/connbeat-alerts.yml")],
                               capture_output=True, text=True)
            t.eq(p.returncode, 0, "promtool check rules accepts the alert rules",
                 p.stdout + p.stderr)


def test_off_and_errors():
    with t.Daemon(trace=False, metrics="off") as d:
        p = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True)
        mine = [l for l in p.stdout.splitlines() if "pid=%d," % d.pid in l]
        t.eq(mine, [], "--metrics off: connbeatd listens on no TCP port")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    pin = t.unique_pin_dir()
    p = t.run_connbeatd("--pin-dir", pin, "--socket", "/run/connbeat-test/m-%d.sock" %
                        os.getpid(), "--metrics", "127.0.0.1:%d" % port, timeout=60)
    t.remove_pin_dir(pin)
    t.ok(p.returncode == 1 and str(port) in p.stderr and "in use" in p.stderr,
         "port in use: exit 1 naming it", p.stderr)
    busy.close()
    for bad in ("localhost", "127.0.0.1:99999", "1.2.3:80"):
        p = t.run_connbeatd("--metrics", bad)
        t.ok(p.returncode == 2 and bad in p.stderr, "malformed --metrics %s: exit 2" % bad,
             p.stderr)


t.run(test_endpoint, test_off_and_errors)
t.done()
