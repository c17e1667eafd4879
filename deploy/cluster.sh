#!/usr/bin/env bash
# A chat cluster on this machine in one command: ssechat instances on
# PostgreSQL (the truth) and Redis (the news), with nginx in front as a
# plain round-robin load balancer (deploy/nginx.conf). Ctrl-C stops all of
# it. See README.md, "Many instances".
#
#   deploy/cluster.sh       # two instances on :8081 and :8082, nginx on :8080
#   deploy/cluster.sh 3     # three instances, :8081 to :8083
#
# An instance that exits (kill -9 it to see the others carry on) is started
# again RESTART_AFTER seconds later. Settings, from the environment:
#   PGHOST, PGPORT, PGUSER  PostgreSQL (127.0.0.1, 5432, postgres; trust auth)
#   DB_NAME                 database, created when missing (ssechat)
#   REDIS_URL               Redis (redis://127.0.0.1:6379/0)
#   LB_PORT, BASE_PORT      nginx's port (8080), the first instance's (8081)
#   CLUSTER_DIR             binary, pid files, logs (/tmp/ssechat-cluster)
#   RESTART_AFTER           seconds before a dead instance restarts (5)
set -euo pipefail

instances=${1:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
pg_user=${PGUSER:-postgres}
db_name=${DB_NAME:-ssechat}
redis=${REDIS_URL:-redis://127.0.0.1:6379/0}
lb_port=${LB_PORT:-8080}
base_port=${BASE_PORT:-8081}
dir=${CLUSTER_DIR:-/tmp/ssechat-cluster}
restart_after=${RESTART_AFTER:-5}
PATH=$PATH:/usr/sbin # nginx, for users without sbin in their PATH

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

[[ $instances =~ ^[0-9]+$ ]] && ((instances >= 1 && instances <= 26)) ||
	die "usage: $0 [number of instances, 1 to 26; default 2]"
for tool in go nginx psql redis-cli curl; do
	command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install nginx-light postgresql-client redis-tools curl)"
done
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
for ((i = 0; i < instances; i++)); do
	ports+=($((base_port + i)))
done
for port in "$lb_port" "${ports[@]}"; do
	! taken "$port" || die "port $port is taken (another cluster.sh?)"
done

# PostgreSQL: the database is created once; every instance migrates its
# schema at start, which is safe when they start together.
psql_admin() {
	psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -qtAX "$@"
}
psql_admin -c 'SELECT 1' >/dev/null || die "PostgreSQL at $pg_host:$pg_port does not answer"
if [[ $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db_name'") != 1 ]]; then
	psql_admin -c "CREATE DATABASE \"$db_name\""
	echo "created the database $db_name"
fi
db="postgres://$pg_user@$pg_host:$pg_port/$db_name?sslmode=disable"
[[ $(redis-cli -u "$redis" ping 2>&1) == PONG ]] || die "Redis at $redis does not answer"

# nginx started as root runs its workers as nobody: they must be able to
# enter the directory of their temporary files.
rm -rf "$dir"
mkdir -p "$dir"
chmod 755 "$dir"
echo "building ssechat..."
(cd "$root" && go build -o "$dir/ssechat" .)

supervisors=()
nginx_pid=
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "stopping the cluster..."
	# The instances first, gracefully: their streams get a shutdown event
	# through nginx. Each supervisor passes the TERM on and waits.
	for pid in "${supervisors[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${supervisors[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $nginx_pid ]]; then
		kill -TERM "$nginx_pid" 2>/dev/null || true
		wait "$nginx_pid" 2>/dev/null || true
	fi
	echo "stopped; logs are in $dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# supervise NAME PORT runs one instance and starts it again when it exits,
# until it is told to stop (TERM), which it passes on to the instance.
supervise() {
	local name=$1 port=$2 child status
	trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM
	while :; do
		# nginx on this machine is the proxy whose X-Forwarded-For is believed.
		"$dir/ssechat" --addr "127.0.0.1:$port" --db "$db" --redis "$redis" \
			--trusted-proxies 127.0.0.1 --metrics-addr "127.0.0.1:$((port + 1000))" --shutdown-timeout 5s >>"$dir/$name.log" 2>&1 &
		child=$!
		echo "$child" >"$dir/$name.pid"
		status=0
		wait "$child" 2>/dev/null || status=$?
		echo "$(date +%T) instance $name (port $port, pid $child) exited with status $status; starting it again in ${restart_after}s" >&2
		sleep "$restart_after" &
		child=$!
		wait "$child" || true
	done
}

# Job control puts each background job in a process group of its own, so
# that Ctrl-C reaches this script alone and cleanup stops the rest in order.
set -m
letters=abcdefghijklmnopqrstuvwxyz
names=()
for ((i = 0; i < instances; i++)); do
	name=${letters:i:1}
	names+=("$name")
	supervise "$name" "${ports[i]}" &
	supervisors+=($!)
done
for i in "${!names[@]}"; do
	log=$dir/${names[i]}.log
	for ((try = 0; try < 300; try++)); do
		grep -q 'msg=serving' "$log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q 'msg=serving' "$log" 2>/dev/null || {
		cat "$log" >&2
		die "instance ${names[i]} did not start (its log is above)"
	}
done

# nginx.conf is a template: fill in the directory, the listen address, and
# one upstream line per instance.
upstreams=()
for port in "${ports[@]}"; do
	upstreams+=("127.0.0.1:$port")
done
while IFS= read -r line || [[ -n $line ]]; do
	line=${line//'{{DIR}}'/$dir}
	line=${line//'{{LISTEN}}'/127.0.0.1:$lb_port}
	if [[ $line == *'{{UPSTREAM}}'* ]]; then
		for u in "${upstreams[@]}"; do
			printf '%s\n' "${line//'{{UPSTREAM}}'/$u}"
		done
	else
		printf '%s\n' "$line"
	fi
done <"$root/deploy/nginx.conf" >"$dir/nginx.conf"
nginx -q -t -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" || die "nginx rejects $dir/nginx.conf"
nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' &
nginx_pid=$!
for ((try = 0; try < 100; try++)); do
	curl -sf -o /dev/null "http://127.0.0.1:$lb_port/" && break
	sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$lb_port/" || die "nginx does not answer on :$lb_port (see $dir/error.log)"

cat <<EOF

ssechat cluster: http://127.0.0.1:$lb_port (nginx, round robin) in front of
EOF
for i in "${!names[@]}"; do
	echo "  instance ${names[i]}: http://127.0.0.1:${ports[i]}  pid $(cat "$dir/${names[i]}.pid")  log $dir/${names[i]}.log"
done
cat <<EOF
on PostgreSQL ${db} and Redis $redis.

  open http://127.0.0.1:$lb_port in two browsers, or chat with curl (README.md, "Many instances")
  kill -9 \$(cat $dir/a.pid)     kill instance a; it is started again ${restart_after}s later
  tail -f $dir/access.log   which instance served each request (upstream=)
  Ctrl-C                                stop everything

EOF
# Until Ctrl-C, or until nginx dies.
wait "$nginx_pid" || true
die "nginx exited (see $dir/error.log)"
