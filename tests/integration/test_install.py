#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""make install: PREFIX and DESTDIR honoured; binaries, man pages, the
systemd unit (pointing at the installed daemon), the example config, the
dashboard and the bash completion land where they should; make uninstall
removes them. The installed completion loads in bash and completes
commands, sort keys and per-command options."""
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
        "usr/share/doc/connbeat/grafana-connbeat.json",
        "usr/share/bash-completion/completions/connbeat"]
COMPLETION = "usr/share/bash-completion/completions/connbeat"
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def make(*args):
    """make in the source tree, installing from the build tree under test
    (CONNBEAT_BUILD), never from another one."""
    build = os.path.relpath(t.BUILD, t.ROOT)
    if build.startswith(".."):
        build = t.BUILD
    return subprocess.run(["make", "-C", t.ROOT, "--no-print-directory", "BUILD=" + build] +
                          list(args), capture_output=True, text=True, timeout=600)


def complete(path, line):
    """What the completion at `path` offers for `line` (the command line
    up to the cursor, at its end), as bash would call it on TAB; returns
    (candidates, stderr of the whole bash run)."""
    words = line.split()
    if line.endswith(" "):
        words.append("")
    script = ('source %s || exit 90; source "$1" || exit 91; COMP_WORDS=("${@:2}"); '
              'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE=$0; COMP_POINT=${#COMP_LINE}; '
              '_connbeat; printf "%%s\\n" "${COMPREPLY[@]}"' % BASH_COMPLETION)
    p = subprocess.run(["bash", "-c", script, line, path] + words, capture_output=True,
                       text=True, timeout=30)
    return sorted(w for w in p.stdout.split("\n") if w), p.stderr


def check_completion(path):
    case = "the bash completion loads and completes"
    if not os.path.isfile(BASH_COMPLETION):
        t.skip(case, "%s is missing (Debian package bash-completion; `sudo make check` "
               "installs it)" % BASH_COMPLETION)
        return
    p = subprocess.run(["bash", "-c", 'source %s && source "$1" && complete -p connbeat'
                        % BASH_COMPLETION, "bash", path], capture_output=True, text=True,
                       timeout=30)
    t.ok(p.returncode == 0 and not p.stderr and "_connbeat" in p.stdout,
         "the installed completion loads in bash without errors and registers _connbeat",
         "exit %d" % p.returncode, p.stdout, p.stderr)
    sort_keys = sorted("idle age tx rx retrans rtt".split())
    cases = [
        ("connbeat st", ["stale", "stats"]),
        ("connbeat list --sort ", sort_keys),
        ("connbeat stale --sort=r", ["retrans", "rtt", "rx"]),
        ("connbeat ", sorted("stale list stats drain kill events summary".split())),
        ("connbeat --maps ", ["list", "stale", "stats"]),
        ("connbeat -", sorted("--socket --maps --pin-dir --version -h --help".split())),
        ("connbeat stats -", ["--help", "--json"]),
        ("connbeat --socket /tmp/x.sock drain --w", ["--wait"]),
        ("connbeat kill --d", ["--dport", "--dry-run"]),
        ("connbeat summary --by ", ["cgroup", "comm", "peer", "port"]),
        ("connbeat stale --idle-basis ", ["any", "data"]),
        ("connbeat list --state ", ["active", "closed", "draining", "stale"]),
        ("connbeat drain --tcp-state close", ["close", "close-wait"]),
        ("connbeat stale --json --j", []),
    ]
    for line, want in cases:
        got, err = complete(path, line)
        t.eq((got, err), (want, ""), "completion: %r<TAB>" % line)
    # per command: only its own options
    got = complete(path, "connbeat events --")[0]
    t.ok("--json" in got and "--port" in got and not {"--wait", "--sort", "--dry-run",
                                                      "--by", "--idle"} & set(got),
         "completion: events offers its options and filters, not other commands'", got)
    got = complete(path, "connbeat stale -")[0]
    t.ok({"-H", "--no-header", "--idle", "--idle-basis", "--sort", "--limit", "--cgroup",
          "--netns"} <= set(got) and "--wait" not in got,
         "completion: stale offers its options and filters", got)


def test_install():
    dest = tempfile.mkdtemp(prefix="connbeat-install-")
    try:
        p = make("install", "DESTDIR=" + dest, "PREFIX=/usr")
        if not t.eq(p.returncode, 0, "make install DESTDIR=... PREFIX=/usr", p.stderr):
            return
        missing = [f for f in WANT if not os.path.isfile(os.path.join(dest, f))]
        t.eq(missing, [], "every file is installed under DESTDIR/PREFIX")
        check_completion(os.path.join(dest, COMPLETION))
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


def bounding_set(unit_text):
    """The unit's CapabilityBoundingSet= as a setpriv --bounding-set argument."""
    m = re.search(r"(?m)^CapabilityBoundingSet=(.*)$", unit_text)
    caps = m.group(1).split() if m else []
    return "-all," + ",".join("+" + c.lower().replace("cap_", "") for c in caps), caps


def test_unit_capabilities():
    """The daemon starts under the unit's own CapabilityBoundingSet= (as
    systemd would start it) and keeps exactly what it needs; bounded
    tighter, it still starts and names what it lacks."""
    t.skip_all_if_no_bpf()
    unit = open(os.path.join(t.ROOT, "dist", "connbeatd.service")).read()
    arg, caps = bounding_set(unit)
    t.ok({"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_NET_ADMIN"} <= set(caps),
         "the unit's bounding set holds the capabilities connbeatd keeps", caps)
    with t.Daemon("--metrics", "off", trace=False, prefix=["setpriv", "--bounding-set", arg]) as d:
        st = open("/proc/%d/status" % d.pid).read()
        eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", st).group(1), 16)
        bnd = int(re.search(r"CapBnd:\s*([0-9a-f]+)", st).group(1), 16)
        t.eq((eff, bnd), ((1 << 21) | (1 << 19) | (1 << 12),) * 2,
             "under the unit's bounding set it starts and keeps SYS_ADMIN, SYS_PTRACE, NET_ADMIN "
             "(effective and bounding)")
        t.eq(d.cli("stats").returncode, 0, "and it serves")
    tight = arg.replace(",+sys_ptrace", "").replace(",+setpcap", "")
    with t.Daemon("--metrics", "off", trace=False, prefix=["setpriv", "--bounding-set", tight]) as d:
        t.ok("CAP_SYS_PTRACE" in d.stderr_text() and "not permitted" in d.stderr_text(),
             "bounded without CAP_SYS_PTRACE it starts and says what it lacks",
             d.stderr_text()[-1000:])


t.run(test_install, test_unit_verifies, test_unit_capabilities)
t.done()
