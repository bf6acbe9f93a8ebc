#!/usr/bin/env bash
# `make demo-py`: starts the demo app (app.py) under uvicorn on 127.0.0.1 on a free port,
# sends requests that turn from 200 into 429 (client.py), and stops the server on any exit.
# Usage: run.sh PYTHON (a venv's interpreter with cellgate, fastapi and uvicorn installed).
set -euo pipefail
python=${1:?usage: run.sh PYTHON}
here=$(cd "$(dirname "$0")" && pwd)
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp)
"$python" -m uvicorn app:app --app-dir "$here" --host 127.0.0.1 --port "$port" --log-level warning >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    if "$python" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$port" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "FastAPI + cellgate on http://127.0.0.1:$port/hello, limited to 5/10 seconds per client:"
"$python" "$here/client.py" "http://127.0.0.1:$port/hello"
