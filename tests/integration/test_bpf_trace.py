#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The kernel records, seen through `connbeatd --trace`, for real loopback
connections: lifecycle of both sides (v4, v6, v4-mapped), the kernel's own
byte and segment totals, resets, a refused connect (no record at all),
retransmits, half-close, a FIN_WAIT2 remnant, and a clean exit on SIGTERM
after draining.

The records are what the daemon needs when it happens (bpf/connbeat.bpf.c):
an OPEN when a side reaches ESTABLISHED, a STATE when it leaves
ESTABLISHED, a CLOSE; the later steps of a close are not reported. Counters
are the kernel's tcp_sock totals, as `ss -ti` prints them: bytes_acked
counts the SYN and the FIN of the side that sent them, bytes_received the
peer's FIN."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cbtest as t  # noqa: E402

t.skip_all_if_no_bpf()

# One daemon for the whole file; every event beats (--beat-interval 0), so
# that the byte counts of the last BEAT can be checked exactly.
D = t.Daemon("--beat-interval", "0", "--max-sessions", "4096")


def kinds(recs):
    return [r["kind"] for r in recs]


def lifecycle(recs):
    return [r for r in recs if r["kind"] in ("OPEN", "STATE", "CLOSE")]


def wait_closed(*cookies, timeout=10):
    for c in cookies:
        r = D.wait_for(lambda r, c=c: r["cookie"] == c and r["kind"] == "CLOSE", timeout)
        if not r:
            return False
    return True


def check_tuple(name, r, family, src, dst):
    """src/dst: (addr, port); port None: not checked (0 allowed)."""
    got = (r["family"], r["src"], r["sport"] if src[1] is not None else None,
           r["dst"], r["dport"])
    want = (family, src[0], src[1], dst[0], dst[1])
    return t.eq(got, want, name, r["line"])


def connection_lifecycle(family, listen_addr=None, connect_family=None, connect_addr=None,
                         want_client_family=None, want_server_family=None):
    label = "v%d" % family if not connect_family else "v%d-mapped" % family
    c, a, lst = t.tcp_pair(family, listen_addr, connect_family, connect_addr)
    cc, ac, lc = t.cookie(c), t.cookie(a), t.cookie(lst)
    csrc, cdst = t.endpoint(c), t.peer(c)
    asrc, adst = t.endpoint(a), t.peer(a)
    c.sendall(b"ping")
    t.recv_bytes(a, 4)
    c.close()
    t.wait_eof(a)
    a.close()
    lst.close()
    t.ok(wait_closed(cc, ac), "%s: CLOSE seen for both sides" % label, D.stderr_text())

    cf = want_client_family or family
    sf = want_server_family or family
    crec, arec = lifecycle(D.records_for(cc)), lifecycle(D.records_for(ac))
    ctx = "\n".join(r["line"] for r in crec + arec)  # diagnostics on failure

    # Active side: the OPEN once ESTABLISHED (connect() picks the local port
    # after SYN_SENT), with connect()'s pid; its close begins in FIN_WAIT1.
    t.eq([(r["kind"], r["old"], r["new"]) for r in crec],
         [("OPEN", "SYN_SENT", "ESTABLISHED"), ("STATE", "ESTABLISHED", "FIN_WAIT1"),
          ("CLOSE", "FIN_WAIT2", "CLOSE")],
         "%s: active side: OPEN at ESTABLISHED, the start of its close, CLOSE (nothing else, "
         "no TIME_WAIT)" % label, ctx)
    if crec:
        o = crec[0]
        check_tuple("%s: active OPEN has the full tuple" % label, o, cf, csrc, cdst)
        t.eq((o.get("pid"), "owner" in o["flags"], "proc" in o["flags"]),
             (os.getpid(), True, False), "%s: active OPEN names connect()'s process" % label,
             o["line"])
        t.ok(o.get("cgroup", 0) > 0, "%s: the OPEN carries the socket's cgroup" % label,
             o["line"])
        z = crec[-1]
        check_tuple("%s: active CLOSE has the full tuple" % label, z, cf, csrc, cdst)
        t.eq((z.get("tx"), z.get("rx")), (6, 1),
             "%s: active CLOSE: bytes_acked 4 + SYN + FIN, bytes_received the FIN" % label,
             z["line"])
        t.ok("remnant" not in z["flags"], "%s: a close after the peer's FIN leaves no remnant"
             % label)
    # Passive side: the child is reported once ESTABLISHED, with the full
    # tuple and no process (softirq; its owner is found by the daemon).
    t.eq([(r["kind"], r["old"], r["new"]) for r in arec],
         [("OPEN", "SYN_RECV", "ESTABLISHED"), ("STATE", "ESTABLISHED", "CLOSE_WAIT"),
          ("CLOSE", "LAST_ACK", "CLOSE")],
         "%s: passive side: OPEN at ESTABLISHED, CLOSE_WAIT, CLOSE" % label, ctx)
    if arec:
        o = arec[0]
        check_tuple("%s: passive OPEN has the full tuple" % label, o, sf, asrc, adst)
        t.ok("proc" not in o["flags"] and "owner" not in o["flags"],
             "%s: passive OPEN claims no process (softirq)" % label, o["line"])
        z = arec[-1]
        check_tuple("%s: passive CLOSE has the full tuple" % label, z, sf, asrc, adst)
        t.eq((z.get("tx"), z.get("rx")), (1, 5),
             "%s: passive CLOSE: bytes_acked its FIN, bytes_received 4 + the FIN" % label,
             z["line"])
    t.eq(D.records_for(lc), [], "%s: the listening socket produces no record" % label)
    netns = os.stat("/proc/self/ns/net").st_ino
    t.ok(all(r["netns"] == netns for r in crec + arec), "%s: netns inode is ours" % label)


def test_ipv4():
    connection_lifecycle(4)


def test_ipv6():
    connection_lifecycle(6)


def test_v4_mapped():
    # A dual-stack listener on :: accepting an IPv4 client: the accepted
    # socket is AF_INET6 with ::ffff:127.0.0.1 addresses, as ss shows it.
    c, a, lst = t.tcp_pair(6, listen_addr="::", connect_family=4, connect_addr="127.0.0.1")
    ac = t.cookie(a)
    want_src = ("::ffff:127.0.0.1", t.endpoint(a)[1])
    want_dst = ("::ffff:127.0.0.1", t.peer(a)[1])
    c.close()
    a.close()
    lst.close()
    t.ok(wait_closed(ac), "v4-mapped: CLOSE seen for the accepted socket")
    recs = lifecycle(D.records_for(ac))
    if t.ok(recs and recs[0]["kind"] == "OPEN", "v4-mapped: accepted side has an OPEN",
            [r["line"] for r in recs]):
        check_tuple("v4-mapped: OPEN is family 6 with ::ffff: addresses", recs[0], 6, want_src,
                    want_dst)


def test_bytes_exact():
    n_up, n_down = 1_000_003, 54_321
    c, a, lst = t.tcp_pair(4)
    cc, ac = t.cookie(c), t.cookie(a)
    t.send_bytes(c, n_up)
    t.recv_bytes(a, n_up)
    t.send_bytes(a, n_down)
    t.recv_bytes(c, n_down)
    # While open: BEATs carry the kernel's totals as of the segment they were
    # written for (--beat-interval 0: every segment beats; tcp_probe runs
    # before the segment is processed, so a BEAT never counts its own).
    ok_a = D.wait_for(lambda r: r["cookie"] == ac and r["kind"] == "BEAT"
                      and r["rx"] >= n_up - 65536, 10)
    beats_a = [(r["tx"], r["rx"]) for r in D.records_for(ac) if r["kind"] == "BEAT"]
    t.ok(ok_a, "bytes: the server's BEATs follow bytes_received up to its last segment",
         beats_a[-5:])
    t.eq([rx for _, rx in beats_a], sorted(rx for _, rx in beats_a),
         "bytes: bytes_received never goes back from one BEAT to the next")
    beats_c = [(r["tx"], r["rx"]) for r in D.records_for(cc) if r["kind"] == "BEAT"]
    t.ok(beats_c and max(tx for tx, _ in beats_c) > n_up // 2,
         "bytes: the client's BEATs (ACKs of its data) follow bytes_acked", beats_c[-5:])
    t.ok(all(tx <= n_up + 1 and rx <= n_down for tx, rx in beats_c) and
         all(tx <= n_down and rx <= n_up for tx, rx in beats_a),
         "bytes: no BEAT counts more than the kernel could")
    t.ok(any("data" in r["flags"] for r in D.records_for(cc) if r["kind"] == "BEAT"),
         "bytes: a client BEAT for the ACK of its data is flagged data")
    t.ok(not any("proc" in r["flags"] for c_ in (cc, ac) for r in D.records_for(c_)
                 if r["kind"] == "BEAT"),
         "bytes: segment (tcp_probe) BEATs claim no process")
    t.ok(all("counters" in r["flags"] and r.get("rtt_us", 0) > 0
             for r in D.records_for(cc) if r["kind"] == "BEAT"),
         "bytes: BEATs carry the kernel's counters and RTT")
    c.close()
    a.close()
    lst.close()
    t.ok(wait_closed(cc, ac), "bytes: both CLOSE records seen")
    zc = [r for r in D.records_for(cc) if r["kind"] == "CLOSE"][-1]
    za = [r for r in D.records_for(ac) if r["kind"] == "CLOSE"][-1]
    t.eq((zc["tx"], zc["rx"]), (n_up + 2, n_down + 1),
         "bytes: client CLOSE: the kernel's totals (SYN and FINs included)", zc["line"])
    t.eq((za["tx"], za["rx"]), (n_down + 1, n_up + 1),
         "bytes: server CLOSE: the kernel's totals (FINs included)", za["line"])
    t.ok(zc["segs_out"] > 0 and za["segs_in"] > 0, "bytes: CLOSE carries tcp_sock segments")


def test_rst():
    c, a, lst = t.tcp_pair(4)
    cc, ac = t.cookie(c), t.cookie(a)
    t.close_rst(c)
    got = D.wait_for(lambda r: r["cookie"] == ac and r["kind"] == "RESET", 10)
    if t.ok(got, "rst: the peer's RESET record is seen"):
        t.ok("rst_received" in got["flags"], "rst: flagged rst_received", got["line"])
    sent = D.wait_for(lambda r: r["cookie"] == cc and r["kind"] == "RESET", 10)
    if t.ok(sent, "rst: the sender's RESET record is seen"):
        t.ok("rst_sent" in sent["flags"], "rst: flagged rst_sent", sent["line"])
    t.ok(wait_closed(cc, ac), "rst: both sides CLOSE")
    za = [r for r in D.records_for(ac) if r["kind"] == "CLOSE"][-1]
    t.eq(za["old"], "ESTABLISHED", "rst: receiver goes ESTABLISHED>CLOSE", za["line"])
    a.close()
    lst.close()


def test_refused():
    # connect() to a closed port: a handshake that never completed is not a
    # session: no record at all (the programs still created and deleted a
    # heartbeats entry for it).
    lst = t.tcp_listener(4)
    port = lst.getsockname()[1]
    lst.close()
    c = socket.socket()
    cc = t.cookie(c)
    try:
        c.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        pass
    c.close()
    # a marker connection after it: once its OPEN is read, anything of the
    # refused one would have been too
    m, ma, ml = t.tcp_pair(4)
    t.ok(D.wait_for(lambda r: r["cookie"] == t.cookie(m) and r["kind"] == "OPEN", 10),
         "refused: a later connection is seen")
    t.eq([r["line"] for r in D.records_for(cc)], [], "refused: no record for it")
    t.ok(cc not in t.heartbeats(D.pin_dir), "refused: no heartbeats entry left behind")
    for s in (m, ma, ml):
        s.close()


def test_retransmit():
    # A listener whose accept queue is full drops the next SYN, so the
    # client retransmits it after the initial RTO (1 s); once accepted, its
    # OPEN carries the kernel's count of that retransmission.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    c1 = socket.create_connection(lst.getsockname())
    c2 = socket.socket()
    c2.setblocking(False)
    c2.connect_ex(lst.getsockname())
    cc = t.cookie(c2)
    a1, _ = lst.accept()  # room for c2's retransmitted SYN
    r = D.wait_for(lambda r: r["cookie"] == cc and r["kind"] == "OPEN", 15)
    if t.ok(r, "retransmit: the client's OPEN, after its SYN was retransmitted"):
        t.ok(r["retrans"] >= 1 and r["segs_out"] >= 2,
             "retransmit: the OPEN counts the kernel's retransmission", r["line"])
    for s in (c2, c1, a1, lst):
        s.close()
    t.ok(wait_closed(cc), "retransmit: the client's CLOSE is seen")


def test_half_close():
    c, a, lst = t.tcp_pair(6)
    cc, ac = t.cookie(c), t.cookie(a)
    t.half_close(c)
    t.wait_eof(a)
    got = D.wait_for(lambda r: r["cookie"] == ac and r["new"] == "CLOSE_WAIT", 10)
    t.ok(got, "half-close: the server is seen entering CLOSE_WAIT")
    got = D.wait_for(lambda r: r["cookie"] == cc and r["new"] == "FIN_WAIT1", 10)
    t.ok(got, "half-close: the client is seen starting its close (FIN_WAIT1)")
    # Data still flows the other way, and is counted.
    t.send_bytes(a, 7000)
    t.recv_bytes(c, 7000)
    a.close()
    c.close()
    lst.close()
    t.ok(wait_closed(cc, ac), "half-close: both CLOSE")
    zc = [r for r in D.records_for(cc) if r["kind"] == "CLOSE"][-1]
    t.eq(zc["rx"], 7001, "half-close: client received 7000 bytes and the FIN after its own FIN",
         zc["line"])


def test_remnant():
    # We close first and the peer never does: the kernel hands our side to a
    # FIN_WAIT2 timewait socket (same cookie): its CLOSE says so.
    c, a, lst = t.tcp_pair(4)
    cc = t.cookie(c)
    c.close()
    t.wait_eof(a)
    z = D.wait_for(lambda r: r["cookie"] == cc and r["kind"] == "CLOSE", 10)
    if t.ok(z, "remnant: the closer's CLOSE is seen"):
        t.ok("remnant" in z["flags"] and z["old"] == "FIN_WAIT2",
             "remnant: a close before the peer's FIN is flagged remnant", z["line"])
    ss = t.ss_socks([lst.getsockname()[1]])
    t.eq(ss.get(cc, {}).get("state"), "FIN_WAIT2",
         "remnant: the kernel keeps it as FIN_WAIT2 under the same cookie")
    a.close()
    lst.close()


def test_sigterm():
    rc = D.stop(signal.SIGTERM)
    t.eq(rc, 0, "--trace exits 0 on SIGTERM", D.stderr_text())
    sm = D.summary()
    if t.ok(sm, "final per-ring stats printed on stderr", D.stderr_text()):
        t.eq(sm["invalid"], 0, "no invalid records")
        t.eq(sm["events_dropped"], 0, "events ring dropped nothing")
        # A fresh pin dir: everything emitted was read (the drain works).
        t.eq(sm["read_events"], sm["events_emitted"], "every events record emitted was read")
        t.eq(sm["read_beats"], sm["beats_emitted"], "every beats record emitted was read")

try:
    D.start()
    t.run(test_ipv4, test_ipv6, test_v4_mapped, test_bytes_exact, test_rst, test_refused,
          test_retransmit, test_half_close, test_remnant, test_sigterm)
finally:
    D.cleanup()
t.done()
