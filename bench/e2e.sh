#!/usr/bin/env bash
# bench/e2e.sh — end to end, against the real kernel: full-rate loopback
# connection churn with no tracer, with connbeatd, and with libbpf-tools'
# tcplife (same tracepoint), in alternating runs; completeness of both; and
# the daemon's own figures: start-up seeding with 100k existing sockets, a
# JSON list of them, ingest rate and CPU under churn.
#
#   bench/e2e.sh          (root; E2E_ROUNDS=5 E2E_SECONDS=5 by default)
#
# Prints "bench: NAME VALUE UNIT" lines; medians of the rounds; the tcplife
# ratio is the median (min, max) of each round's tcplife / no-tracer pair,
# the order alternating between rounds. Asserts nothing.
#
# Host cost is not measured here: a with/without ratio from a few rounds on
# a noisy machine is noise, not a figure. What connbeatd costs a busy host
# (the §6 targets overhead_{churn,reqresp,bulk}_ratio) is bench/overhead.sh's
# job: median, min and max over alternating pairs. The churn rates below are
# the context of the completeness and CPU figures, and of the comparison with
# tcplife, which is indicative only.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${CONNBEAT_BUILD:-build}
rounds=${E2E_ROUNDS:-5}
secs=${E2E_SECONDS:-5}
churn=$build/tests/tools/churn
hold=$build/tests/tools/hold
tag=e2e-$$
pin=/sys/fs/bpf/connbeat-$tag
sock=/run/connbeat-bench/$tag.sock

if [[ $(id -u) -ne 0 ]]; then
	echo "# e2e: needs root (BPF); skipped"
	exit 0
fi
for f in "$churn" "$hold" "$build/connbeatd" "$build/connbeat"; do
	[[ -x $f ]] || { echo "# e2e: $f missing: run make bench"; exit 1; }
done
tcplife=$(command -v tcplife || true)
# tcplife attaches through tracefs (its perf-event tracepoint ids): mount it
if [[ -n $tcplife ]] && ! mountpoint -q /sys/kernel/tracing; then
	mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null ||
		{ echo "# e2e: cannot mount tracefs: no tcplife comparison"; tcplife=; }
fi

daemon_pid=
cleanup() {
	[[ -n $daemon_pid ]] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	[[ -n ${hold_pid:-} ]] && kill -TERM "$hold_pid" 2>/dev/null && wait "$hold_pid" 2>/dev/null
	rm -rf "$pin"
}
trap cleanup EXIT

start_daemon() { # start_daemon LOGFILE [flags...]
	local log=$1
	shift
	"$build/connbeatd" --pin-dir "$pin" --socket "$sock" --metrics off "$@" 2>"$log" &
	daemon_pid=$!
	for _ in $(seq 1 300); do
		grep -q "ready:" "$log" && return 0
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.02
	done
	echo "# e2e: connbeatd did not start:"; sed 's/^/#   /' "$log"
	return 1
}
stop_daemon() {
	kill -TERM "$daemon_pid"
	wait "$daemon_pid"
	daemon_pid=
}
stat_of() { # stat_of NAME: one counter from connbeat stats --json
	"$build/connbeat" --socket "$sock" stats --json |
		python3 -c "import json,sys; print(int(json.load(sys.stdin).get(sys.argv[1], 0)))" "$1"
}
rate() { awk '{print $7}' <<<"$1"; }
made() { awk '{print $3}' <<<"$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

base=() cb=() tl=() cbc=() tlc=() cbcpu=() evrate=() tlratio=()
log=$(mktemp)
run_base() {
	base+=("$(rate "$("$churn" --seconds "$secs")")")
}
run_connbeatd() {
	local out c0 c1 e0 e1 t0 t1
	start_daemon "$log" || exit 1
	c0=$(stat_of connbeat_sessions_closed_total)
	e0=$(stat_of 'connbeat_events_total{ring="events"}')
	t0=$(cpu_ticks "$daemon_pid")
	out=$("$churn" --seconds "$secs")
	t1=$(cpu_ticks "$daemon_pid")
	sleep 0.5 # the last records reach the daemon within one poll
	c1=$(stat_of connbeat_sessions_closed_total)
	e1=$(stat_of 'connbeat_events_total{ring="events"}')
	stop_daemon
	cb+=("$(rate "$out")")
	cbc+=("$(awk -v c=$((c1 - c0)) -v m="$(made "$out")" 'BEGIN {printf "%.2f", 100 * c / (2 * m)}')")
	cbcpu+=("$(awk -v t=$((t1 - t0)) -v s="$secs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", 100 * t / hz / s}')")
	evrate+=("$(awk -v e=$((e1 - e0)) -v s="$secs" 'BEGIN {printf "%.0f", e / s}')")
	grep -h "stopped:" "$log" | sed 's/^/# round '"$r"' connbeatd /'
}
run_tcplife() {
	local out tlog tpid lines
	[[ -n $tcplife ]] || return 0
	tlog=$(mktemp)
	"$tcplife" >"$tlog" 2>/dev/null &
	tpid=$!
	sleep 1.5 # tcplife prints its header once attached
	out=$("$churn" --seconds "$secs")
	sleep 1
	kill -INT "$tpid"
	wait "$tpid" 2>/dev/null
	lines=$(grep -c '^[0-9]' "$tlog")
	rm -f "$tlog"
	tl+=("$(rate "$out")")
	tlc+=("$(awk -v c="$lines" -v m="$(made "$out")" 'BEGIN {printf "%.2f", 100 * c / (2 * m)}')")
}
# the order alternates between rounds, so that a machine getting faster or
# slower during the run favours neither side
for r in $(seq 1 "$rounds"); do
	if ((r % 2)); then
		run_base; run_connbeatd; run_tcplife
	else
		run_tcplife; run_connbeatd; run_base
	fi
	[[ -n $tcplife ]] &&
		tlratio+=("$(awk -v a="${tl[-1]}" -v b="${base[-1]}" 'BEGIN {printf "%.3f", a / b}')")
	echo "# round $r: base ${base[-1]}/s connbeatd ${cb[-1]}/s (${cbc[-1]}% counted, ${cbcpu[-1]}% CPU) tcplife ${tl[-1]:-n/a}/s (${tlc[-1]:-n/a}% counted)"
done

b=$(printf '%s\n' "${base[@]}" | median)
c=$(printf '%s\n' "${cb[@]}" | median)
echo "bench: churn_base_cps $b conn/s"
echo "bench: churn_with_connbeatd_cps $c conn/s"
echo "bench: completeness_connbeatd_pct $(printf '%s\n' "${cbc[@]}" | median) %"
echo "bench: connbeatd_cpu_under_churn_pct $(printf '%s\n' "${cbcpu[@]}" | median) %"
echo "bench: ingest_events_per_s_under_churn $(printf '%s\n' "${evrate[@]}" | median) events/s"
if [[ ${#tl[@]} -gt 0 ]]; then
	t=$(printf '%s\n' "${tl[@]}" | median)
	echo "bench: churn_with_tcplife_cps $t conn/s"
	echo "bench: churn_with_tcplife_ratio $(printf '%s\n' "${tlratio[@]}" | median) x"
	echo "bench: churn_with_tcplife_ratio_min $(printf '%s\n' "${tlratio[@]}" | sort -g | head -1) x"
	echo "bench: churn_with_tcplife_ratio_max $(printf '%s\n' "${tlratio[@]}" | sort -g | tail -1) x"
	echo "bench: completeness_tcplife_pct $(printf '%s\n' "${tlc[@]}" | median) %"
else
	echo "# tcplife not installed (Debian package libbpf-tools): no comparison"
fi

# --- start-up with 100k existing sockets, and a JSON list of them ---------
hlog=$(mktemp)
"$hold" --count 50000 --seconds 300 >"$hlog" &
hold_pid=$!
for _ in $(seq 1 600); do
	grep -q ready "$hlog" && break
	sleep 0.1
done
if grep -q ready "$hlog"; then
	t0=$(date +%s.%N)
	start_daemon "$log" || exit 1
	until "$build/connbeat" --socket "$sock" list --limit 1 >/dev/null 2>&1; do sleep 0.01; done
	t1=$(date +%s.%N)
	seeded=$(stat_of connbeat_sessions_seeded_total)
	echo "# $(grep -h 'ready:' "$log" | sed 's/^connbeatd: info: //')"
	echo "bench: startup_seeded_sessions $seeded sessions"
	echo "bench: startup_100k_queryable_s $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') s"
	t0=$(date +%s.%N)
	n=$("$build/connbeat" --socket "$sock" list --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
	t1=$(date +%s.%N)
	echo "# list --json returned $n rows"
	echo "bench: list_json_100k_s $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') s"
	t0=$(date +%s.%N)
	"$build/connbeat" --socket "$sock" list --json >/dev/null
	t1=$(date +%s.%N)
	echo "bench: list_json_100k_cli_only_s $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') s"
	t0=$(date +%s.%N)
	ss -tan >/dev/null
	t1=$(date +%s.%N)
	echo "bench: ss_tan_100k_s $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') s"
	echo "bench: connbeatd_rss_100k_mib $(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$daemon_pid/status") MiB"
	stop_daemon
else
	echo "# hold could not open 50000 connections:"; sed 's/^/#   /' "$hlog"
fi
kill -TERM "$hold_pid" 2>/dev/null
wait "$hold_pid" 2>/dev/null
hold_pid=
rm -f "$log" "$hlog"
