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
KEEP=${KEEP:-}                 # a directory to copy the callgrind dumps to, for callgrind_annotate

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$REPO_DIR/target/release/switchboard}

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
# One core, as in overhead.sh: the gateway runs its current-thread runtime.
(cd "$RUN" && RUST_LOG=warn exec taskset -c 0 valgrind --tool=callgrind \
    --callgrind-out-file="$RUN/callgrind.out" "$SWITCHBOARD_BIN" serve \
    --config "$RUN/switchboard.yaml" --listen "127.0.0.1:$PORT_GW") >"$RUN/switchboard.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
for ((i = 0; ; i++)); do
    curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT_GW/health" && break
    if ! kill -0 "$GW_PID" 2>/dev/null || ((i >= 300)); then
        tail -n 20 "$RUN/switchboard.log" >&2
        die "gateway did not start"
    fi
    sleep 0.2
done

# One keep-alive connection, one request at a time, like wrk -c1.
load() { # mode count
    python3 - "$1" "$2" "$PORT_GW" <<'PY'
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

# Each dump is numbered in order: callgrind.out.1 holds the first mode's requests.
dumps=0
for mode in $MODES; do
    load "$mode" "$WARMUP"
    callgrind_control -z "$GW_PID" >/dev/null 2>&1
    load "$mode" "$REQUESTS"
    callgrind_control -d "$GW_PID" >/dev/null 2>&1
    dumps=$((dumps + 1))
    dump="$RUN/callgrind.out.$dumps"
    for ((i = 0; i < 50; i++)); do [[ -s $dump ]] && break; sleep 0.1; done
    total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    [[ -n $total ]] || die "no callgrind totals in $dump"
    printf '%-5s %8d instructions per request\n' "$mode" $((total / REQUESTS))
    if [[ -n $KEEP ]]; then
        mkdir -p "$KEEP"
        cp "$dump" "$KEEP/callgrind.$mode"
    fi
done
