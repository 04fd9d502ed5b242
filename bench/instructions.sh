#!/usr/bin/env bash
# Instructions per request: the gateway's user-space work for one chat request,
# counted by callgrind, so two builds compare exactly where wall-clock numbers
# on a shared VM move by 20%. Run by hand (not in CI); see bench/README.md.
set -euo pipefail

REQUESTS=${REQUESTS:-1000}     # measured requests per mode
WARMUP=${WARMUP:-300}          # unmeasured requests first (pool, caches, allocator)
MODES=${MODES:-"json sse"}
PORT_UP=${PORT_UP:-18091}
PORT_UP_SSE=${PORT_UP_SSE:-18092}
PORT_GW=${PORT_GW:-18095}
PORT_FLOOR=${PORT_FLOOR:-18096}
PORT_FLOOR_SSE=${PORT_FLOOR_SSE:-18097}
FLOOR=${FLOOR:-0}              # 1 also measures axum-floor (bench/floor): the HTTP stack alone
KEEP=${KEEP:-}                 # a directory to copy the callgrind dumps to, for callgrind_annotate

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$REPO_DIR/target/release/switchboard}
FLOOR_BIN=$BENCH_DIR/floor/target/release/axum-floor

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
for tool in valgrind callgrind_control nginx python3 curl taskset; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install valgrind nginx python3 curl util-linux)"
done
[[ -x $SWITCHBOARD_BIN ]] || die "SWITCHBOARD_BIN=$SWITCHBOARD_BIN is not executable (cargo build --release)"

RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-instr.XXXXXX")
chmod 755 "$RUN"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$RUN"
}
trap cleanup EXIT

mkdir -p "$RUN/upstream"
sed -e "s|@RUN@|$RUN/upstream|g" -e "s|@PORT_UP@|$PORT_UP|g" -e "s|@PORT_UP_SSE@|$PORT_UP_SSE|g" \
    "$BENCH_DIR/nginx-upstream.conf" >"$RUN/upstream/nginx.conf"
nginx -p "$RUN/upstream" -e "$RUN/upstream/error.log" -c "$RUN/upstream/nginx.conf" \
    >"$RUN/upstream/stdout.log" 2>&1 &
PIDS+=($!)

cat >"$RUN/switchboard.yaml" <<YAML
providers:
  up: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP/v1", api_key: "bench" }
  upsse: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP_SSE/v1", api_key: "bench" }
models:
  - name: bench-json
    targets: [ { provider: up, model: gpt-4.1-mini } ]
  - name: bench-sse
    targets: [ { provider: upsse, model: gpt-4.1-mini } ]
YAML
# Starts one target under callgrind, pinned to one core as in overhead.sh (so the gateway runs
# its current-thread runtime), and waits until URL answers. Sets TARGET_PID.
start_target() { # name url command...
    local name=$1 url=$2 i
    shift 2
    (cd "$RUN" && RUST_LOG=warn exec taskset -c 0 valgrind --tool=callgrind \
        --callgrind-out-file="$RUN/$name.out" "$@") >"$RUN/$name.log" 2>&1 &
    TARGET_PID=$!
    PIDS+=("$TARGET_PID")
    for ((i = 0; ; i++)); do
        curl -s -o /dev/null --max-time 2 -X POST -d '{}' "$url" && break
        if ! kill -0 "$TARGET_PID" 2>/dev/null || ((i >= 300)); then
            tail -n 20 "$RUN/$name.log" >&2
            die "$name did not start"
        fi
        sleep 0.2
    done
}

# One keep-alive connection, one request at a time, like wrk -c1.
load() { # mode count port
    python3 - "$1" "$2" "$3" <<'PY'
import http.client, json, sys
mode, count, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = {"model": "bench-" + mode, "messages": [{"role": "user", "content": "Say hello"}]}
if mode == "sse":
    body["stream"] = True
payload = json.dumps(body)
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    conn.request("POST", "/v1/chat/completions", payload, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        sys.exit(f"HTTP {response.status}: {data[:200]!r}")
PY
}

# Zeroes the counters, runs the measured requests, dumps; dumps are numbered in order.
measure() { # name pid mode port
    local name=$1 pid=$2 mode=$3 port=$4 dump total i
    load "$mode" "$WARMUP" "$port"
    callgrind_control -z "$pid" >/dev/null 2>&1
    load "$mode" "$REQUESTS" "$port"
    callgrind_control -d "$pid" >/dev/null 2>&1
    DUMPS[$name]=$((${DUMPS[$name]:-0} + 1))
    dump="$RUN/$name.out.${DUMPS[$name]}"
    for ((i = 0; i < 50; i++)); do [[ -s $dump ]] && break; sleep 0.1; done
    total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    [[ -n $total ]] || die "no callgrind totals in $dump"
    printf '%-11s %-5s %8d instructions per request\n' "$name" "$mode" $((total / REQUESTS))
    if [[ -n $KEEP ]]; then
        mkdir -p "$KEEP"
        cp "$dump" "$KEEP/callgrind.$mode$([[ $name == switchboard ]] || echo ".$name")"
    fi
}
declare -A DUMPS

start_target switchboard "http://127.0.0.1:$PORT_GW/health" \
    "$SWITCHBOARD_BIN" serve --config "$RUN/switchboard.yaml" --listen "127.0.0.1:$PORT_GW"
GW_PID=$TARGET_PID
for mode in $MODES; do
    measure switchboard "$GW_PID" "$mode" "$PORT_GW"
done

if [[ $FLOOR == 1 ]]; then
    [[ -x $FLOOR_BIN ]] || (cd "$BENCH_DIR/floor" && cargo build --release --quiet)
    start_target axum-floor "http://127.0.0.1:$PORT_FLOOR/" "$FLOOR_BIN" \
        "127.0.0.1:$PORT_FLOOR" "http://127.0.0.1:$PORT_UP" \
        "127.0.0.1:$PORT_FLOOR_SSE" "http://127.0.0.1:$PORT_UP_SSE"
    for mode in $MODES; do
        port=$PORT_FLOOR
        [[ $mode == sse ]] && port=$PORT_FLOOR_SSE
        measure axum-floor "$TARGET_PID" "$mode" "$port"
    done
fi
