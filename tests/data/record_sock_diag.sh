#!/usr/bin/env bash
# Re-create tests/data/sock_diag_4.bin (see README). Needs root and a build.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/rec.c" <<'C'
#include <fcntl.h>
#include "sock_diag.h"
static int nop(const struct cb_diag_sock *s, void *c) { return 0; }
int main(int argc, char **argv)
{
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	return fd < 0 || cb_sock_diag_dump(CB_DIAG_SESSION_STATES, nop, 0, fd);
}
C
gcc -std=gnu11 -D_GNU_SOURCE -Iuser -Iinclude "$tmp/rec.c" build/libconnbeat.a -lmnl -o "$tmp/rec"
unshare -n bash -c "
ip link set lo up
python3 - '$tmp/rec' tests/data/sock_diag_4.bin <<'PY'
import socket, subprocess, sys, time
socks = []
for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
    l = socket.socket(fam); l.bind((host, 0)); l.listen()
    c = socket.create_connection((host, l.getsockname()[1])); a, _ = l.accept()
    socks += [l, c, a]
    if fam == socket.AF_INET:
        c.sendall(b'hello'); a.recv(5)
time.sleep(0.05)
subprocess.check_call(sys.argv[1:])
PY
"
echo "wrote tests/data/sock_diag_4.bin ($(stat -c %s tests/data/sock_diag_4.bin) bytes)"
