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
    local status=$? server_status=0
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        # SIGTERM stops the accept loop; the server then drains, frees and exits 0.
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [ -n "$pid" ]; then
        wait "$pid" 2>/dev/null || server_status=$?
    fi
    # A server that did not stop cleanly (killed, or a sanitizer's report when built with
    # one) fails the demo too.
    if [ "$status" -ne 0 ] || [ "$server_status" -ne 0 ]; then
        echo "server exited with status $server_status; its stderr:" >&2
        cat "$work/err" >&2 || true
        [ "$status" -ne 0 ] || status=1
    fi
    rm -rf "$work"
    exit "$status"
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
