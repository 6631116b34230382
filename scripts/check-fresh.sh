#!/usr/bin/env bash
# check-fresh.sh — run `make check` on a fresh Debian 12 (bookworm) machine:
# a debootstrap minbase root with only make, sudo, ca-certificates and git,
# the committed source (git archive HEAD) copied in, then
# `apt-get update && sudo make check` inside, exactly as a new user would.
#
#   sudo scripts/check-fresh.sh [DIR]
#
# DIR (default: a new directory under /var/tmp) holds the root; it is
# removed at the end unless CONNBEAT_FRESH_KEEP=1. The root is entered with
# pivot_root inside a private mount namespace (unshare -m), not chroot:
# tests that `nsenter -m` into a child mount namespace would otherwise land
# on the host's root. /proc is bound, /sys and /dev are rbound, the root is
# bind-mounted on itself (pivot_root needs a mount point); every mount lives
# in that namespace only and goes with it. Prints make's summary line and
# exits with make's status. Not part of `make check` (it downloads a whole
# Debian base from the configured mirror): run it before a submission.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
	echo "check-fresh.sh: run as root (sudo scripts/check-fresh.sh): it debootstraps and mounts" >&2
	exit 2
fi
top=$(cd "$(dirname "$0")/.." && pwd)
mirror=${CONNBEAT_FRESH_MIRROR:-http://deb.debian.org/debian}
root=${1:-}
if [[ -z $root ]]; then
	root=$(mktemp -d /var/tmp/connbeat-fresh.XXXXXX)
elif [[ -e $root && -n $(ls -A "$root") ]]; then
	echo "check-fresh.sh: $root exists and is not empty; give a new directory" >&2
	exit 2
fi
mkdir -p "$root"
log=$root.log

cleanup() {
	# the namespace took its mounts with it; anything left is a bug, unmount it anyway
	if findmnt -R -n -o TARGET "$root" >/dev/null 2>&1; then
		umount -R -l "$root" 2>/dev/null || true
	fi
	if [[ ${CONNBEAT_FRESH_KEEP:-0} != 1 ]]; then
		rm -rf --one-file-system "$root"
	fi
}
trap cleanup EXIT

if ! command -v debootstrap >/dev/null 2>&1; then
	echo "check-fresh.sh: installing debootstrap"
	apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends debootstrap >/dev/null; }
fi

chmod 0755 "$root"
echo "check-fresh.sh: debootstrap bookworm (minbase) into $root (log: $log)"
if ! debootstrap --variant=minbase --include=make,sudo,ca-certificates,git bookworm "$root" \
	"$mirror" >"$log" 2>&1; then
	tail -20 "$log" >&2
	echo "check-fresh.sh: debootstrap failed (full log: $log)" >&2
	exit 1
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/src/connbeat"
git -C "$top" archive HEAD | tar -x -C "$root/src/connbeat"

echo "check-fresh.sh: apt-get update && sudo make check inside the fresh root"
set +e
unshare -m --propagation private bash -euc '
	root=$1
	mount --bind "$root" "$root"
	mount --bind /proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	mkdir -p "$root/.oldroot"
	cd "$root"
	pivot_root . .oldroot
	umount -l /.oldroot
	rmdir /.oldroot
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
	cd /src/connbeat
	apt-get update >/tmp/apt-update.log 2>&1 || { cat /tmp/apt-update.log; exit 1; }
	sudo make check
' check-fresh "$root" 2>&1 | tee -a "$log" | grep -E '^(FAIL|SKIP|[0-9]+ passed|make: \*\*\*)'
rc=${PIPESTATUS[0]}
set -e
echo "check-fresh.sh: make check exited $rc (full log: $log)"
exit "$rc"
