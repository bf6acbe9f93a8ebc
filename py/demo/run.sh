#!/usr/bin/env bash
# `make demo-py`: two FastAPI servers on 127.0.0.1, each on a free port, stopped on any exit.
#  1. app.py under uvicorn: requests turning from 200 into 429 (client.py).
#  2. shared_app.py under `uvicorn --workers 4`, every worker holding one host-wide limit of
#     5/minute in shared memory: 5 x 200 then 429s, whichever worker answers (shared_client.py
#     prints the pid of each). The table's file is removed at the end.
# Usage: run.sh PYTHON (a venv's interpreter with cellgate, fastapi and uvicorn installed).
set -euo pipefail
python=${1:?usage: run.sh PYTHON}
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
shm_dir=/dev/shm
[ -d "$shm_dir" ] || shm_dir=${TMPDIR:-/tmp}
export CELLGATE_DEMO_TABLE="$shm_dir/cellgate-demo-$$"
table=$CELLGATE_DEMO_TABLE
servers=()
cleanup() {
    for server in "${servers[@]}"; do
        # Each server runs in its own process group (setsid): stop it and its workers.
        kill -TERM -- "-$server" 2>/dev/null || kill -TERM "$server" 2>/dev/null || true
    done
    for server in "${servers[@]}"; do
        wait "$server" 2>/dev/null || true
    done
    "$python" -c 'import sys; from cellgate import SharedMemory; SharedMemory.remove(sys.argv[1])' "$table" || true
    rm -f "$log"
}
trap cleanup EXIT

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start PORT ARGS...: runs uvicorn ARGS on PORT in a new process group, waits until it answers.
start() {
    local port=$1
    shift
    setsid "$python" -m uvicorn "$@" --app-dir "$here" --host 127.0.0.1 --port "$port" --log-level warning >>"$log" 2>&1 &
    local server=$!
    servers+=("$server")
    for _ in $(seq 100); do
        if "$python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$port" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$server" 2>/dev/null; then
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "the server on port $port did not start" >&2
    cat "$log" >&2
    exit 1
}

port=$(free_port)
start "$port" app:app
echo "FastAPI + cellgate on http://127.0.0.1:$port/hello, limited to 5/10 seconds per client:"
"$python" "$here/client.py" "http://127.0.0.1:$port/hello"

port=$(free_port)
start "$port" shared_app:app --workers 4
# Give every worker time to open the table and start accepting.
sleep 1
echo
echo "uvicorn --workers 4 on http://127.0.0.1:$port/hello, one limit of 5/minute per client for the host,"
echo "in shared memory ($table):"
"$python" "$here/shared_client.py" "http://127.0.0.1:$port/hello"
