#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""make install: PREFIX and DESTDIR honoured; binaries, man pages, the
systemd unit (pointing at the installed daemon), the example config and
the dashboard land where they should; make uninstall removes them."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

WANT = ["usr/sbin/connbeatd", "usr/sbin/connbeat", "usr/share/man/man8/connbeatd.8",
        "usr/share/man/man8/connbeat.8", "usr/lib/systemd/system/connbeatd.service",
        "usr/share/doc/connbeat/connbeatd.conf.example",
        "usr/share/doc/connbeat/grafana-connbeat.json"]


def make(*args):
    return subprocess.run(["make", "-C", t.ROOT, "--no-print-directory"] + list(args),
                          capture_output=True, text=True, timeout=600)


def test_install():
    dest = tempfile.mkdtemp(prefix="connbeat-install-")
    try:
        p = make("install", "DESTDIR=" + dest, "PREFIX=/usr")
        if not t.eq(p.returncode, 0, "make install DESTDIR=... PREFIX=/usr", p.stderr):
            return
        missing = [f for f in WANT if not os.path.isfile(os.path.join(dest, f))]
        t.eq(missing, [], "every file is installed under DESTDIR/PREFIX")
        unit = open(os.path.join(dest, "usr/lib/systemd/system/connbeatd.service")).read()
        t.ok("ExecStart=/usr/sbin/connbeatd" in unit and "@" not in unit,
             "the unit runs the installed daemon", unit)
        for page in ("connbeatd.8", "connbeat.8"):
            if not t.need("groff", "groff-base", "man page %s renders cleanly" % page):
                continue
            p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                                os.path.join(dest, "usr/share/man/man8", page)],
                               capture_output=True, text=True)
            t.ok(p.returncode == 0 and not p.stderr, "man page %s renders cleanly" % page,
                 p.stderr)
        # every setting of the example, uncommented, must parse: as an
        # unprivileged user connbeatd reads its config (exit 2 on an error)
        # and then stops at the privilege check (exit 1)
        example = open(os.path.join(dest, "usr/share/doc/connbeat/connbeatd.conf.example")).read()
        cfg = os.path.join(dest, "connbeatd.conf")
        with open(cfg, "w") as f:
            f.write(re.sub(r"(?m)^#([a-z-]+ = )", r"\1", example))
        os.chmod(dest, 0o755)
        os.chmod(cfg, 0o644)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            os.path.join(t.BUILD, "connbeatd"), "--config", cfg],
                           capture_output=True, text=True, timeout=30)
        t.ok(p.returncode == 1 and "connbeatd.conf" not in p.stderr,
             "every setting of the example config parses", p.stderr)
        p = make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
        left = [f for f in WANT if os.path.exists(os.path.join(dest, f))]
        t.ok(p.returncode == 0 and not left, "make uninstall removes them", left, p.stderr)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test_unit_verifies():
    """The installed unit passes systemd's own checker. It resolves ExecStart
    and the rest on the real root, so install with a PREFIX that exists there."""
    case = "systemd-analyze verify accepts the installed unit"
    if not t.need("systemd-analyze", "systemd", case):
        return
    prefix = tempfile.mkdtemp(prefix="connbeat-unit-")
    try:
        p = make("install", "PREFIX=" + prefix)
        if not t.eq(p.returncode, 0, "make install PREFIX=" + prefix, p.stderr):
            return
        unit = os.path.join(prefix, "lib/systemd/system/connbeatd.service")
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True,
                           text=True)
        t.ok(p.returncode == 0 and not p.stderr.strip(), case, p.stdout + p.stderr)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


t.run(test_install, test_unit_verifies)
t.done()
