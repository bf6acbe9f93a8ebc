#!/usr/bin/env bash
# Requests per second over loopback: SERVER (the bench_server example) in each mode, loaded
# by wrk. Modes run interleaved, ROUNDS times, each after a short warm-up; the best round of
# each mode is reported, with its overhead per request over no limiter. Every server is
# stopped (by its own pid) however this script ends, and stops itself after 10 minutes anyway.
#
# Usage: tower/wrk.sh SERVER    (WRK_DURATION=10s WRK_THREADS=1 WRK_CONNECTIONS=50 ROUNDS=3)
set -euo pipefail
server=${1:?usage: wrk.sh SERVER}
duration=${WRK_DURATION:-10s}
threads=${WRK_THREADS:-1}
connections=${WRK_CONNECTIONS:-50}
rounds=${ROUNDS:-3}
modes=(none cellgate governor)
work=$(mktemp -d)
pid=
stop() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}
trap 'stop; rm -rf "$work"' EXIT

# Starts SERVER in MODE and sets $port once it printed it (10 s at most).
start() {
	: > "$work/port"
	BENCH_SERVER_MAX_S=600 "$server" "$1" > "$work/port" &
	pid=$!
	for _ in $(seq 100); do
		port=$(head -n1 "$work/port")
		[ -n "$port" ] && return 0
		sleep 0.1
	done
	echo "the $1 server printed no port" >&2
	return 1
}

declare -A best
for round in $(seq "$rounds"); do
	for mode in "${modes[@]}"; do
		start "$mode"
		url="http://127.0.0.1:$port/"
		# The limiter must admit everything and send its headers, or the run measures the wrong thing.
		headers=$(curl -s -D - -o /dev/null "$url" 2>/dev/null || true)
		case $mode in
			cellgate) grep -qi '^ratelimit:' <<<"$headers" || { echo "cellgate sent no RateLimit header" >&2; exit 1; } ;;
			governor) grep -qi '^x-ratelimit-remaining:' <<<"$headers" || { echo "governor sent no x-ratelimit-remaining header" >&2; exit 1; } ;;
		esac
		wrk -t"$threads" -c"$connections" -d2s "$url" > /dev/null
		wrk -t"$threads" -c"$connections" -d"$duration" "$url" > "$work/out"
		stop
		non2xx=$(awk '/Non-2xx/ { print $NF }' "$work/out")
		[ -z "$non2xx" ] || { echo "$mode: $non2xx responses were not 2xx (a denial?)" >&2; exit 1; }
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$work/out")
		printf 'round %s  %-9s %12s req/s\n' "$round" "$mode" "$rps"
		if [ -z "${best[$mode]:-}" ] || awk -v a="$rps" -v b="${best[$mode]}" 'BEGIN { exit !(a > b) }'; then
			best[$mode]=$rps
		fi
	done
done

printf '\nbest of %s rounds, %s each, wrk -t%s -c%s, one route answering "ok":\n' \
	"$rounds" "$duration" "$threads" "$connections"
printf '  %-9s %12s %10s %22s\n' mode req/s 'vs none' 'overhead per request'
for mode in "${modes[@]}"; do
	awk -v mode="$mode" -v rps="${best[$mode]}" -v none="${best[none]}" 'BEGIN {
		overhead_us = (1e6 / rps) - (1e6 / none)
		printf "  %-9s %12.0f %9.3fx %19.2f us\n", mode, rps, rps / none, overhead_us
	}'
done
