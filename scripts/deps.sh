#!/usr/bin/env bash
# deps.sh — make sure every package connbeat needs is installed.
#
#   scripts/deps.sh build   what `make` needs
#   scripts/deps.sh check   + what `make check` needs (test tools, sanitizer runtimes)
#   scripts/deps.sh bench   + what `make bench` needs (the tracers we compare against)
#
# On Debian/Ubuntu the missing packages are installed with apt-get (run as
# root: `sudo make ...`). Elsewhere it prints the Debian package names so the
# equivalents can be installed by hand, and fails.
set -euo pipefail

level=${1:-build}

build_pkgs=(make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	libmnl-dev libmicrohttpd-dev linux-libc-dev)
# Every program a test runs (tests/integration, tests/run): python3; ss and ip
# (iproute2); unshare, nsenter, setpriv, mountpoint, findmnt (util-linux);
# mount/umount (mount); kill (procps); valgrind; promtool and prometheus
# (prometheus); groff (groff-base); systemd-analyze (systemd). libFuzzer's
# runtime for the fuzz corpora replay (libclang-rt-14-dev), cmocka.
check_pkgs=(libcmocka-dev libclang-rt-14-dev python3 iproute2 procps util-linux mount
	valgrind prometheus groff-base systemd bash-completion)
bench_pkgs=(libbpf-tools)

pkgs=("${build_pkgs[@]}")
case "$level" in
build) ;;
check) pkgs+=("${check_pkgs[@]}") ;;
bench) pkgs+=("${check_pkgs[@]}" "${bench_pkgs[@]}") ;;
*)
	echo "deps.sh: unknown level '$level' (use build, check or bench)" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: this is not a Debian-like system; install the equivalents of:" >&2
	echo "  ${pkgs[*]}" >&2
	exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (sudo make ...) to install them, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: update once, only when needed.
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/connbeat-deps.log 2>&1; then
	apt-get update >>/tmp/connbeat-deps.log 2>&1 || true
	if ! apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/connbeat-deps.log 2>&1; then
		tail -20 /tmp/connbeat-deps.log >&2
		echo "deps.sh: apt-get install failed for: ${missing[*]} (full log: /tmp/connbeat-deps.log)" >&2
		exit 1
	fi
fi
