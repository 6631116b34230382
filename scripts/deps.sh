#!/usr/bin/env bash
# deps.sh — make sure every package connbeat needs is installed.
#
#   scripts/deps.sh build   what `make` needs
#   scripts/deps.sh check   + what `make check` needs (test tools, sanitizer runtimes)
#   scripts/deps.sh bench   + what `make bench` needs (the tracers we compare against,
#                           and the real servers and clients of bench/overhead.sh)
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
# bench: tcplife (libbpf-tools) for bench/e2e.sh; redis-server + redis-tools
# (redis-benchmark) and iperf3 for bench/overhead.sh, which starts its own
# servers on loopback ports: none of them may run as a system service.
bench_pkgs=(libbpf-tools redis-server redis-tools iperf3)
# The bench packages that ship a system service (package = init script = unit).
bench_services=(redis-server iperf3)

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

# --- bench level: install the servers without leaving a system service ---
# Installing redis-server starts and enables redis on port 6379 (its postinst
# runs update-rc.d defaults, invoke-rc.d start and deb-systemd-helper enable);
# iperf3 asks (debconf iperf3/start_daemon) whether to run a daemon. We want
# neither: a service in the background is noise in the benchmark and a
# surprise on the host. Three layers, each robust on its own where the
# others are not:
#  1. preseed iperf3/start_daemon=false, so its question is answered "no"
#     without a prompt (DEBIAN_FRONTEND=noninteractive would pick the same
#     default, but an earlier "true" in the debconf database would win);
#  2. /usr/sbin/policy-rc.d exiting 101 for the length of the install: the
#     Debian mechanism (invoke-rc.d, deb-systemd-invoke) that stops maintainer
#     scripts starting services, with or without systemd; created only when
#     there is none (a host's own policy, e.g. a container's, is left alone)
#     and removed on exit whatever happens;
#  3. afterwards, for each service package this run installed (and only
#     those: a redis the host already had is the host's business): disable
#     it for boot in both systemd (systemctl disable, which works offline
#     too; postinst's deb-systemd-helper was-enabled then sees the links gone
#     and keeps the unit disabled on upgrades) and sysv rc links (update-rc.d
#     disable), and stop it in case a host policy let it start;
#     this runs on exit, so a failed install is cleaned up too.
bench_policy_rc=
bench_before_install() {
	echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\n# connbeat scripts/deps.sh: no services started during this install\nexit 101\n' \
			>/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		bench_policy_rc=/usr/sbin/policy-rc.d
	fi
	# on every exit, a failed install too: dpkg may have configured some
	trap 'bench_after_install "${missing[@]}"' EXIT
}
bench_after_install() { # bench_after_install PACKAGE... (those this run installed)
	local p s
	if [[ -n $bench_policy_rc ]]; then
		rm -f "$bench_policy_rc"
		bench_policy_rc=
	fi
	for p in "$@"; do
		for s in "${bench_services[@]}"; do
			[[ $p == "$s" ]] || continue
			[[ -x /etc/init.d/$s ]] || continue # not installed after all
			# systemctl disable works without systemd running; dpkg sees the
			# missing links on upgrade and leaves the unit disabled
			if command -v systemctl >/dev/null 2>&1; then
				systemctl disable --quiet "$s.service" >/dev/null 2>&1 || true
			fi
			update-rc.d "$s" disable >/dev/null 2>&1 || true
			if [[ -d /run/systemd/system ]]; then
				systemctl stop "$s.service" >/dev/null 2>&1 || true
			else
				"/etc/init.d/$s" stop >/dev/null 2>&1 || true # its pidfile only
			fi
			echo "deps.sh: $s installed as a program only (its system service is stopped and disabled)"
		done
	done
}

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
[[ $level == bench ]] && bench_before_install
# A fresh machine may have no package lists yet: update once, only when needed.
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/connbeat-deps.log 2>&1; then
	apt-get update >>/tmp/connbeat-deps.log 2>&1 || true
	if ! apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/connbeat-deps.log 2>&1; then
		tail -20 /tmp/connbeat-deps.log >&2
		echo "deps.sh: apt-get install failed for: ${missing[*]} (full log: /tmp/connbeat-deps.log)" >&2
		exit 1
	fi
fi
exit 0
