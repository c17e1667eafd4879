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
#   bench/run.sh --targets ours,cluster --only fanout5k,write   # single node beside the cluster
#   bench/run.sh --profile             # also CPU/heap profiles of ours (--pprof) per workload
#   bench/run.sh --only soak           # the soak alone (SOAK_DURATION, default 3m; not in the full set)
#   bench/run.sh --targets ours --only write --load-flags -idempotency-keys   # every post keyed
#   NICE=0 bench/run.sh                # do not raise the run's CPU priority (see below)
#
# Workloads: fanout5k, fanout10k, search, idle, write, storm; and soak, run
# only when named: ours with its abuse limits on (`chatload soak` starts it),
# 3,000 users churning their streams and posting while an attacker holds
# idle sockets and floods posts; it prints its own report (also in
# soak.md) and makes run.sh exit 1 when a check fails.
# Targets: ours (one ssechat on SQLite), socketio (the baseline), cluster (two
# ssechat instances on PostgreSQL + Redis, on the same cores; chatload spreads
# its users over both). cluster runs only fanout5k and write; the other
# workloads stay ours/socketio only. Each cluster workload gets a database of
# its own (PG_URL/ssechat_bench_PID_N, created and dropped) and a Redis prefix
# of its own (ssechat-bench:PID:N:, whose keys are deleted afterwards);
# --profile profiles the first instance. PostgreSQL keeps its default
# durable commits (synchronous_commit on); PG_URL (postgres://postgres@127.0.0.1:5432)
# and REDIS_URL (redis://127.0.0.1:6379/0) say where they are.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=1
ONLY="fanout5k,fanout10k,search,idle,write,storm"
TARGETS="ours,socketio"
DURATION=20s
SEARCH_DURATION=10s
SOAK_DURATION=${SOAK_DURATION:-3m}
RATES="20,50,80,110,150,200,300,400,500,650"
OURS_PORT=18090
SIO_PORT=18091
CLUSTER_PORTS=(18093 18094)
CLUSTER_GOMAXPROCS=${CLUSTER_GOMAXPROCS:-$(($(nproc) / ${#CLUSTER_PORTS[@]} > 0 ? $(nproc) / ${#CLUSTER_PORTS[@]} : 1))}
CLUSTER_WORKLOADS=",fanout5k,write,"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
OUT=""
EXTRA_OURS_FLAGS=""
EXTRA_LOAD_FLAGS=""
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
	--load-flags) EXTRA_LOAD_FLAGS=$2; shift 2 ;;
	--profile) PROFILE=1; shift ;;
	-h | --help) sed -n '2,30p' "$0"; exit 0 ;;
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

# The cluster's services: psql and redis-cli with bounded waits.
psql_admin() { PGCONNECT_TIMEOUT=5 timeout 60 psql "$PG_URL/postgres?sslmode=disable" -v ON_ERROR_STOP=1 -qtAX "$@"; }
psql_bench() { PGCONNECT_TIMEOUT=5 timeout 60 psql "$PG_URL/$CLUSTER_DB?sslmode=disable" -v ON_ERROR_STOP=1 -qtAX "$@"; }
redis() { timeout 30 redis-cli -u "$REDIS_URL" "$@"; }
if has_target cluster; then
	psql_admin -c 'SELECT 1' >/dev/null || { echo "cluster: PostgreSQL at $PG_URL does not answer" >&2; exit 1; }
	[ "$(redis ping 2>&1)" = PONG ] || { echo "cluster: Redis at $REDIS_URL does not answer" >&2; exit 1; }
	echo "# cluster: PostgreSQL synchronous_commit=$(psql_admin -c 'SHOW synchronous_commit'), fsync=$(psql_admin -c 'SHOW fsync')" >&2
fi

# PIDS: the servers of the current workload (one, or the cluster's two).
PIDS=()
stop_server() {
	local pid alive
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	# Together at most 10 s for a graceful exit, then KILL.
	for _ in $(seq 1 100); do
		alive=0
		for pid in "${PIDS[@]}"; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do
		if kill -KILL "$pid" 2>/dev/null; then
			echo "# server $pid had not exited 10 s after SIGTERM: killed" >&2
		fi
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
	PID=""
}

# The current cluster workload's database and Redis prefix, removed by
# drop_cluster_data once its instances are stopped.
CLUSTER_N=0
CLUSTER_DB=""
CLUSTER_PREFIX=""
drop_cluster_data() {
	if [ -n "$CLUSTER_DB" ]; then
		psql_admin -c "DROP DATABASE IF EXISTS \"$CLUSTER_DB\" WITH (FORCE)" >&2 ||
			echo "# could not drop the database $CLUSTER_DB" >&2
		CLUSTER_DB=""
	fi
	if [ -n "$CLUSTER_PREFIX" ]; then
		redis --scan --pattern "${CLUSTER_PREFIX}*" | xargs -r -n 500 timeout 30 redis-cli -u "$REDIS_URL" del >/dev/null ||
			echo "# could not delete the Redis keys ${CLUSTER_PREFIX}*" >&2
		CLUSTER_PREFIX=""
	fi
}
# pg_waits_start FILE / pg_waits_stop: with --profile, what the cluster
# database's busy backends are doing, sampled every 100 ms by one psql
# session: a line per sample, its time then one word per busy backend,
# wait:state:statement. Waits: Lock:transactionid = waiting for the log
# head's row lock (the other instance's append holds it); IO:WALSync and
# LWLock:WALWrite = the commit's WAL flush; Client:ClientRead with state
# idle_in_transaction = a transaction waiting for ssechat (between the
# lock and the insert: the broker's catch-up and validation, and the round
# trips); CPU = running. Statements: lock (SELECT … FOR UPDATE), read (a
# SELECT of events: the tailer or the catch-up), insert, commit, …
# pg_waits_summary FILE sums them up.
WATCH_PID=""
pg_waits_start() {
	printf '%s\n\\watch 0.1\n' "SELECT to_char(clock_timestamp(), 'HH24:MI:SS.MS') || coalesce(' ' || string_agg(w, ' ' ORDER BY w), '')
		FROM (SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') || ':' || replace(state, ' ', '_') || ':' ||
			CASE WHEN query ILIKE '%FOR UPDATE%' THEN 'lock' WHEN query ILIKE '%SELECT%FROM events%' THEN 'read'
				ELSE lower(split_part(ltrim(query), ' ', 1)) END AS w
			FROM pg_stat_activity
			WHERE datname = '$CLUSTER_DB' AND pid <> pg_backend_pid() AND state <> 'idle') busy;" |
		timeout 600 psql "$PG_URL/postgres?sslmode=disable" -qtAX >"$1" 2>&1 &
	WATCH_PID=$!
}
pg_waits_summary() {
	awk 'NF > 1 { busy++; for (i = 2; i <= NF; i++) c[$i]++; $1 = ""; p[$0]++; next } { quiet++ }
	END {
		printf "%d samples (every 100 ms) with a busy backend of the database, %d with none\n\nbackend states, summed over the samples:\n", busy, quiet
		for (k in c) printf "%7d %s\n", c[k], k | "sort -rn"
		close("sort -rn")
		printf "\nmost frequent samples (all busy backends at one moment):\n"
		for (k in p) printf "%7d%s\n", p[k], k | "sort -rn | head -15"
	}' "$1"
}
pg_waits_stop() {
	if [ -n "$WATCH_PID" ]; then
		kill -TERM "$WATCH_PID" 2>/dev/null || true
		wait "$WATCH_PID" 2>/dev/null || true
		WATCH_PID=""
	fi
}
cleanup() {
	pg_waits_stop
	stop_server
	drop_cluster_data
}
trap cleanup EXIT

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
	"$WORK/ssechat" --addr "127.0.0.1:$OURS_PORT" --db "$WORK/ours.db" --password-cost 4 --limits off --metrics-addr "" \
		--log-level warn "${PROF_FLAGS[@]}" $EXTRA_OURS_FLAGS >>"$WORK/ours.log" 2>&1 &
	PID=$!
	PIDS=("$PID")
	wait_up "http://127.0.0.1:$OURS_PORT/api/me" "401 200"
}

# start_cluster LABEL: a fresh database and Redis prefix, and two instances
# on them (logs in cluster-a.log and cluster-b.log, each workload headed by
# its label). The first instance gets --pprof with --profile.
start_cluster() {
	local i port log prof letters=abcdefghijklmnopqrstuvwxyz
	CLUSTER_N=$((CLUSTER_N + 1))
	CLUSTER_DB="ssechat_bench_$$_$CLUSTER_N"
	CLUSTER_PREFIX="ssechat-bench:$$:$CLUSTER_N:"
	for port in "${CLUSTER_PORTS[@]}"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "cluster: port $port is taken (another run?)" >&2
			return 1
		fi
	done
	psql_admin -c "CREATE DATABASE \"$CLUSTER_DB\"" >&2
	for i in "${!CLUSTER_PORTS[@]}"; do
		port=${CLUSTER_PORTS[$i]}
		log="$WORK/cluster-${letters:i:1}.log"
		echo "=== $(date -u +%H:%M:%S) $1 (database $CLUSTER_DB, prefix $CLUSTER_PREFIX)" >>"$log"
		prof=()
		if [ "$i" = 0 ]; then prof=("${PROF_FLAGS[@]}"); fi
		# shellcheck disable=SC2086
		# Each instance gets its share of the cores, as it would on a machine
		# of its own: GOMAXPROCS, and with it the default --write-rate, is
		# per process, and two processes each pacing writes for the whole
		# machine make twice the writes a single node makes.
		GOMAXPROCS=$CLUSTER_GOMAXPROCS "$WORK/ssechat" --addr "127.0.0.1:$port" --db "$PG_URL/$CLUSTER_DB?sslmode=disable" \
			--redis "$REDIS_URL" --redis-prefix "$CLUSTER_PREFIX" --password-cost 4 --limits off --metrics-addr "" \
			--log-level warn "${prof[@]}" $EXTRA_OURS_FLAGS >>"$log" 2>&1 &
		PIDS+=("$!")
	done
	for port in "${CLUSTER_PORTS[@]}"; do
		wait_up "http://127.0.0.1:$port/api/me" "401 200"
	done
}

start_sio() { # announce-joins (1 or 0)
	(cd "$ROOT/bench/socketio" && PORT=$SIO_PORT ANNOUNCE_JOINS=$1 exec node server.js >>"$WORK/socketio.log" 2>&1) &
	PID=$!
	PIDS=("$PID")
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

# run_load WORKLOAD LABEL ANNOUNCE chatload-args... : the same load against each target.
run_load() {
	local workload=$1 label=$2 announce=$3 addrs pids waits syncs
	shift 3
	if has_target ours; then
		echo "# $label: ours" >&2
		wait_quiet
		start_ours
		"$WORK/chatload" -target ours -addr "127.0.0.1:$OURS_PORT" -pid "$PID" -sessions "$WORK/sessions.json" \
			-label "$label" -out "$OUT" "${SERVER_PROF[@]}" $EXTRA_LOAD_FLAGS "$@" >&2 || echo "# $label ours: chatload failed" >&2
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
	if has_target cluster && [[ $CLUSTER_WORKLOADS == *",$workload,"* ]]; then
		echo "# $label: cluster" >&2
		wait_quiet
		start_cluster "$label"
		addrs=$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")
		pids=$(printf '%s,' "${PIDS[@]}")
		waits="$WORK/profiles/$(echo "$label" | tr -c 'A-Za-z0-9_\n-' '-')-cluster.pgwaits"
		if [ "$PROFILE" = 1 ]; then pg_waits_start "$waits.txt"; fi
		syncs=$(psql_admin -c 'SELECT wal_sync FROM pg_stat_wal' 2>/dev/null || echo 0)
		# No sessions file: the database is new. The PostgreSQL backends of
		# this database and Redis are measured apart from other processes.
		"$WORK/chatload" -target ours -as cluster -addr "${addrs%,}" -pid "${pids%,}" \
			-aux-procs "$CLUSTER_DB,redis-server" -label "$label" -out "$OUT" "${SERVER_PROF[@]}" $EXTRA_LOAD_FLAGS "$@" >&2 ||
			echo "# $label cluster: chatload failed" >&2
		if [ "$PROFILE" = 1 ]; then
			pg_waits_stop
			pg_waits_summary "$waits.txt" >"$waits.top.txt" || true
		fi
		# How many events each WAL flush carried (group commit), over the
		# whole chatload run: wal_sync counts the flushes of the whole
		# PostgreSQL server, so of other databases' work too.
		echo "# $label cluster: $(psql_bench -c "SELECT (SELECT count(*) FROM events) || ' events, ' ||
			(SELECT wal_sync FROM pg_stat_wal) - $syncs || ' WAL fsyncs (all databases), ' ||
			xact_commit || ' transactions committed (reads included)'
			FROM pg_stat_database WHERE datname = current_database()" 2>&1)" >&2
		stop_server
		drop_cluster_data
	fi
}

S5K=$(scaled 5000)
S10K=$(scaled 10000)
NOTES=()
if want fanout5k; then
	run_load fanout5k "fanout $S5K subs × 20 msg/s" 0 -mode fanout -subs "$S5K" -rate 20 -duration "$DURATION" -room f5k -timeout 5m
	NOTES+=(-note "fanout $S5K subs × 20 msg/s=0 lost, p99 ≤ 150 ms$(has_target cluster && echo '; cluster: 0 lost, p99 ≤ 1.5× ours' || true)")
fi
if want fanout10k; then
	run_load fanout10k "fanout $S10K subs × 20 msg/s" 0 -mode fanout -subs "$S10K" -rate 20 -duration "$DURATION" -room f10k -timeout 6m
	NOTES+=(-note "fanout $S10K subs × 20 msg/s=0 lost, p99 ≤ 400 ms")
fi
if want search; then
	run_load search "max rate, $S5K subs, p99 ≤ 250 ms" 0 -mode fanout -subs "$S5K" -rates "$RATES" -search-p99 250ms \
		-publishers 8 -duration "$SEARCH_DURATION" -drain 30s -room f5k -timeout 6m
	NOTES+=(-note "max rate, $S5K subs, p99 ≤ 250 ms=≥ 50 msg/s, 0 lost")
fi
if want idle; then
	run_load idle "idle $S10K conns" 0 -mode idle -subs "$S10K" -hold 5s -timeout 4m
	NOTES+=(-note "idle $S10K conns=≤ 24 KiB/conn (stretch 16)")
fi
if want write; then
	run_load write "write: 100 members, 50 posters" 1 -mode write -members 100 -posters 50 -duration 10s -room w100 -timeout 3m
	NOTES+=(-note "write: 100 members, 50 posters=≥ 10,000 acked msg/s$(has_target cluster && echo '; cluster: ≥ 0.5× ours' || true)")
fi
if want storm; then
	run_load storm "storm: $S5K log in+join+stream" 1 -mode storm -subs "$S5K" -room storm -concurrency 500 \
		-connect-timeout 2m -timeout 4m
	NOTES+=(-note "storm: $S5K log in+join+stream=all ready ≤ 10 s")
fi

SOAK_FAILED=0
if want soak && has_target ours; then
	echo "# soak: ours with its limits on, $SOAK_DURATION" >&2
	wait_quiet
	mkdir -p "$WORK/soak"
	{
		echo "## soak, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
		echo
		echo "\`chatload soak -users $(scaled 3000) -duration $SOAK_DURATION\` (server: \`$WORK/soak/server.log\`)"
	} >"$WORK/soak.md"
	if ! "$WORK/chatload" soak -server "$WORK/ssechat" -dir "$WORK/soak" -users "$(scaled 3000)" \
		-duration "$SOAK_DURATION" -out "$WORK/soak.jsonl" >>"$WORK/soak.md"; then
		SOAK_FAILED=1
	fi
	cat "$WORK/soak.md"
	echo
	echo "Soak: $WORK/soak.md, figures $WORK/soak.jsonl"
fi

if [ -s "$OUT" ]; then
	echo >&2
	{
		echo "## $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
		echo
		"$WORK/chatload" table -in "$OUT" -targets "$TARGETS" -vs cluster=ours "${NOTES[@]}"
	} | tee "$WORK/table.md"
	echo
	echo "Raw results: $OUT (table also in $WORK/table.md)"
fi
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
exit "$SOAK_FAILED"
