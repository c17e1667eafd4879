#!/usr/bin/env bash
# bench/run.sh — runs the same loads against ssechat and the Socket.IO
# baseline (bench/socketio) in one run on this machine and prints a markdown
# table, ours vs baseline. Every server is started fresh for each workload on
# 127.0.0.1 and stopped by its PID; every load is bounded in time.
#
#   bench/run.sh                       # the full set (about 10-15 minutes)
#   bench/run.sh --scale 0.1           # a tenth of every size, for a smoke run
#   bench/run.sh --only fanout5k,idle  # a subset
#   bench/run.sh --targets ours        # one system only
#   bench/run.sh --profile             # also CPU/heap profiles of ours (--pprof) per workload
#   NICE=0 bench/run.sh                # do not raise the run's CPU priority (see below)
#
# Workloads: fanout5k, fanout10k, search, idle, write, storm.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=1
ONLY="fanout5k,fanout10k,search,idle,write,storm"
TARGETS="ours,socketio"
DURATION=20s
SEARCH_DURATION=10s
RATES="20,50,80,110,150,200,300,400,500,650"
OURS_PORT=18090
SIO_PORT=18091
OUT=""
EXTRA_OURS_FLAGS=""
PROFILE=0
PPROF_PORT=18092

while [ $# -gt 0 ]; do
	case "$1" in
	--scale) SCALE=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--targets) TARGETS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--search-duration) SEARCH_DURATION=$2; shift 2 ;;
	--rates) RATES=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--server-flags) EXTRA_OURS_FLAGS=$2; shift 2 ;;
	--profile) PROFILE=1; shift ;;
	-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done

WORK=$(mktemp -d /tmp/ssechat-bench.XXXXXX)
OUT=${OUT:-$WORK/results.jsonl}
: >"$OUT"
echo "# work dir $WORK, results $OUT" >&2

# Every connection is a descriptor on both ends.
ulimit -n "$(ulimit -Hn)"

# The machine is shared (test suites, browsers): a benchmark that gets only
# part of the two cores measures the neighbours. As root, raise this script's
# CPU priority (the servers and chatload inherit it) so that other work
# yields; chatload still records and flags the CPU others used.
NICE=${NICE:--10}
if [ "$NICE" != 0 ] && [ "$(id -u)" = 0 ]; then
	renice -n "$NICE" -p $$ >/dev/null && echo "# running at nice $NICE" >&2
fi

scaled() { awk -v n="$1" -v s="$SCALE" 'BEGIN { v = int(n * s); if (v < 1) v = 1; print v }'; }
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
has_target() { case ",$TARGETS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

echo "# building" >&2
(cd "$ROOT" && go build -o "$WORK/ssechat" . && go build -o "$WORK/chatload" ./cmd/chatload)
if has_target socketio; then
	if [ ! -d "$ROOT/bench/socketio/node_modules" ]; then
		(cd "$ROOT/bench/socketio" && npm ci --no-audit --no-fund >&2)
	fi
fi

PID=""
stop_server() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	PID=""
}
trap stop_server EXIT

wait_up() { # url expected-codes
	for _ in $(seq 1 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
		case " $2 " in *" $code "*) return 0 ;; esac
		sleep 0.1
	done
	echo "server at $1 did not come up" >&2
	return 1
}

# One database per run for ours: accounts and sessions made by the first
# workload are reused (through the sessions file) by the later ones, so only
# the connect storm pays for logins.
PROF_FLAGS=()
SERVER_PROF=()
if [ "$PROFILE" = 1 ]; then
	mkdir -p "$WORK/profiles"
	PROF_FLAGS=(--pprof "127.0.0.1:$PPROF_PORT")
	SERVER_PROF=(-server-pprof "http://127.0.0.1:$PPROF_PORT" -profile-dir "$WORK/profiles")
fi
start_ours() {
	# shellcheck disable=SC2086
	"$WORK/ssechat" --addr "127.0.0.1:$OURS_PORT" --db "$WORK/ours.db" --password-cost 4 \
		--log-level warn "${PROF_FLAGS[@]}" $EXTRA_OURS_FLAGS >>"$WORK/ours.log" 2>&1 &
	PID=$!
	wait_up "http://127.0.0.1:$OURS_PORT/api/me" "401 200"
}

start_sio() { # announce-joins (1 or 0)
	(cd "$ROOT/bench/socketio" && PORT=$SIO_PORT ANNOUNCE_JOINS=$1 exec node server.js >>"$WORK/socketio.log" 2>&1) &
	PID=$!
	wait_up "http://127.0.0.1:$SIO_PORT/healthz" "200"
}

# busy_pct: CPU used by the whole machine over one second, in % of one core
# (USER_HZ is 100, so ticks per second are percent).
busy_pct() {
	local u n s i w q sq st a b
	read -r _ u n s i w q sq st _ </proc/stat
	a=$((u + n + s + q + sq + st))
	sleep 1
	read -r _ u n s i w q sq st _ </proc/stat
	b=$((u + n + s + q + sq + st))
	echo $((b - a))
}

# wait_quiet: the loads share two cores with whatever else runs here (a test
# suite, a browser): wait up to QUIET_WAIT (45) seconds for the machine to be idle
# before each measurement. chatload flags results taken on a busy machine.
QUIET_WAIT=${QUIET_WAIT:-45}
wait_quiet() {
	local waited=0 busy
	while busy=$(busy_pct) && [ "$busy" -gt 15 ]; do
		if [ "$waited" -eq 0 ]; then
			echo "# machine busy (${busy}% of a core used by other processes); waiting up to ${QUIET_WAIT}s" >&2
		fi
		waited=$((waited + 1))
		if [ "$waited" -ge "$QUIET_WAIT" ]; then
			echo "# still busy (${busy}%): measuring anyway; results will be flagged" >&2
			return 0
		fi
	done
}

# run_load LABEL ANNOUNCE chatload-args... : the same load against each target.
run_load() {
	local label=$1 announce=$2
	shift 2
	if has_target ours; then
		echo "# $label: ours" >&2
		wait_quiet
		start_ours
		"$WORK/chatload" -target ours -addr "127.0.0.1:$OURS_PORT" -pid "$PID" -sessions "$WORK/sessions.json" \
			-label "$label" -out "$OUT" "${SERVER_PROF[@]}" "$@" >&2 || echo "# $label ours: chatload failed" >&2
		stop_server
	fi
	if has_target socketio; then
		echo "# $label: socketio" >&2
		wait_quiet
		start_sio "$announce"
		"$WORK/chatload" -target socketio -addr "127.0.0.1:$SIO_PORT" -pid "$PID" \
			-label "$label" -out "$OUT" "$@" >&2 || echo "# $label socketio: chatload failed" >&2
		stop_server
	fi
}

S5K=$(scaled 5000)
S10K=$(scaled 10000)
NOTES=()
if want fanout5k; then
	run_load "fanout $S5K subs × 20 msg/s" 0 -mode fanout -subs "$S5K" -rate 20 -duration "$DURATION" -room f5k -timeout 5m
	NOTES+=(-note "fanout $S5K subs × 20 msg/s=0 lost, p99 ≤ 150 ms")
fi
if want fanout10k; then
	run_load "fanout $S10K subs × 20 msg/s" 0 -mode fanout -subs "$S10K" -rate 20 -duration "$DURATION" -room f10k -timeout 6m
	NOTES+=(-note "fanout $S10K subs × 20 msg/s=0 lost, p99 ≤ 400 ms")
fi
if want search; then
	run_load "max rate, $S5K subs, p99 ≤ 250 ms" 0 -mode fanout -subs "$S5K" -rates "$RATES" -search-p99 250ms \
		-publishers 8 -duration "$SEARCH_DURATION" -drain 30s -room f5k -timeout 6m
	NOTES+=(-note "max rate, $S5K subs, p99 ≤ 250 ms=≥ 50 msg/s, 0 lost")
fi
if want idle; then
	run_load "idle $S10K conns" 0 -mode idle -subs "$S10K" -hold 5s -timeout 4m
	NOTES+=(-note "idle $S10K conns=≤ 24 KiB/conn (stretch 16)")
fi
if want write; then
	run_load "write: 100 members, 50 posters" 1 -mode write -members 100 -posters 50 -duration 10s -room w100 -timeout 3m
	NOTES+=(-note "write: 100 members, 50 posters=≥ 10,000 acked msg/s")
fi
if want storm; then
	run_load "storm: $S5K log in+join+stream" 1 -mode storm -subs "$S5K" -room storm -concurrency 500 \
		-connect-timeout 2m -timeout 4m
	NOTES+=(-note "storm: $S5K log in+join+stream=all ready ≤ 10 s")
fi

echo >&2
{
	echo "## $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo
	"$WORK/chatload" table -in "$OUT" -targets "$TARGETS" "${NOTES[@]}"
} | tee "$WORK/table.md"
echo
echo "Raw results: $OUT (table also in $WORK/table.md)"
if [ "$PROFILE" = 1 ]; then
	# A short excerpt of every profile, next to it, for BENCHMARKS.md.
	for p in "$WORK"/profiles/*.pprof; do
		[ -e "$p" ] || continue
		case "$p" in
		*.heap.pprof) (cd "$ROOT" && go tool pprof -top -nodecount=15 -sample_index=inuse_space "$WORK/ssechat" "$p") >"$p.top.txt" 2>/dev/null || true ;;
		*) (cd "$ROOT" && go tool pprof -top -nodecount=25 "$WORK/ssechat" "$p") >"$p.top.txt" 2>/dev/null || true ;;
		esac
	done
	echo "Profiles: $WORK/profiles (*.top.txt: excerpts)"
fi
