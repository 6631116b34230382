#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""connbeat as Prometheus sees it (design §8): the alert rules' unit tests
(promtool test rules dist/connbeat-alerts.test.yml), then a real Prometheus
server (Debian's prometheus package, its own config, storage and loopback
port; never the system service) scraping a real connbeatd: the target is
up, the test's own loopback sessions show in connbeat_sessions_opened_total,
connbeat_build_info carries a version, the alert rules load and evaluate
cleanly on the real series, and every metric and query of the Grafana
dashboard exists and returns data."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

ALERTS = os.path.join(t.ROOT, "dist", "connbeat-alerts.yml")
ALERT_TESTS = os.path.join(t.ROOT, "dist", "connbeat-alerts.test.yml")
DASHBOARD = os.path.join(t.ROOT, "dist", "grafana-connbeat.json")
SESSIONS = 20  # loopback connections the test opens and closes: 2 sessions each


def test_alert_rules():
    case = "promtool test rules dist/connbeat-alerts.test.yml"
    if not t.need("promtool", "prometheus", case):
        return
    p = subprocess.run(["promtool", "test", "rules", ALERT_TESTS], capture_output=True,
                       text=True, timeout=120)
    t.eq(p.returncode, 0, case, p.stdout + p.stderr)
    # every alert of the rules file has a test
    alerts = set(re.findall(r"(?m)^\s*- alert:\s*(\S+)", open(ALERTS).read()))
    tested = set(re.findall(r"(?m)^\s*alertname:\s*(\S+)", open(ALERT_TESTS).read()))
    t.eq(sorted(alerts - tested), [], "every alert in connbeat-alerts.yml has a unit test",
         "alerts: %s" % sorted(alerts))


# ------------------------------------------------------------ helpers ----

def http_json(url, timeout=5):
    """GET url, parsed; an HTTP error raises RuntimeError with the API's own
    message (a PromQL parse error, say)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        raise RuntimeError("%s: HTTP %d: %s" % (url, e.code, e.read().decode()[:500])) from None


class Prometheus:
    """A prometheus server of the test's own: config, storage and log in a
    temporary directory, listening on 127.0.0.1 below 32768."""

    def __init__(self, target_port):
        self.dir = tempfile.mkdtemp(prefix="connbeat-prom-")
        self.config = os.path.join(self.dir, "prometheus.yml")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        shutil.copy(ALERTS, os.path.join(self.dir, "connbeat-alerts.yml"))
        with open(self.config, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "rule_files:\n"
                    "  - connbeat-alerts.yml\n"
                    "scrape_configs:\n"
                    "  - job_name: connbeat\n"
                    "    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.proc = None
        self.port = None
        self.log = None

    def start(self):
        """Start it on a free port and wait until it is ready; a port taken
        between the check and the bind is retried with another."""
        for _ in range(5):
            self.port = t.free_port(20000, 32767)
            self.log = open(self.log_path, "a")
            self.proc = subprocess.Popen(
                ["prometheus", "--config.file=" + self.config,
                 "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--web.console.templates=" + os.path.join(self.dir, "consoles"),
                 "--web.console.libraries=" + os.path.join(self.dir, "console_libraries")],
                stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
            if t.wait_until(lambda: self.proc.poll() is not None or self.ready(), 60, 0.2) \
                    and self.proc.poll() is None:
                return self
            self.stop()
            if "address already in use" not in self.log_text():
                break
        raise RuntimeError("prometheus did not start:\n" + self.log_text()[-3000:])

    def url(self, path, **params):
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return "http://127.0.0.1:%d%s%s" % (self.port, path, q)

    def ready(self):
        try:
            with urllib.request.urlopen(self.url("/-/ready"), timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def api(self, path, **params):
        r = http_json(self.url("/api/v1/" + path, **params))
        if r.get("status") != "success":
            raise RuntimeError("prometheus %s %r: %r" % (path, params, r))
        return r["data"]

    def query(self, expr):
        """Instant vector result of expr: [{"metric": {...}, "value": [ts, "v"]}]."""
        return self.api("query", query=expr)["result"]

    def value(self, expr):
        """The value of expr's only series, or None when it has none."""
        res = self.query(expr)
        return float(res[0]["value"][1]) if len(res) == 1 else None

    def targets(self):
        return self.api("targets")["activeTargets"]

    def log_text(self):
        try:
            return open(self.log_path).read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def dashboard_exprs():
    """Every query of the dashboard's panels, and the metric names the whole
    file mentions."""
    text = open(DASHBOARD).read()
    d = json.loads(text)
    exprs = [(p["title"], tg["expr"]) for p in d["panels"] for tg in p.get("targets", [])]
    return exprs, set(re.findall(r"connbeat_[a-z_]+", text))


def as_query(expr):
    """A dashboard query with Grafana's variables filled in."""
    return expr.replace("$__rate_interval", "1m").replace("$instance", ".+")


HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def exists(name, names):
    """`name` is an exported series name, or a histogram whose _bucket,
    _count or _sum series are."""
    return name in names or any(name + s in names for s in HISTOGRAM_SUFFIXES)


# ---------------------------------------------------------- the server ----

def test_real_prometheus():
    case = "a real prometheus server scrapes connbeatd"
    if not t.need("prometheus", "prometheus", case):
        return
    mport = t.free_port()
    prom = None
    with t.Daemon(trace=False, metrics="127.0.0.1:%d" % mport) as d:
        try:
            prom = Prometheus(mport).start()
            _check_server(prom, d, mport)
        finally:
            if prom is not None:
                if t._failed:
                    t.diag("prometheus log (last lines):\n" + prom.log_text()[-3000:])
                prom.cleanup()


def _check_server(prom, d, mport):
    want = "127.0.0.1:%d" % mport
    state = {}

    def target_up():
        state["targets"] = prom.targets()
        return any(tg["labels"].get("job") == "connbeat" and
                   tg["labels"].get("instance") == want and tg["health"] == "up"
                   for tg in state["targets"])

    if not t.ok(t.wait_until(target_up, 60, 0.2),
                "prometheus reports the connbeat target %s up (/api/v1/targets)" % want,
                json.dumps(state.get("targets"), indent=1)[:3000], d.stderr_text()[-2000:]):
        return
    t.ok(t.wait_until(lambda: prom.value('up{job="connbeat"}') == 1, 30, 0.2),
         'up{job="connbeat"} is 1', prom.query('up{job="connbeat"}'))

    # the baseline: a sample scraped before the test's own sessions
    opened = 'connbeat_sessions_opened_total{job="connbeat"}'
    if not t.ok(t.wait_until(lambda: prom.value(opened) is not None, 30, 0.2),
                "connbeat_sessions_opened_total is in prometheus", prom.query(opened)):
        return
    before = prom.value(opened)
    lst = t.tcp_listener(4)
    port = lst.getsockname()[1]
    mine = set()
    try:
        for _ in range(SESSIONS):
            c = socket.create_connection(lst.getsockname()[:2])
            a, _ = lst.accept()
            mine |= {t.cookie(c), t.cookie(a)}
            t.send_bytes(c, 100)
            t.recv_bytes(a, 100)
            c.close()
            a.close()
    finally:
        lst.close()
    # the daemon has them (so counted them opened), by cookie ...
    rows = {}

    def listed():
        rows.clear()
        rows.update({r["id"]: r for r in d.sessions("--port", str(port))})
        return mine <= set(rows)

    t.ok(t.wait_until(listed, 30, 0.1), "connbeatd lists the test's %d sessions, by cookie"
         % len(mine), sorted(mine - set(rows)))
    since = time.time()
    last = {}

    # ... and a scrape taken after that counts them: the counter is
    # host-wide, so other traffic can only add to it
    def grew():
        res = prom.query("timestamp(%s)" % opened)
        last["v"] = prom.value(opened)
        return res and float(res[0]["value"][1]) > since and \
            last["v"] is not None and last["v"] - before >= len(mine)

    t.ok(t.wait_until(grew, 60, 0.2),
         "connbeat_sessions_opened_total in prometheus grew by at least the test's %d "
         "sessions (%s -> %s)" % (len(mine), before, last.get("v")))

    res = prom.query('connbeat_build_info{job="connbeat"}')
    t.ok(len(res) == 1 and res[0]["metric"].get("version") and
         float(res[0]["value"][1]) == 1,
         "connbeat_build_info has a version label (%s)"
         % (res[0]["metric"].get("version") if res else None), res)

    # the shipped alert rules, loaded by the server, evaluate on real series
    def rules_evaluated():  # health is "unknown" until a rule's first evaluation
        groups = prom.api("rules")["groups"]
        state["rules"] = [r for g in groups for r in g["rules"]]
        return state["rules"] and all(r["health"] != "unknown" for r in state["rules"])

    t.wait_until(rules_evaluated, 30, 0.2)
    rules = state.get("rules") or []
    bad = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    t.ok(rules and not bad, "the %d alert rules load and evaluate without errors in prometheus"
         % len(rules), bad)

    # every metric the dashboard uses is in prometheus
    exprs, used = dashboard_exprs()
    names = set()

    def all_names():
        names.clear()
        names.update(s["metric"]["__name__"] for s in
                     prom.query('{__name__=~"connbeat_.*", job="connbeat"}'))
        return all(exists(n, names) for n in used)

    t.wait_until(all_names, 30, 0.2)
    t.eq(sorted(n for n in used if not exists(n, names)), [],
         "every metric dist/grafana-connbeat.json uses exists in prometheus (%d metrics)"
         % len(used), "exported: %s" % sorted(names))
    # ... and every panel query is valid PromQL returning data (rates need
    # two scrapes: wait for them)
    empty = {}

    def all_answer():
        empty.clear()
        for title, e in exprs:
            try:
                if not prom.query(as_query(e)):
                    empty[e] = title
            except RuntimeError as ex:
                empty[e] = "%s: %s" % (title, ex)
        return not empty

    t.ok(t.wait_until(all_answer, 30, 0.5),
         "every query of the dashboard returns data (%d queries in %d panels)"
         % (len(exprs), len({tt for tt, _ in exprs})),
         *["%s: %s" % (v, k) for k, v in empty.items()])
    # and it has the two panels an operator opens it for
    for what, rx in (("sessions by drain state", r"\bby \(state\) \(connbeat_sessions\{"),
                     ("drain-state transition rates",
                      r"\bby \(from, to\) \(rate\(connbeat_transitions_total\{")):
        panels = [tt for tt, e in exprs if re.search(rx, e)]
        t.ok(panels, "the dashboard has a panel of %s (%s)" % (what, ", ".join(panels)))


t.run(test_alert_rules)
t.skip_all_if_no_bpf()
t.run(test_real_prometheus)
t.done()
