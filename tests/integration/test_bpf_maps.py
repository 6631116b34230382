#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The pinned maps, read with bpftool: heartbeats entries live exactly as
long as their connection and print with field names; sockets older than
the programs are seeded; pinned maps survive a restart and are recreated
when their size or layout no longer matches."""
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

HB_FIELDS = {"last_data_ns", "last_seen_ns", "pid", "beat_stamp", "flags", "__pad0", "__pad1"}
HB_SIZE = 32


def closed(d, *cookies):
    return all(d.wait_for(lambda r, c=c: r["cookie"] == c and r["kind"] == "CLOSE", 10)
               for c in cookies)


def test_entries_live_and_vanish():
    with t.Daemon("--max-sessions", "1024") as d:
        c, a, lst = t.tcp_pair(4)
        cc, ac = t.cookie(c), t.cookie(a)
        t.send_bytes(c, 3000)
        t.recv_bytes(a, 3000)
        t.send_bytes(a, 11)
        t.recv_bytes(c, 11)
        hb = t.heartbeats(d.pin_dir)
        t.ok(cc in hb and ac in hb, "heartbeats: both sides have an entry while open",
             sorted(hb))
        raw = t.map_dump(d.pin_dir + "/heartbeats")
        fields = set(raw[0]["formatted"]["values"][0]["value"]) if raw else set()
        t.eq(fields, HB_FIELDS, "heartbeats: bpftool prints the value's field names (BTF)")
        t.ok(raw and raw[0]["formatted"]["key"].keys() == {"cookie"},
             "heartbeats: the key prints as {cookie}")
        if cc in hb and ac in hb:
            t.eq(hb[cc]["pid"], os.getpid(), "heartbeats: client entry names our pid")
            t.ok(hb[cc]["last_data_ns"] > 0 and hb[cc]["last_seen_ns"] >= hb[cc]["last_data_ns"],
                 "heartbeats: both clocks set, last_seen >= last_data", hb[cc])
            t.eq(hb[cc]["flags"] & t.HBF_SEEDED, 0, "heartbeats: not seeded (OPEN was seen)")
            t.eq(len(hb[cc]["percpu"]), t.possible_cpus(),
                 "heartbeats: one slot per possible CPU")
        c.close()
        t.wait_eof(a)
        a.close()
        lst.close()
        t.ok(closed(d, cc, ac), "heartbeats: CLOSE seen")
        # the byte counts are the kernel's (tcp_sock), read at the CLOSE
        zc = [r for r in d.records_for(cc) if r["kind"] == "CLOSE"][-1]
        za = [r for r in d.records_for(ac) if r["kind"] == "CLOSE"][-1]
        # bytes_acked counts the client's SYN and each side's FIN; bytes_received
        # counts the FIN it received (the server's SYN-ACK is acked before the
        # child socket exists)
        t.eq((zc["tx"], zc["rx"]), (3002, 12), "heartbeats: client CLOSE counts tx/rx exactly "
             "(payload, SYN, FINs)", zc["line"])
        t.eq((za["tx"], za["rx"]), (12, 3001), "heartbeats: server CLOSE counts tx/rx exactly",
             za["line"])
        hb = t.heartbeats(d.pin_dir)
        t.ok(cc not in hb and ac not in hb, "heartbeats: entries vanish after close", sorted(hb))


def test_seeded_preexisting():
    # A connection opened before the programs: its first heartbeat seeds the
    # entry (CB_HBF_SEEDED) and its BEAT carries the tuple; its CLOSE carries
    # the kernel's totals, bytes moved before the programs included.
    c, a, lst = t.tcp_pair(6)
    cc = t.cookie(c)
    t.send_bytes(c, 200)
    t.recv_bytes(a, 200)
    with t.Daemon("--max-sessions", "1024") as d:
        t.send_bytes(c, 500)
        t.recv_bytes(a, 500)
        beat = d.wait_for(lambda r: r["cookie"] == cc and r["kind"] == "BEAT", 10)
        if t.ok(beat, "seeded: a BEAT for the pre-existing connection"):
            t.eq((beat["src"], beat["sport"], beat["dst"], beat["dport"]),
                 t.endpoint(c) + t.peer(c), "seeded: the BEAT carries the tuple")
        hb = t.heartbeats(d.pin_dir)
        t.ok(cc in hb and hb[cc]["flags"] & t.HBF_SEEDED, "seeded: entry flagged SEEDED",
             hb.get(cc))
        st = t.stats(d.pin_dir)
        t.ok(st[t.STAT_MAP_SEEDED] >= 2, "seeded: stats counts seeded entries", st)
        c.close()
        t.wait_eof(a)
        a.close()
        lst.close()
        t.ok(closed(d, cc), "seeded: its CLOSE is reported")
        z = [r for r in d.records_for(cc) if r["kind"] == "CLOSE"][-1]
        t.eq(z["tx"], 702, "seeded: its CLOSE counts every byte, those before the programs too",
             z["line"])
        t.ok(cc not in t.heartbeats(d.pin_dir), "seeded: entry deleted at close")


def test_restart_reuses_maps():
    pin = t.unique_pin_dir()
    try:
        d = t.Daemon("--max-sessions", "1024", pin_dir=pin).start()
        c, a, lst = t.tcp_pair(4)
        cc = t.cookie(c)
        t.send_bytes(c, 77)
        t.recv_bytes(a, 77)
        map_id = t.map_show(pin + "/heartbeats")["id"]
        t.eq(d.stop(), 0, "restart: first daemon exits 0")
        before = t.heartbeats(pin)
        t.ok(cc in before, "restart: the pinned entry outlives the daemon")
        d2 = t.Daemon("--max-sessions", "1024", pin_dir=pin).start()
        t.eq(t.map_show(pin + "/heartbeats")["id"], map_id,
             "restart: the same pinned map is reused")
        t.ok("does not match" not in d2.stderr_text(), "restart: no recreation warning",
             d2.stderr_text())
        hb = t.heartbeats(pin)
        t.eq(hb.get(cc, {}).get("last_data_ns"), before.get(cc, {}).get("last_data_ns", -1),
             "restart: its clocks are intact")
        c.close()
        t.wait_eof(a)
        a.close()
        lst.close()
        t.ok(closed(d2, cc), "restart: the second daemon sees the close")
        t.ok(cc not in t.heartbeats(pin), "restart: entry deleted at close")
        t.eq(d2.stop(), 0, "restart: second daemon exits 0")
    finally:
        t.remove_pin_dir(pin)


def test_recreate_on_mismatch():
    pin = t.unique_pin_dir()
    try:
        os.makedirs(pin)
        # Right type and sizes but no BTF (bpftool map create): bpftool could
        # not print field names, so it is recreated.
        subprocess.run(["bpftool", "map", "create", pin + "/heartbeats", "type",
                        "lru_percpu_hash", "key", "8", "value", str(HB_SIZE), "entries", "1024",
                        "name", "heartbeats"], check=True)
        # A value size of another ABI.
        subprocess.run(["bpftool", "map", "create", pin + "/stats", "type", "percpu_array",
                        "key", "4", "value", "4", "entries", "8", "name", "stats"], check=True)
        with t.Daemon("--max-sessions", "1024", pin_dir=pin) as d:
            err = d.stderr_text()
            t.ok("heartbeats does not match" in err and "no BTF" in err,
                 "mismatch: BTF-less heartbeats is recreated, with a warning", err)
            t.ok("stats does not match" in err and "value size" in err,
                 "mismatch: stats of another value size is recreated", err)
            info = t.map_show(pin + "/heartbeats")
            t.ok(info.get("btf_id") and info["bytes_value"] == HB_SIZE,
                 "mismatch: the new heartbeats map has BTF", info)
            t.eq(t.map_show(pin + "/stats")["bytes_value"], 8, "mismatch: new stats map")
            t.eq(d.stop(), 0, "mismatch: daemon runs and exits 0")
        # A different --max-sessions: recreated with the new size.
        with t.Daemon("--max-sessions", "2048", pin_dir=pin) as d:
            t.ok("1024 entries, want 2048" in d.stderr_text(),
                 "resize: --max-sessions change recreates heartbeats", d.stderr_text())
            t.eq(t.map_show(pin + "/heartbeats")["max_entries"], 2048, "resize: new size")
            t.ok("2048 entries x" in d.stderr_text(), "resize: kernel memory logged")
        # A different ring size: recreated too.
        with t.Daemon("--max-sessions", "2048", "--beats-ring-size", "64K", pin_dir=pin) as d:
            t.eq(t.map_show(pin + "/beats")["max_entries"], 65536,
                 "resize: --beats-ring-size change recreates the ring")
    finally:
        t.remove_pin_dir(pin)


def test_destroy_repairs_missed_close():
    # A heartbeats entry still present when the socket is destroyed means its
    # CLOSE run was missed (or a late heartbeat re-created it): the destroy
    # program deletes it and reports the close. Plant such an entry for a
    # socket that never connected, then close the socket.
    with t.Daemon("--max-sessions", "1024") as d:
        s = socket.socket()
        ck = t.cookie(s)
        key = struct.pack("<Q", ck)
        val = struct.pack("<QQIIHHI", 100, 200, 7, 0, 0, 0, 0)
        assert len(val) == HB_SIZE
        subprocess.run(["bpftool", "map", "update", "pinned", d.pin_dir + "/heartbeats",
                        "key", "hex"] + ["%02x" % b for b in key] + ["value", "hex"]
                       + ["%02x" % b for b in val], check=True)
        t.ok(ck in t.heartbeats(d.pin_dir), "destroy: planted entry is there")
        s.close()
        r = d.wait_for(lambda r: r["cookie"] == ck, 10)
        if t.ok(r, "destroy: a record for the destroyed socket"):
            t.eq((r["kind"], r["new"], "destroy" in r["flags"]), ("CLOSE", "CLOSE", True),
                 "destroy: it is a CLOSE flagged destroy", r["line"])
            t.eq((r["tx"], r["rx"]), (0, 0),
                 "destroy: it carries the kernel's counters (none: it never connected)")
        t.ok(ck not in t.heartbeats(d.pin_dir), "destroy: the entry is deleted")
        t.eq([x for x in d.records_for(ck) if x["kind"] == "CLOSE"], [r] if r else [],
             "destroy: exactly one CLOSE")


def test_keepalives_are_not_data():
    # A connection kept up by TCP keepalives only: the probes (a 1-byte
    # segment below rcv_nxt) and their ACKs are signs of life, not data. The
    # receiving side's last_seen moves on, its last_data stays at the
    # payload's time. The default map size: the test idles for seconds,
    # and the heartbeats map is an LRU that every TCP socket of the host
    # with activity meanwhile (another test's closing ones) may enter; at
    # 1024 entries ours was evicted, and re-seeded by the next probe
    # without its data time.
    with t.Daemon("--beat-interval", "0") as d:
        c, a, lst = t.tcp_pair(4)
        ac = t.cookie(a)
        t.send_bytes(c, 10)
        t.recv_bytes(a, 10)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        first = t.heartbeats(d.pin_dir).get(ac, {})
        # two probes at least: last_seen passes last_data by over a second
        probed = t.wait_until(lambda: t.heartbeats(d.pin_dir).get(ac, {}).get("last_seen_ns", 0)
                              > first.get("last_data_ns", 0) + 1500 * 1000 * 1000, 15, 0.1)
        hb = t.heartbeats(d.pin_dir).get(ac, {})
        t.ok(probed, "keepalive: the probes are seen (last_seen moves on)", first, hb)
        t.eq(hb.get("last_data_ns"), first.get("last_data_ns"),
             "keepalive: the probes are not data (last_data unchanged)",
             "before: %r" % first, "after: %r" % hb,
             "records: %r" % [r["line"] for r in d.records_for(ac)])
        for s in (c, a, lst):
            s.close()


def test_data_clock_follows_segments():
    # With the default beat interval the heartbeat is stamped at most once
    # per socket per jiffy (the kernel's own clocks say when it already was):
    # a burst in a new jiffy must still move both sides' last_data — the
    # receiver's by the payload, the sender's by the ACKs of its payload
    # (the programs do not hook send/recv calls). A jiffy is 1-10 ms; the
    # programs' clock is at most one behind the true time.
    with t.Daemon() as d:
        c, a, lst = t.tcp_pair(4)
        cc, ac = t.cookie(c), t.cookie(a)
        late = {}
        for rnd in range(5):
            time.sleep(0.03)  # the next burst starts in a later jiffy
            t0 = time.monotonic_ns() - 10 * 1000 * 1000
            for _ in range(100):
                c.sendall(b"x" * 100)
            t.recv_bytes(a, 100 * 100)

            def fresh():
                hb = t.heartbeats(d.pin_dir)
                return all(hb.get(k, {}).get("last_data_ns", 0) >= t0 for k in (cc, ac))
            if not t.wait_until(fresh, 5, 0.01):
                late[rnd] = {k: t.heartbeats(d.pin_dir).get(k) for k in (cc, ac)}
        t.eq(late, {}, "data clock: every burst moves the receiver's and the sender's "
             "last_data (payload, ACKs of payload)")
        for s in (c, a, lst):
            s.close()


t.run(test_entries_live_and_vanish, test_keepalives_are_not_data, test_data_clock_follows_segments, test_seeded_preexisting, test_restart_reuses_maps,
      test_recreate_on_mismatch, test_destroy_repairs_missed_close)
t.done()
