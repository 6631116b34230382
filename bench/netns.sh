#!/usr/bin/env bash
# bench/netns.sh — seeding and reconciling many network namespaces (issue 13):
# 100 namespaces with 1000 sockets each, against one namespace with the same
# 100 000 sockets, in the same run.
#
#   bench/netns.sh     (root; NETNS_COUNT=100 NETNS_SOCKETS=1000 NETNS_PASSES=5)
#
# Each namespace gets its loopback up and a tests/tools/hold holding
# NETNS_SOCKETS/2 idle connections inside it. connbeatd is started with its
# defaults (a private pin dir and socket, --metrics off, --max-sessions big
# enough) and its "ready:" line gives the seeding time; then the duration of
# NETNS_PASSES reconcile passes is read from connbeat_reconcile_last_duration
# (`connbeat stats`: _us), one per pass. Prints
#   bench: seed_100netns_1k_s S s            bench: seed_1netns_100k_s S s
#   bench: reconcile_pass_ms_100netns_1k M ms   (median; min and max too)
#   bench: reconcile_pass_ms_1netns_100k M ms
# Asserts nothing about the figures.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${CONNBEAT_BUILD:-build}
count=${NETNS_COUNT:-100}
per=${NETNS_SOCKETS:-1000}
passes=${NETNS_PASSES:-5}
hold=$build/tests/tools/hold
tag=nsb-$$
pin=/sys/fs/bpf/connbeat-$tag
sockdir=/run/connbeat-$tag
sock=$sockdir/connbeat.sock

if [[ $(id -u) -ne 0 ]]; then
	echo "# netns: needs root (BPF, ip netns); skipped"
	exit 0
fi
for f in "$hold" "$build/connbeatd" "$build/connbeat"; do
	[[ -x $f ]] || { echo "# netns: $f missing: run make bench"; exit 1; }
done
command -v ip >/dev/null || { echo "# netns: ip (iproute2) missing"; exit 1; }
tmp=$(mktemp -d /tmp/connbeat-$tag.XXXXXX)
daemon_pid=''
holds=()
cleanup() {
	local p i
	[[ -n $daemon_pid ]] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	for p in "${holds[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${holds[@]}"; do wait "$p" 2>/dev/null; done
	for ((i = 0; i < count; i++)); do ip netns del "$tag-$i" 2>/dev/null; done
	rm -rf "$pin" "$sockdir" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cb() { "$build/connbeat" --socket "$sock" "$@"; }
stats_json() { cb stats --json 2>/dev/null; }
stat_of() {
	stats_json | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"
}
until_true() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		"${@:2}" && return 0
		sleep 0.1
	done
	return 1
}
median_min_max() {
	python3 -c 'import statistics,sys; v=[float(x) for x in sys.stdin.read().split()]
print("%.2f %.2f %.2f" % (statistics.median(v), min(v), max(v)) if v else "")'
}

# hold_in NS CONNECTIONS: a hold in that netns ("" = this one), waited for
hold_in() {
	local out=$tmp/hold-${1:-host}.out
	if [[ -n $1 ]]; then
		ip netns exec "$1" "$hold" --count "$2" --seconds 3000 >"$out" 2>&1 &
	else
		"$hold" --count "$2" --seconds 3000 >"$out" 2>&1 &
	fi
	holds+=($!)
	until_true 300 grep -q ready "$out" || { echo "# netns: hold in ${1:-the host} failed:"; \
		sed 's/^/#   /' "$out"; return 1; }
}
stop_holds() {
	local p
	for p in "${holds[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${holds[@]}"; do wait "$p" 2>/dev/null; done
	holds=()
}

# measure LABEL SESSIONS: start connbeatd, seed time, pass durations
measure() {
	local label=$1 n=$2 seed i p0 v=()
	rm -rf "$pin"
	mkdir -p "$sockdir"
	"$build/connbeatd" --pin-dir "$pin" --socket "$sock" --metrics off \
		--max-sessions $((n + n / 10 + 4096)) >"$tmp/connbeatd.log" 2>&1 &
	daemon_pid=$!
	until_true 120 grep -q 'ready:' "$tmp/connbeatd.log" || { echo "# netns: connbeatd did not start:"; \
		sed 's/^/#   /' "$tmp/connbeatd.log"; return 1; }
	grep -h 'ready:' "$tmp/connbeatd.log" | sed 's/^connbeatd: info: /# /'
	seed=$(sed -n 's/.*network namespaces in \([0-9.]*\) ms.*/\1/p' "$tmp/connbeatd.log" | head -1)
	echo "bench: seed_${label}_s $(awk -v m="$seed" 'BEGIN {printf "%.3f", m / 1000}') s"
	for ((i = 0; i < passes; i++)); do
		p0=$(stat_of connbeat_reconcile_passes_total)
		until_true 60 eval '[[ $(stat_of connbeat_reconcile_passes_total) -gt '"$p0"' ]]' || break
		v+=("$(awk -v u="$(stat_of connbeat_reconcile_last_duration_us)" 'BEGIN {printf "%.3f", u / 1000}')")
	done
	echo "# $label: netns tracked $(stat_of connbeat_netns), pass durations ms: ${v[*]}"
	read -r med min max < <(printf '%s\n' "${v[@]}" | median_min_max)
	echo "bench: reconcile_pass_ms_$label $med ms"
	echo "bench: reconcile_pass_ms_${label}_min $min ms"
	echo "bench: reconcile_pass_ms_${label}_max $max ms"
	kill -TERM "$daemon_pid" 2>/dev/null
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
	rm -rf "$pin"
}

k=$((per / 1000))k
echo "# == $count namespaces x $per sockets"
ok=1
for ((i = 0; i < count; i++)); do
	ip netns add "$tag-$i" && ip -n "$tag-$i" link set lo up || { ok=0; break; }
done
if [[ $ok -eq 1 ]]; then
	for ((i = 0; i < count; i++)); do hold_in "$tag-$i" $((per / 2)) || { ok=0; break; }; done
fi
[[ $ok -eq 1 ]] && measure "${count}netns_$k" $((count * per))
stop_holds
for ((i = 0; i < count; i++)); do ip netns del "$tag-$i" 2>/dev/null; done

echo "# == 1 namespace x $((count * per)) sockets"
hold_in "" $((count * per / 2)) && measure "1netns_$((count * per / 1000))k" $((count * per))
stop_holds
