#!/usr/bin/env bash
# bench/scale.sh — what connbeatd costs when nothing happens, and what its
# queries cost, as the number of connections grows (design §6 "idle cost",
# issues 16, 17, 18).
#
#   bench/scale.sh     (root; SCALE_SOCKETS="10000 100000 1000000" SCALE_SECONDS=30)
#
# For each size: tests/tools/hold opens SIZE/2 idle loopback connections
# (spread over as many processes as the open-files limit needs), connbeatd
# is started with its defaults (except --max-sessions, which must hold them,
# a private pin dir and socket, --metrics off), and once every session has
# gone STALE (one transition each, after --idle) its CPU is read from
# /proc/PID/task/*/schedstat over SCALE_SECONDS of nothing happening:
#   bench: idle_cpu_pct_<size> P %          (of one core; targets: 100k ≤ 0.5, 1M ≤ 1)
# then, at the largest size, the queries against the real daemon, each
# beside `list --json` of the same sessions in the same run:
#   bench: list_json_<size>_real_s          connbeat list --json, end to end
#   bench: list_json_<size>_sort_rtt_limit100_s   the top 100 by RTT
#   bench: summary_by_cgroup_<size>_s       connbeat summary --by cgroup
# and first, with SCALE_KILL connections (10 000) held: kill them all
# through the daemon, one `connbeat kill --port` per holding process
#   bench: kill_10k_s                        (both ends of each: 20 000 sockets)
# Asserts nothing about the figures.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${CONNBEAT_BUILD:-build}
read -r -a sizes <<<"${SCALE_SOCKETS:-10000 100000 1000000}"
secs=${SCALE_SECONDS:-30}
hold=$build/tests/tools/hold
tag=scale-$$
pin=/sys/fs/bpf/connbeat-$tag
sockdir=/run/connbeat-$tag
sock=$sockdir/connbeat.sock
idle=${SCALE_IDLE:-60s}

if [[ $(id -u) -ne 0 ]]; then
	echo "# scale: needs root (BPF); skipped"
	exit 0
fi
for f in "$hold" "$build/connbeatd" "$build/connbeat"; do
	[[ -x $f ]] || { echo "# scale: $f missing: run make bench"; exit 1; }
done
tmp=$(mktemp -d /tmp/connbeat-$tag.XXXXXX)
daemon_pid='' hold_pid=''
cleanup() {
	[[ -n $daemon_pid ]] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	[[ -n $hold_pid ]] && kill -TERM "$hold_pid" 2>/dev/null && wait "$hold_pid" 2>/dev/null
	rm -rf "$pin" "$sockdir" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cb() { "$build/connbeat" --socket "$sock" "$@"; }
stat_of() { # stat_of NAME: one value of `connbeat stats --json` (0 when absent)
	cb stats --json 2>/dev/null |
		python3 -c 'import json,sys; print(int(json.load(sys.stdin).get(sys.argv[1], 0)))' "$1"
}
# CPU time of every thread of a process, in ns
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
# timed CMD...: run it, print its wall time in s (output discarded)
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1 || return 1
	t1=$(date +%s.%N)
	elapsed "$t0" "$t1"
}
# until_true SECONDS CMD...: poll every 100 ms
until_true() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		"${@:2}" && return 0
		sleep 0.1
	done
	return 1
}

start_hold() { # start_hold CONNECTIONS: sets hold_pid, prints nothing; 1 on failure
	: >"$tmp/hold.out"
	"$hold" --count "$1" --seconds 3000 >"$tmp/hold.out" 2>&1 &
	hold_pid=$!
	if ! until_true 600 grep -q 'ready' "$tmp/hold.out"; then
		echo "# scale: hold could not open $1 connections:"
		sed 's/^/#   /' "$tmp/hold.out"
		return 1
	fi
}
stop_hold() {
	kill -TERM "$hold_pid" 2>/dev/null
	wait "$hold_pid" 2>/dev/null
	hold_pid=
}
start_daemon() { # start_daemon SESSIONS
	local max=$(($1 + $1 / 10 + 4096))
	rm -rf "$pin"
	mkdir -p "$sockdir"
	"$build/connbeatd" --pin-dir "$pin" --socket "$sock" --metrics off --idle "$idle" \
		--max-sessions "$max" >"$tmp/connbeatd.log" 2>&1 &
	daemon_pid=$!
	if ! until_true 120 grep -q 'ready:' "$tmp/connbeatd.log"; then
		echo "# scale: connbeatd did not start:"
		sed 's/^/#   /' "$tmp/connbeatd.log"
		return 1
	fi
	echo "# $(grep -h 'ready:' "$tmp/connbeatd.log" | sed 's/^connbeatd: info: //')"
}
stop_daemon() {
	kill -TERM "$daemon_pid" 2>/dev/null
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
	rm -rf "$pin"
}
all_stale() { [[ $(stat_of 'connbeat_sessions{state="stale"}') -ge $1 ]]; }
label() { # 10000 -> 10k, 1000000 -> 1M
	awk -v n="$1" 'BEGIN {if (n >= 1e6 && n % 1e6 == 0) print n / 1e6 "M";
		else if (n >= 1000 && n % 1000 == 0) print n / 1000 "k"; else print n}'
}

failed=0
kill_n=${SCALE_KILL:-10000}
echo "# == kill $kill_n connections"
if start_hold "$kill_n"; then
	ports=$(sed -n 's/.*ports //p' "$tmp/hold.out")
	if start_daemon $((2 * kill_n)); then
		k0=$(stat_of connbeat_kills_total)
		t0=$(date +%s.%N)
		for p in ${ports//,/ }; do
			cb kill --port "$p" >/dev/null 2>&1 || { echo "# scale: kill --port $p failed"; failed=1; }
		done
		t1=$(date +%s.%N)
		left=$(ss -Htan state established "( sport = :${ports//,/ or sport = :} )" 2>/dev/null | wc -l)
		echo "# kill: $(($(stat_of connbeat_kills_total) - k0)) destroyed by connbeat" \
			"(the peer of each goes with it: a reset), $left accepted sockets left"
		echo "bench: kill_$(label "$kill_n")_s $(elapsed "$t0" "$t1") s"
		stop_daemon
	else
		failed=1
	fi
	stop_hold
else
	failed=1
fi

last=${sizes[${#sizes[@]} - 1]}
for size in "${sizes[@]}"; do
	l=$(label "$size")
	echo "# == $size idle sockets"
	start_hold $((size / 2)) || { failed=1; continue; }
	ports=$(sed -n 's/.*ports //p' "$tmp/hold.out")
	if ! start_daemon "$size"; then
		failed=1
		stop_hold
		continue
	fi
	# the sessions on hold's ports (the host's own connections aside)
	if ! until_true 300 all_stale "$size"; then
		echo "# scale: $size sessions did not all go stale within 300 s" \
			"($(stat_of 'connbeat_sessions{state="stale"}') did)"
	fi
	c0=$(cpu_ns "$daemon_pid")
	t0=$(date +%s.%N)
	sleep "$secs" # measuring nothing happening, on purpose
	c1=$(cpu_ns "$daemon_pid")
	t1=$(date +%s.%N)
	echo "# sweep: budget $(stat_of connbeat_sweep_budget_sockets) sockets per tick," \
		"most read in one tick $(stat_of connbeat_sweep_tick_max_sockets)," \
		"$(stat_of connbeat_sweep_sockets_total) read in all; $(stat_of connbeat_reconcile_passes_total) passes;" \
		"RSS $(awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$daemon_pid/status")"
	echo "bench: idle_cpu_pct_$l $(awk -v c=$((c1 - c0)) -v a="$t0" -v b="$t1" \
		'BEGIN {printf "%.3f", 100 * c / 1e9 / (b - a)}') %"
	if [[ $size == "$last" ]]; then
		v=$(timed cb list --json) && echo "bench: list_json_${l}_real_s $v s"
		v=$(timed cb list --sort rtt --limit 100 --json) &&
			echo "bench: list_json_${l}_sort_rtt_limit100_s $v s"
		v=$(timed cb summary --by cgroup --json) && echo "bench: summary_by_cgroup_${l}_s $v s"
	fi
	stop_daemon
	stop_hold
done
exit $failed
