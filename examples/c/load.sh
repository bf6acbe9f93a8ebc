#!/usr/bin/env bash
# Sends requests to the example server and shows each answer's status and rate-limit headers:
# the first client's burst is admitted (200), then it is refused (429, with Retry-After),
# while a second client (another source address) is still admitted; after waiting the
# Retry-After, the first client is admitted again.
#
#   load.sh URL [REQUESTS]        e.g. load.sh http://127.0.0.1:8080/ 7
#
# The second client connects from 127.0.0.2 (any 127.0.0.0/8 address is local on Linux); on a
# system where that fails it is skipped.
set -euo pipefail

body_file=$(mktemp)
trap 'rm -f "$body_file"' EXIT
url=${1:?usage: load.sh URL [REQUESTS]}
requests=${2:-7}

# One request: prints "STATUS  header: value ..." for the headers that matter here.
request() {
    local label=$1; shift
    local head
    head=$(curl -sS -o "$body_file" -D - --max-time 5 "$@" "$url") || return 1
    head=$(printf '%s' "$head" | tr -d '\r')
    local status
    status=$(printf '%s\n' "$head" | awk 'NR == 1 { print $2 }')
    printf '%-10s %s' "$label" "$status"
    { printf '%s\n' "$head" | grep -iE '^(ratelimit|ratelimit-policy|retry-after):' || true; } |
        sed 's/^/  | /' | tr '\n' ' '
    [ "$status" = 200 ] || printf '  | body %s' "$(cat "$body_file")"
    printf '\n'
    LAST_STATUS=$status
    LAST_RETRY_AFTER=$(printf '%s\n' "$head" | awk -F': ' 'tolower($1) == "retry-after" { print $2 }')
}

seen_200=0 seen_429=0
echo "client 127.0.0.1: $requests requests"
for i in $(seq 1 "$requests"); do
    request "#$i" --interface 127.0.0.1
    case $LAST_STATUS in
        200) seen_200=$((seen_200 + 1)) ;;
        429) seen_429=$((seen_429 + 1)); retry_after=$LAST_RETRY_AFTER ;;
        *) echo "unexpected status $LAST_STATUS" >&2; exit 1 ;;
    esac
done

echo "client 127.0.0.2: its own quota"
if request "#1" --interface 127.0.0.2 2>/dev/null; then
    [ "$LAST_STATUS" = 200 ] || { echo "second client was refused" >&2; exit 1; }
else
    echo "(skipped: cannot connect from 127.0.0.2 here)"
fi

if [ "$seen_429" -gt 0 ]; then
    echo "client 127.0.0.1: waiting Retry-After (${retry_after}s)"
    sleep "$retry_after"
    request "again" --interface 127.0.0.1
    [ "$LAST_STATUS" = 200 ] || { echo "still refused after Retry-After" >&2; exit 1; }
fi

echo "stats: $(curl -sS --max-time 5 "${url%/}/stats")"
echo "$seen_200 admitted, then $seen_429 refused with 429"
[ "$seen_200" -gt 0 ] && [ "$seen_429" -gt 0 ]
