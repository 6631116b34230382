#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""connbeatd's command line and its failures: --help, usage errors (exit
2), a second daemon on the same pin dir (exit 1), not root, no BTF, bpffs
missing (mounted by the daemon) or not mountable, and exit 0 on SIGINT.
Mount games happen in private mount namespaces (unshare -m), so nothing
here disturbs the host or other tests."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

FLAGS = ["--trace", "--pin-dir", "--max-sessions", "--beat-interval", "--events-ring-size",
         "--beats-ring-size", "--verbose", "--help"]

# Run a command in a private mount namespace after a set-up script; the
# script ends with `exec "$@"`, so the process is the daemon itself.
UMOUNT_BPFFS = "while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf || exit 97; done"


def in_private_mounts(script):
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            script + '\nexec "$@"', "sh"]


def test_help():
    p = t.run_connbeatd("--help")
    t.eq(p.returncode, 0, "--help exits 0")
    missing = [f for f in FLAGS if f not in p.stdout]
    t.eq(missing, [], "--help lists every flag", p.stdout)


def test_usage_errors():
    cases = [
        (["--bogus"], "--bogus"),
        (["-x"], "-x"),
        (["--trace", "--beats-ring-size", "1000"], "--beats-ring-size"),
        (["--trace", "--events-ring-size", "12K"], "power of two"),
        (["--trace", "--max-sessions", "0"], "--max-sessions"),
        (["--trace", "--max-sessions", "12abc"], "--max-sessions"),
        (["--trace", "--beat-interval", "soon"], "--beat-interval"),
        (["--trace", "--pin-dir", "relative/dir"], "--pin-dir"),
        (["--trace", "--pin-dir"], "--pin-dir"),
        (["--trace", "stray"], "stray"),
    ]
    for args, needle in cases:
        p = t.run_connbeatd(*args)
        t.ok(p.returncode == 2 and needle in p.stderr and "Usage:" in p.stderr,
             "usage error exits 2 naming it: %s" % " ".join(args),
             "exit %d" % p.returncode, p.stderr[:300])


def test_socket_in_use():
    """A second session daemon (own pin dir) on a socket another daemon
    serves is refused, and the first keeps serving."""
    with t.Daemon(trace=False) as d:
        pin = t.unique_pin_dir()
        p = t.run_connbeatd("--pin-dir", pin, "--socket", d.socket_path, "--metrics", "off",
                            timeout=30)
        t.remove_pin_dir(pin)
        t.eq(p.returncode, 1, "second daemon on a live control socket exits 1", p.stderr)
        t.ok("in use" in p.stderr or "serving" in p.stderr or "another" in p.stderr,
             "and says the socket is taken", p.stderr)
        t.eq(d.cli("stats").returncode, 0, "the first daemon still answers")


def test_second_daemon_refused():
    with t.Daemon("--max-sessions", "1024") as d:
        p = t.run_connbeatd("--trace", "--pin-dir", d.pin_dir, "--max-sessions", "1024")
        t.eq(p.returncode, 1, "second daemon on the same pin dir exits 1", p.stderr)
        t.ok("in use" in p.stderr and str(d.pid) in p.stderr,
             "it says the pin dir is in use, by which pid", p.stderr)
        t.ok(d.proc.poll() is None, "the first daemon keeps running")
        d.stop()
        # Once the first is gone, the lock is free again.
        d2 = t.Daemon("--max-sessions", "1024", pin_dir=d.pin_dir)
        try:
            d2.start(wait=False)
            t.ok(d2.wait_stderr(t.Daemon.READY, 20) and d2.proc.poll() is None,
                 "after the first exits, the pin dir can be taken", d2.stderr_text())
        finally:
            d2.stop()


def test_sigint():
    with t.Daemon("--max-sessions", "1024") as d:
        t.eq(d.stop(signal.SIGINT), 0, "--trace exits 0 on SIGINT")
        t.ok(d.summary() is not None, "and prints its final stats")


def test_kill9_releases_lock():
    with t.Daemon("--max-sessions", "1024") as d:
        t.eq(d.stop(signal.SIGKILL), -signal.SIGKILL, "the first daemon is killed with -9")
        d2 = t.Daemon("--max-sessions", "1024", pin_dir=d.pin_dir)
        try:
            d2.start(wait=False)
            t.ok(d2.wait_stderr(t.Daemon.READY, 20) and d2.proc.poll() is None,
                 "kill -9 leaves no stale lock", d2.stderr_text())
        finally:
            d2.stop()


def test_not_root():
    p = t.run_connbeatd("--trace", "--pin-dir", t.unique_pin_dir(),
                        prefix=["setpriv", "--reuid=65534", "--regid=65534",
                                "--clear-groups", "--inh-caps=-all"])
    t.eq(p.returncode, 1, "not root: exit 1", p.stderr)
    t.ok("root" in p.stderr and "sudo" in p.stderr, "not root: says so and what to do",
         p.stderr)


def test_no_btf():
    # Hide the kernel's BTF behind an empty tmpfs, in a private namespace.
    pin = t.unique_pin_dir()
    p = t.run_connbeatd("--trace", "--pin-dir", pin,
                        prefix=in_private_mounts("mount -t tmpfs none /sys/kernel/btf"))
    t.eq(p.returncode, 1, "no BTF: exit 1", p.stderr)
    t.ok("BTF" in p.stderr and "CONFIG_DEBUG_INFO_BTF" in p.stderr,
         "no BTF: says so and what is needed", p.stderr)
    t.ok(not os.path.exists(pin), "no BTF: nothing created")


def test_bpffs_mounted_by_daemon():
    pin = "/sys/fs/bpf/connbeat-test-%d-mnt" % os.getpid()
    d = t.Daemon("--max-sessions", "1024", pin_dir=pin, prefix=in_private_mounts(UMOUNT_BPFFS))
    try:
        d.start()
        t.ok("mounted bpffs on /sys/fs/bpf" in d.stderr_text(),
             "bpffs absent: the daemon mounts it", d.stderr_text())
        fstype = subprocess.run(["nsenter", "-t", str(d.pid), "-m", "stat", "-f", "-c", "%T",
                                 "/sys/fs/bpf"], capture_output=True, text=True).stdout.strip()
        t.eq(fstype, "bpf_fs", "bpffs absent: /sys/fs/bpf is a bpffs in its namespace")
        pins = subprocess.run(["nsenter", "-t", str(d.pid), "-m", "ls", pin],
                              capture_output=True, text=True).stdout.split()
        t.eq(sorted(pins), ["beats", "events", "heartbeats", "lost", "stats"],
             "bpffs absent: the maps are pinned there")
        t.eq(d.stop(), 0, "bpffs absent: exits 0 on SIGTERM")
    finally:
        d.cleanup()


def test_bpffs_not_mountable():
    # A read-only, empty /sys/fs: /sys/fs/bpf is gone and cannot be made.
    script = UMOUNT_BPFFS + "\nmount -t tmpfs -o ro,size=64k none /sys/fs || exit 98"
    p = t.run_connbeatd("--trace", "--pin-dir", "/sys/fs/bpf/connbeat-test-ro",
                        prefix=in_private_mounts(script))
    t.eq(p.returncode, 1, "bpffs not mountable: exit 1", p.stderr)
    t.ok("cannot mount bpffs" in p.stderr and "mount -t bpf bpf /sys/fs/bpf" in p.stderr,
         "bpffs not mountable: says so and how to mount it by hand", p.stderr)


def test_pin_dir_not_on_bpffs():
    p = t.run_connbeatd("--trace", "--pin-dir", "/tmp/connbeat-test-%d" % os.getpid())
    t.eq(p.returncode, 1, "pin dir outside bpffs: exit 1", p.stderr)
    t.ok("not on a bpffs" in p.stderr, "pin dir outside bpffs: says so", p.stderr)


t.run(test_help, test_usage_errors, test_socket_in_use, test_second_daemon_refused, test_sigint,
      test_kill9_releases_lock, test_not_root, test_no_btf, test_bpffs_mounted_by_daemon,
      test_bpffs_not_mountable, test_pin_dir_not_on_bpffs)
t.done()
