#!/usr/bin/env bash
# Starts the example server on 127.0.0.1 on a free port, runs load.sh against it, and stops
# the server however the script ends (trap).
#
#   demo.sh SERVER_BINARY [RATE [REQUESTS]]
set -euo pipefail

server=${1:?usage: demo.sh SERVER_BINARY [RATE [REQUESTS]]}
rate=${2:-5/10 seconds}
requests=${3:-7}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pid=

stop() {
    local status=$?
    if [ "$status" -ne 0 ] && [ -s "$work/err" ]; then
        echo "server's stderr:" >&2
        cat "$work/err" >&2
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        # SIGTERM stops the accept loop; the server then drains and exits.
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop EXIT INT TERM

# Port 0: the system picks a free port; the server prints the URL once it listens.
"$server" 127.0.0.1 0 "$rate" >"$work/out" 2>"$work/err" &
pid=$!
url=
for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$work/out")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; echo "server exited" >&2; exit 1; }
    sleep 0.05
done
[ -n "$url" ] || { echo "server did not start" >&2; exit 1; }
cat "$work/out"
"$here/load.sh" "$url" "$requests"
