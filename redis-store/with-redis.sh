#!/usr/bin/env bash
# Runs a command (the cellgate-redis tests, its bench) against a real redis-server: started here
# on a free loopback port, without persistence, named to the command by CELLGATE_REDIS_URL, and
# stopped on exit, also when the command fails. (The outage and Cluster tests start, and kill,
# servers of their own on other free ports.)
# Usage: redis-store/with-redis.sh COMMAND [ARGUMENTS...]
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGUMENTS...]" >&2; exit 2; }
# A port nothing answers on (a connection to it is refused).
port=
for _ in $(seq 1 50); do
	candidate=$((20000 + RANDOM % 30000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
		port=$candidate
		break
	fi
done
[ -n "$port" ] || { echo "no free loopback port found" >&2; exit 1; }
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
	>"$dir/redis.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 200); do
	redis-cli -p "$port" ping >/dev/null 2>&1 && break
	sleep 0.05
done
redis-cli -p "$port" ping >/dev/null || { cat "$dir/redis.log" >&2; exit 1; }
echo "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port"
CELLGATE_REDIS_URL="redis://127.0.0.1:$port/" "$@"
