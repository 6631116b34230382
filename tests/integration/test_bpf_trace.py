#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The kernel records, seen through `connbeatd --trace`, for real loopback
connections: lifecycle of both sides (v4, v6, v4-mapped), exact byte
counts, resets, half-close, and a clean exit on SIGTERM after draining."""
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

    # Active side: OPEN in connect() (process context, before the local port
    # is chosen), then ESTABLISHED and the full tuple, ..., CLOSE last.
    if t.ok(len(crec) >= 3, "%s: active side has open, established and close" % label,
            kinds(crec), ctx):
        o = crec[0]
        t.eq((o["kind"], o["old"], o["new"]), ("OPEN", "CLOSE", "SYN_SENT"),
             "%s: active OPEN is CLOSE>SYN_SENT" % label)
        check_tuple("%s: active OPEN addresses and peer port" % label, o, cf,
                    (csrc[0], None), cdst)
        t.eq((o.get("pid"), o.get("comm"), "proc" in o["flags"]),
             (os.getpid(), t.self_comm(), True), "%s: active OPEN names the process" % label)
        e = crec[1]
        t.eq((e["kind"], e["old"], e["new"]), ("STATE", "SYN_SENT", "ESTABLISHED"),
             "%s: active side then ESTABLISHED" % label)
        check_tuple("%s: active ESTABLISHED has the full tuple" % label, e, cf, csrc, cdst)
        z = crec[-1]
        t.eq((z["kind"], z["new"]), ("CLOSE", "CLOSE"), "%s: active side ends with CLOSE" % label)
        check_tuple("%s: active CLOSE has the full tuple" % label, z, cf, csrc, cdst)
        t.eq((z.get("tx"), z.get("rx")), (4, 0), "%s: active CLOSE counts 4 bytes sent" % label)
        t.eq([r["new"] for r in crec[2:]], ["FIN_WAIT1", "FIN_WAIT2", "CLOSE"],
             "%s: active close goes FIN_WAIT1, FIN_WAIT2, CLOSE (no TIME_WAIT event)" % label,
             ctx)
    # Passive side: the child is born LISTEN>SYN_RECV with the full tuple.
    if t.ok(len(arec) >= 3, "%s: passive side has open, established and close" % label,
            kinds(arec), ctx):
        o = arec[0]
        t.eq((o["kind"], o["old"], o["new"]), ("OPEN", "LISTEN", "SYN_RECV"),
             "%s: passive OPEN is LISTEN>SYN_RECV" % label)
        check_tuple("%s: passive OPEN has the full tuple" % label, o, sf, asrc, adst)
        t.ok("proc" not in o["flags"], "%s: passive OPEN claims no process (softirq)" % label)
        t.eq((arec[1]["old"], arec[1]["new"]), ("SYN_RECV", "ESTABLISHED"),
             "%s: passive side then ESTABLISHED" % label)
        z = arec[-1]
        t.eq(z["kind"], "CLOSE", "%s: passive side ends with CLOSE" % label)
        check_tuple("%s: passive CLOSE has the full tuple" % label, z, sf, asrc, adst)
        t.eq((z.get("tx"), z.get("rx")), (0, 4), "%s: passive CLOSE counts 4 bytes read" % label)
        t.eq([r["new"] for r in arec[2:]], ["CLOSE_WAIT", "LAST_ACK", "CLOSE"],
             "%s: passive close goes CLOSE_WAIT, LAST_ACK, CLOSE" % label, ctx)
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
    # While open: the last BEAT of each side carries the exact totals (with
    # --beat-interval 0 every send/recv beats, after counting its bytes).
    ok_c = D.wait_for(lambda r: r["cookie"] == cc and r["kind"] == "BEAT"
                      and r["tx"] == n_up and r["rx"] == n_down, 10)
    ok_a = D.wait_for(lambda r: r["cookie"] == ac and r["kind"] == "BEAT"
                      and r["rx"] == n_up and r["tx"] == n_down, 10)
    beats_c = [(r["tx"], r["rx"]) for r in D.records_for(cc) if r["kind"] == "BEAT"]
    t.ok(ok_c, "bytes: a client BEAT carries tx=%d rx=%d" % (n_up, n_down), beats_c[-5:])
    t.ok(ok_a, "bytes: a server BEAT carries rx=%d tx=%d" % (n_up, n_down))
    t.ok(all(tx <= n_up and rx <= n_down for tx, rx in beats_c),
         "bytes: no client BEAT counts more than was sent")
    t.ok(any("data" in r["flags"] and "proc" in r["flags"] and r.get("pid") == os.getpid()
             for r in D.records_for(cc) if r["kind"] == "BEAT"),
         "bytes: send/recv BEATs are flagged data+proc with our pid")
    t.ok(any("proc" not in r["flags"] for r in D.records_for(ac) if r["kind"] == "BEAT"),
         "bytes: segment (tcp_probe) BEATs claim no process")
    c.close()
    a.close()
    lst.close()
    t.ok(wait_closed(cc, ac), "bytes: both CLOSE records seen")
    zc = [r for r in D.records_for(cc) if r["kind"] == "CLOSE"][-1]
    za = [r for r in D.records_for(ac) if r["kind"] == "CLOSE"][-1]
    t.eq((zc["tx"], zc["rx"]), (n_up, n_down), "bytes: client CLOSE tx/rx exact", zc["line"])
    t.eq((za["tx"], za["rx"]), (n_down, n_up), "bytes: server CLOSE tx/rx exact", za["line"])
    t.ok(zc["segs_out"] > 0 and za["segs_in"] > 0, "bytes: CLOSE carries tcp_sock segments")


def test_rst():
    c, a, lst = t.tcp_pair(4)
    cc, ac = t.cookie(c), t.cookie(a)
    t.close_rst(c)
    got = D.wait_for(lambda r: r["cookie"] == ac and r["kind"] == "RESET", 10)
    if t.ok(got, "rst: the peer's RESET record is seen"):
        t.ok("rst_received" in got["flags"], "rst: flagged rst_received", got["line"])
        t.eq(got.get("resets"), 1, "rst: the receiver counts one reset")
    sent = D.wait_for(lambda r: r["cookie"] == cc and r["kind"] == "RESET", 10)
    if t.ok(sent, "rst: the sender's RESET record is seen"):
        t.ok("rst_sent" in sent["flags"], "rst: flagged rst_sent", sent["line"])
    t.ok(wait_closed(cc, ac), "rst: both sides CLOSE")
    za = [r for r in D.records_for(ac) if r["kind"] == "CLOSE"][-1]
    t.eq((za["old"], za.get("resets")), ("ESTABLISHED", 1),
         "rst: receiver goes ESTABLISHED>CLOSE with resets=1")
    a.close()
    lst.close()


def test_refused():
    # connect() to a closed port: OPEN, the peer's RST, CLOSE from SYN_SENT.
    lst = t.tcp_listener(4)
    port = lst.getsockname()[1]
    lst.close()
    c = socket.socket()
    cc = t.cookie(c)
    try:
        c.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        pass
    t.ok(wait_closed(cc), "refused: CLOSE seen")
    recs = [r for r in D.records_for(cc) if r["kind"] != "BEAT"]
    t.eq([(r["kind"], r["new"]) for r in recs],
         [("OPEN", "SYN_SENT"), ("RESET", "SYN_SENT"), ("CLOSE", "CLOSE")],
         "refused: OPEN, RESET (received), CLOSE", [r["line"] for r in recs])
    c.close()


def test_retransmit():
    # A listener whose accept queue is full drops the next SYN, so the
    # client retransmits it after the initial RTO (1 s): one RETRANS on the
    # beats ring, counted by the kernel's tcp_sock.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    c1 = socket.create_connection(lst.getsockname())
    c2 = socket.socket()
    c2.setblocking(False)
    c2.connect_ex(lst.getsockname())
    cc = t.cookie(c2)
    r = D.wait_for(lambda r: r["cookie"] == cc and r["kind"] == "RETRANS", 10)
    if t.ok(r, "retransmit: RETRANS record for the SYN dropped by a full backlog"):
        t.eq((r["new"], r["dport"]), ("SYN_SENT", lst.getsockname()[1]),
             "retransmit: in SYN_SENT, towards the listener", r["line"])
        t.ok(r["retrans"] >= 1 and r["segs_out"] >= 2, "retransmit: counted", r["line"])
    c2.close()
    c1.close()
    lst.close()
    t.ok(wait_closed(cc), "retransmit: the client's CLOSE is seen")


def test_half_close():
    c, a, lst = t.tcp_pair(6)
    cc, ac = t.cookie(c), t.cookie(a)
    t.half_close(c)
    t.wait_eof(a)
    got = D.wait_for(lambda r: r["cookie"] == ac and r["new"] == "CLOSE_WAIT", 10)
    t.ok(got, "half-close: the server is seen entering CLOSE_WAIT")
    got = D.wait_for(lambda r: r["cookie"] == cc and r["new"] == "FIN_WAIT2", 10)
    t.ok(got, "half-close: the client is seen entering FIN_WAIT2")
    # Data still flows the other way, and is counted.
    t.send_bytes(a, 7000)
    t.recv_bytes(c, 7000)
    a.close()
    c.close()
    lst.close()
    t.ok(wait_closed(cc, ac), "half-close: both CLOSE")
    zc = [r for r in D.records_for(cc) if r["kind"] == "CLOSE"][-1]
    t.eq(zc["rx"], 7000, "half-close: client read 7000 bytes after its FIN", zc["line"])


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
          test_retransmit, test_half_close, test_sigterm)
finally:
    D.cleanup()
t.done()
