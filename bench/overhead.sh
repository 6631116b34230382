#!/usr/bin/env bash
# bench/overhead.sh — what connbeatd costs a busy host (design §6: each ratio
# ≥ 0.97). For each workload, N pairs of runs on this host: one without
# connbeatd, one with it, the order inside a pair alternating (pair 1 without
# first, pair 2 with first, ...) so that neither side always runs first.
# The ratio of a pair is with / without; the figures are the median, min and
# max of those ratios, and the median of the baselines, all from this run.
#
#   bench/overhead.sh     (root; OVERHEAD_PAIRS=5 OVERHEAD_SECONDS=10)
#
# Workloads (each a real client and server on loopback; servers on ports
# below 32768, out of the kernel's ephemeral range):
#   churn    tests/tools/churn --server-first --threads 8: connections/s
#   reqresp  redis-server and redis-benchmark, 50 keep-alive connections,
#            GET and SET of 16 bytes: requests/s summed over both tests
#   bulk     iperf3, one stream: Gbit/s received
#   churn_events  churn with a `connbeat events --json` client reading it all
#            (also prints events_delivered_pct: delivered / (delivered + missed))
#   churn_floor  the churn against no connbeatd at all but a bare counter
#            (one per-CPU array increment) on each of the tracepoints its
#            programs use (bench/bpf_cost -H): the floor any tracer on those
#            tracepoints pays, measured the same way as the ratios above
#
# connbeatd is started as a user starts it, with its defaults except a
# temporary --pin-dir under /sys/fs/bpf, --socket under /run and
# --metrics off; it is waited for until it says "ready:", its CPU is read
# from /proc during each "with" run, and it is stopped with SIGTERM after
# each one (its pinned maps removed, so every "with" run starts afresh).
#
# Prints "bench: overhead_<w>_ratio MEDIAN x", "..._ratio_min", "..._ratio_max",
# "bench: overhead_<w>_base_median VALUE UNIT" and "# ..." comments. Asserts
# nothing about the figures: a slow machine gives low figures, not a failure.
# Exit 1 only when a workload could not be measured (a tool missing, a server
# or connbeatd that did not start, a run that failed or hung); the others
# still run.
#
# Environment:
#   CONNBEAT_BUILD          build tree with connbeatd and tests/tools/churn (build)
#   OVERHEAD_PAIRS          pairs per workload (5)
#   OVERHEAD_SECONDS        length of one run, whole seconds (10)
#   OVERHEAD_WORKLOADS      which workloads, in order ("churn churn_events churn_floor
#                           reqresp bulk")
#   OVERHEAD_REDIS_REQUESTS redis-benchmark -n per test (default: sized from a
#                           short calibration run to OVERHEAD_SECONDS in all)
#   OVERHEAD_START_TIMEOUT  seconds to wait for connbeatd's "ready:" (30)
#
# Adding a workload: write one function wl_NAME ACTION, where ACTION is
#   unit      print the unit of its figure (e.g. conn/s)
#   setup     start its servers, calibrate; non-zero: the workload is skipped
#   run       one run of $secs seconds; print one number, the throughput;
#             $with is 1 when connbeatd is running (control socket $sock:
#             a workload with a CLI client, e.g. `connbeat events --json`,
#             starts it here when $with is 1), 0 otherwise; non-zero: failed
#   teardown  stop what setup started (also called after a failed setup)
#   nodaemon  (optional) print "yes": its "with" side runs without connbeatd
#             (the workload starts what it measures against itself)
# and add NAME to the default of OVERHEAD_WORKLOADS. Start background
# processes with `track PID` so that the exit trap ends them whatever happens,
# and bound every wait (helpers: wait_until, stop_pid).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${CONNBEAT_BUILD:-build}
pairs=${OVERHEAD_PAIRS:-5}
secs=${OVERHEAD_SECONDS:-10}
read -r -a workloads <<<"${OVERHEAD_WORKLOADS:-churn churn_events churn_floor reqresp bulk}"
start_timeout=${OVERHEAD_START_TIMEOUT:-30}
tag=overhead-$$
pin=/sys/fs/bpf/connbeat-$tag
sockdir=/run/connbeat-$tag
sock=$sockdir/connbeat.sock
exec 3>&1 # notes go to stdout, also from inside $(...)

note() { echo "# overhead: $*" >&3; }

if [[ $(id -u) -ne 0 ]]; then
	echo "# overhead: needs root (BPF); skipped"
	exit 0
fi
for v in pairs secs start_timeout; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1 || ${!v} > 3600)); then
		echo "# overhead: bad $v '${!v}' (a whole number, 1-3600)" >&2
		exit 2
	fi
done
if [[ ! -x $build/connbeatd ]]; then
	echo "# overhead: $build/connbeatd missing: run make bench"
	exit 1
fi
tmp=$(mktemp -d /tmp/connbeat-$tag.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
hz=$(getconf CLK_TCK)

# ---- helpers -----------------------------------------------------------------
daemon_pid=
with=0 # 1 while connbeatd runs: for the run functions
export with
mkdir "$tmp/pids"
# track PID: the exit trap ends it (run functions run in subshells, so the
# trap cannot know their variables); untrack PID once it is gone. The start
# time is kept with it, so that a pid reused by another process is not hit.
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
track() { starttime "$1" >"$tmp/pids/$1"; }
untrack() { rm -f "$tmp/pids/$1"; }

alive() { kill -0 "$1" 2>/dev/null; }

# wait_until SECONDS CMD...: poll CMD every 50 ms; 1 when SECONDS pass first
wait_until() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	"$@"
}

# stop_pid PID [SECONDS]: SIGTERM, SIGKILL after SECONDS (10); 1 if it needed SIGKILL
stop_pid() {
	local pid=$1 limit=${2:-10}
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_until "$limit" eval "! kill -0 $pid 2>/dev/null" && return 0
	kill -KILL "$pid" 2>/dev/null
	return 1
}

cleanup() {
	local p
	for p in "$tmp"/pids/*; do
		[[ -e $p && $(starttime "${p##*/}") == "$(cat "$p")" ]] && stop_pid "${p##*/}" 5
	done
	rm -rf "$pin" "$sockdir" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a port below 32768 (outside the ephemeral range) nobody uses now
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 12000))
		[[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]] && {
			echo "$p"
			return 0
		}
	done
	return 1
}

listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }

# stats ratio|value: numbers on stdin -> "median min max" (ratios to 3
# decimals; values to 4 significant digits, without an exponent)
stats() {
	python3 -c '
import statistics, sys
v = [float(x) for x in sys.stdin.read().split()]
def f(x):
    if sys.argv[1] == "ratio":
        return "%.3f" % x
    return "%.*f" % (max(0, 3 - len(str(int(abs(x)))) + 1), x)
print(" ".join(f(x) for x in (statistics.median(v), min(v), max(v))))' "$1"
}

start_daemon() {
	local log=$tmp/connbeatd.log
	rm -rf "$pin"
	: >"$log" # before the fork: the child opens it only after
	"$build/connbeatd" --pin-dir "$pin" --socket "$sock" --metrics off >"$log" 2>&1 &
	daemon_pid=$!
	track "$daemon_pid"
	if ! wait_until "$start_timeout" eval "grep -q 'ready:' '$log' || ! kill -0 $daemon_pid 2>/dev/null" ||
		! grep -q 'ready:' "$log"; then
		if alive "$daemon_pid"; then
			note "connbeatd did not start (no \"ready:\" within ${start_timeout}s):"
		else
			note "connbeatd did not start (it exited):"
		fi
		sed 's/^/#   /' "$log" >&3
		stop_pid "$daemon_pid" 5
		wait "$daemon_pid" 2>/dev/null
		untrack "$daemon_pid"
		daemon_pid=
		rm -rf "$pin"
		return 1
	fi
}

stop_daemon() { # stop_daemon: SIGTERM; prints its "stopped:" line
	local rc
	stop_pid "$daemon_pid" 20 || note "connbeatd did not stop within 20s of SIGTERM: killed"
	wait "$daemon_pid" 2>/dev/null
	rc=$?
	[[ $rc -ne 0 ]] && note "connbeatd exited $rc after SIGTERM (expected 0)"
	untrack "$daemon_pid"
	daemon_pid=
	grep -h 'stopped:' "$tmp/connbeatd.log" | sed 's/^.*stopped:/#   connbeatd stopped:/' >&3
	rm -rf "$pin"
}

# ---- workloads ---------------------------------------------------------------
# churn: full-rate loopback churn, the server end closing first, 8 threads.
wl_churn() {
	local out
	case $1 in
	unit) echo conn/s ;;
	setup)
		[[ -x $build/tests/tools/churn ]] || {
			note "$build/tests/tools/churn missing: run make bench"
			return 1
		}
		;;
	run)
		out=$(timeout -k 5 $((secs + 60)) "$build/tests/tools/churn" --server-first --threads 8 \
			--seconds "$secs") || {
			note "churn failed: $out"
			return 1
		}
		awk '$1 == "churn:" && $6 == "rate" {print $7; f = 1} END {exit !f}' <<<"$out"
		;;
	teardown) ;;
	esac
}

# churn_events: the churn again, with a `connbeat events --json` client
# consuming the whole stream (design §6 / issue 17: ≥ 0.95). Its share of
# the events delivered (not missed) goes to $tmp/events_pct, one per run.
stat_of() { # stat_of NAME: one value of `connbeat stats --json`
	"$build/connbeat" --socket "$sock" stats --json 2>/dev/null |
		python3 -c 'import json,sys; print(int(json.load(sys.stdin).get(sys.argv[1], 0)))' "$1"
}
wl_churn_events() {
	local out epid d m
	case $1 in
	unit) echo conn/s ;;
	setup) wl_churn setup ;;
	run)
		if [[ $with -eq 1 ]]; then
			"$build/connbeat" --socket "$sock" events --json >"$tmp/events.out" 2>&1 &
			epid=$!
			track "$epid"
			if ! wait_until 10 eval '[[ $(stat_of connbeat_events_subscribers) -ge 1 ]]'; then
				note "connbeat events did not subscribe: $(head -c 300 "$tmp/events.out")"
				stop_pid "$epid" 5
				untrack "$epid"
				return 1
			fi
		fi
		out=$(wl_churn run) || return 1
		if [[ $with -eq 1 ]]; then
			d=$(stat_of connbeat_events_delivered_total)
			m=$(stat_of connbeat_events_missed_total)
			kill -INT "$epid" 2>/dev/null
			wait_until 10 eval "! kill -0 $epid 2>/dev/null" || stop_pid "$epid" 5
			wait "$epid" 2>/dev/null
			untrack "$epid"
			awk -v d="$d" -v m="$m" 'BEGIN {printf "%.2f\n", (d + m > 0 ? 100 * d / (d + m) : 0)}' \
				>>"$tmp/events_pct"
			note "events client: delivered $d, missed $m, $(wc -l <"$tmp/events.out") lines"
		fi
		echo "$out"
		;;
	teardown) ;;
	esac
}

# churn_floor: the churn again; its "with" side has no connbeatd, only
# bench/bpf_cost -H's bare counters on connbeat's tracepoints.
wl_churn_floor() {
	local out bpid log=$tmp/bare.log
	case $1 in
	unit) echo conn/s ;;
	nodaemon) echo yes ;;
	setup)
		[[ -x $build/bench/bpf_cost ]] || {
			note "$build/bench/bpf_cost missing: run make bench"
			return 1
		}
		wl_churn setup
		;;
	run)
		if [[ $with -eq 1 ]]; then
			: >"$log"
			"$build/bench/bpf_cost" -H >"$log" 2>&1 &
			bpid=$!
			track "$bpid"
			if ! wait_until 10 eval "grep -q 'ready:' '$log' || ! kill -0 $bpid 2>/dev/null" ||
				! grep -q 'ready:' "$log"; then
				note "bpf_cost -H did not attach: $(head -c 300 "$log")"
				stop_pid "$bpid" 5
				wait "$bpid" 2>/dev/null
				untrack "$bpid"
				return 1
			fi
		fi
		out=$(wl_churn run)
		local rc=$?
		if [[ $with -eq 1 ]]; then
			stop_pid "$bpid" 5
			wait "$bpid" 2>/dev/null
			untrack "$bpid"
		fi
		[[ $rc -eq 0 ]] && echo "$out"
		return $rc
		;;
	teardown) ;;
	esac
}

# reqresp: keep-alive request/response against a real key-value server.
# redis-benchmark (7.0) has no duration flag: -n is sized so that GET and SET
# take about $secs seconds in all, from a short calibration run.
redis_port='' redis_pid='' redis_n=''
redis_bench() { # redis_bench N: "SUM_RPS" of GET and SET over N requests each
	local out
	out=$(timeout -k 5 $((secs * 5 + 60)) redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 50 \
		-t get,set -d 16 -q -n "$1" 2>&1) || {
		note "redis-benchmark failed: $(tr '\r' '\n' <<<"$out" | tail -3)"
		return 1
	}
	tr '\r' '\n' <<<"$out" | awk '/requests per second/ {s += $2; n++; r = r " " $1 " " $2}
		END {if (n != 2) exit 1; printf "%.1f\n", s; print r > "/dev/stderr"}' 2>"$tmp/redis.tests"
}
wl_reqresp() {
	local r1 t
	case $1 in
	unit) echo req/s ;;
	setup)
		for t in redis-server redis-benchmark redis-cli; do
			command -v "$t" >/dev/null || {
				note "$t not installed (scripts/deps.sh bench): no reqresp figures"
				return 1
			}
		done
		redis_port=$(free_port) || { note "no free port for redis-server"; return 1; }
		mkdir -p "$tmp/redis"
		redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
			--dir "$tmp/redis" --daemonize no --logfile "$tmp/redis/log" >/dev/null 2>&1 &
		redis_pid=$!
		track "$redis_pid"
		if ! wait_until 10 eval "[[ \$(redis-cli -h 127.0.0.1 -p $redis_port ping 2>/dev/null) == PONG ]]"; then
			note "redis-server did not start on 127.0.0.1:$redis_port:"
			sed 's/^/#   /' "$tmp/redis/log" >&3 2>/dev/null
			return 1
		fi
		if [[ -n ${OVERHEAD_REDIS_REQUESTS:-} ]]; then
			redis_n=$OVERHEAD_REDIS_REQUESTS
		else
			# n per test such that n/r_get + n/r_set = secs (whole thousands)
			redis_bench 50000 >/dev/null || return 1
			r1=$(cat "$tmp/redis.tests")
			redis_n=$(awk -v s="$secs" -v a="$r1" 'BEGIN {
				split(a, f, " "); n = s / (1 / f[2] + 1 / f[4]); n = int(n / 1000) * 1000
				print (n < 10000 ? 10000 : n) }')
			note "reqresp calibration:$r1 req/s -> redis-benchmark -n $redis_n per test"
		fi
		note "redis-server pid $redis_pid on 127.0.0.1:$redis_port"
		;;
	run) redis_bench "$redis_n" ;;
	teardown)
		if [[ -n $redis_pid ]]; then
			stop_pid "$redis_pid" 10
			wait "$redis_pid" 2>/dev/null
			untrack "$redis_pid"
		fi
		redis_pid=
		;;
	esac
}

# bulk: one iperf3 stream over loopback; a fresh one-off server (-s -1) per run.
iperf_port=
wl_bulk() {
	local spid
	case $1 in
	unit) echo Gbit/s ;;
	setup)
		command -v iperf3 >/dev/null || {
			note "iperf3 not installed (scripts/deps.sh bench): no bulk figures"
			return 1
		}
		iperf_port=$(free_port) || { note "no free port for iperf3"; return 1; }
		;;
	run)
		iperf3 -s -1 -B 127.0.0.1 -p "$iperf_port" >"$tmp/iperf3-server.log" 2>&1 &
		spid=$!
		track "$spid"
		if ! wait_until 10 listening "$iperf_port"; then
			note "iperf3 server did not listen on 127.0.0.1:$iperf_port:"
			sed 's/^/#   /' "$tmp/iperf3-server.log" >&3
			stop_pid "$spid" 5
			wait "$spid" 2>/dev/null
			untrack "$spid"
			return 1
		fi
		timeout -k 5 $((secs + 60)) iperf3 -c 127.0.0.1 -p "$iperf_port" -t "$secs" -J \
			>"$tmp/iperf3.json" 2>&1
		wait_until 10 eval "! kill -0 $spid 2>/dev/null" || stop_pid "$spid" 5
		wait "$spid" 2>/dev/null
		untrack "$spid"
		python3 - "$tmp/iperf3.json" <<-'EOF' || { note "iperf3 failed: $(head -c 300 "$tmp/iperf3.json")"; return 1; }
			import json, sys
			j = json.load(open(sys.argv[1]))
			if j.get("error"):
			    sys.exit(1)
			print("%.3f" % (j["end"]["sum_received"]["bits_per_second"] / 1e9))
		EOF
		;;
	teardown) ;;
	esac
}

# ---- the driver --------------------------------------------------------------
# run_side W SIDE PAIR: one run; prints the throughput
run_side() {
	local w=$1 side=$2 i=$3 v t0 t1 w0 w1
	if [[ $side == without ]]; then
		with=0
		wl_"$w" run
		return
	fi
	if [[ $(wl_"$w" nodaemon) == yes ]]; then
		with=1
		wl_"$w" run
		return
	fi
	start_daemon || return 2
	with=1
	t0=$(cpu_ticks "$daemon_pid")
	w0=$(date +%s.%N)
	v=$(wl_"$w" run) || {
		stop_daemon
		return 1
	}
	w1=$(date +%s.%N)
	t1=$(cpu_ticks "$daemon_pid")
	if ! alive "$daemon_pid" || [[ -z $t1 ]]; then
		note "connbeatd died during the $w run of pair $i:"
		sed 's/^/#   /' "$tmp/connbeatd.log" >&3
		wait "$daemon_pid" 2>/dev/null
		untrack "$daemon_pid"
		daemon_pid=
		rm -rf "$pin"
		return 2
	fi
	echo "# connbeatd cpu% $w pair $i: $(awk -v t=$((t1 - t0)) -v hz="$hz" -v a="$w0" -v b="$w1" \
		'BEGIN {printf "%.1f", 100 * t / hz / (b - a)}') (utime+stime over the run, of one CPU)" >&3
	stop_daemon
	echo "$v"
}

failed=()
measure() { # measure W
	local w=$1 unit i side v rc ratios=() bases=() without with_v r others order
	unit=$(wl_"$w" unit)
	echo "# == $w: $pairs pairs of ${secs}s runs"
	if ! wl_"$w" setup; then
		note "$w skipped"
		wl_"$w" teardown
		failed+=("$w")
		return
	fi
	for ((i = 1; i <= pairs; i++)); do
		without='' with_v=''
		# ours is stopped between pairs: any connbeatd now is someone else's
		others=$(pgrep -x connbeatd | paste -sd ' ')
		[[ -n $others ]] && note "pair $i: another connbeatd runs (pid $others): \"without\" is not without"
		if ((i % 2)); then order=(without with); else order=(with without); fi
		for side in "${order[@]}"; do
			v=$(run_side "$w" "$side" "$i")
			rc=$?
			if [[ $rc -eq 2 ]]; then # connbeatd did not start or died
				note "$w skipped: connbeatd"
				wl_"$w" teardown
				failed+=("$w")
				return
			fi
			if [[ $rc -ne 0 || -z $v ]]; then
				note "$w pair $i: the $side run failed; pair left out"
				without='' with_v=''
				break
			fi
			if [[ $side == without ]]; then without=$v; else with_v=$v; fi
		done
		[[ -n $without && -n $with_v ]] || continue
		r=$(awk -v a="$with_v" -v b="$without" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
		echo "# pair $i: without $without with $with_v ratio $r ($w $unit, ${order[0]} first)"
		ratios+=("$r")
		bases+=("$without")
	done
	wl_"$w" teardown
	if [[ ${#ratios[@]} -eq 0 ]]; then
		note "$w: no pair measured"
		failed+=("$w")
		return
	fi
	read -r med min max < <(printf '%s\n' "${ratios[@]}" | stats ratio)
	read -r bmed _ _ < <(printf '%s\n' "${bases[@]}" | stats value)
	[[ ${#ratios[@]} -lt $pairs ]] && note "$w: ${#ratios[@]} of $pairs pairs measured"
	echo "bench: overhead_${w}_base_median $bmed $unit"
	echo "bench: overhead_${w}_ratio $med x"
	echo "bench: overhead_${w}_ratio_min $min x"
	echo "bench: overhead_${w}_ratio_max $max x"
	if [[ $w == churn_events ]]; then
		# the names of design §6 / issue 17
		echo "bench: overhead_churn_ratio_with_events_client $med x"
		echo "bench: overhead_churn_ratio_with_events_client_min $min x"
		echo "bench: overhead_churn_ratio_with_events_client_max $max x"
		[[ -s $tmp/events_pct ]] &&
			echo "bench: events_delivered_pct_full_churn $(stats value <"$tmp/events_pct" | awk '{print $1}') %"
		events_burst
	fi
}

# events_burst: a client that keeps up: 10 bursts of 1000 connections of
# churn (each one within what its ring absorbs), the next once the client
# has read the last, with `connbeat events --json` reading: the share of
# the events delivered, and how many closes it printed.
events_burst() {
	local epid d m n
	start_daemon || return
	"$build/connbeat" --socket "$sock" events --json >"$tmp/events.out" 2>&1 &
	epid=$!
	track "$epid"
	if wait_until 10 eval '[[ $(stat_of connbeat_events_subscribers) -ge 1 ]]'; then
		local prev cur i b
		for ((b = 0; b < 10; b++)); do
			timeout -k 5 60 "$build/tests/tools/churn" --server-first --threads 1 \
				--count 1000 --seconds 30 >/dev/null
			# the burst is out of the daemon once delivered + missed stops growing
			prev=-1
			for ((i = 0; i < 100; i++)); do
				cur=$(($(stat_of connbeat_events_delivered_total) +
					$(stat_of connbeat_events_missed_total)))
				[[ $cur -eq $prev && $cur -gt 0 ]] && break
				prev=$cur
				sleep 0.2
			done
		done
		d=$(stat_of connbeat_events_delivered_total)
		m=$(stat_of connbeat_events_missed_total)
		n=$(grep -c '"event":"close"' "$tmp/events.out")
		echo "# events bursts: 10 x 1000 connections, delivered $d, missed $m, $n close lines"
		echo "bench: events_delivered_pct $(awk -v d="$d" -v m="$m" \
			'BEGIN {printf "%.2f", (d + m > 0 ? 100 * d / (d + m) : 0)}') %"
	else
		note "connbeat events did not subscribe"
	fi
	kill -INT "$epid" 2>/dev/null
	wait_until 10 eval "! kill -0 $epid 2>/dev/null" || stop_pid "$epid" 5
	wait "$epid" 2>/dev/null
	untrack "$epid"
	stop_daemon
}

for w in "${workloads[@]}"; do
	if ! declare -F "wl_$w" >/dev/null; then
		note "unknown workload '$w'"
		failed+=("$w")
		continue
	fi
	measure "$w"
done
if [[ ${#failed[@]} -gt 0 ]]; then
	note "not measured: ${failed[*]}"
	exit 1
fi
exit 0
