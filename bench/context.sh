#!/usr/bin/env bash
# Context store benchmark with state.redis: GET and PUT of one document through the gateway,
# next to a chat request to the built-in mock (a relay with no upstream of its own) through the
# same gateway, and Redis's own GET/SET (redis-benchmark), all in one run. The gateway has core 0
# to itself; wrk and redis-server share core 1. Run by hand (not in CI); see bench/README.md.
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-"1 32"}
PORT_REDIS=${PORT_REDIS:-18189}
PORT_GW=${PORT_GW:-18190}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$REPO_DIR/target/release/switchboard}
CLK_TCK=$(getconf CLK_TCK)

for tool in wrk redis-server redis-benchmark taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
[[ -x $SWITCHBOARD_BIN ]] || (cd "$REPO_DIR" && cargo build --release)

RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-context-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$RUN"
}
trap cleanup EXIT

taskset -c 1 redis-server --port "$PORT_REDIS" --bind 127.0.0.1 --save "" --appendonly no \
    >"$RUN/redis.log" 2>&1 &
PIDS+=($!)
cat >"$RUN/config.yaml" <<YAML
providers:
  demo: { kind: mock }
models:
  - { name: fast, targets: [ { provider: demo, model: mock-fast } ] }
keys:
  - { name: bench, key: sk-bench }
state:
  redis: { url: "redis://127.0.0.1:$PORT_REDIS" }
YAML
RUST_LOG=warn taskset -c 0 "$SWITCHBOARD_BIN" serve --config "$RUN/config.yaml" \
    --listen "127.0.0.1:$PORT_GW" >"$RUN/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT_GW/health" && break
    sleep 0.1
done
AUTH="Authorization: Bearer sk-bench"
DOC="http://127.0.0.1:$PORT_GW/v1/context/bench/doc"
curl -sf -o /dev/null -X PUT -H "$AUTH" -H 'content-type: application/json' \
    --data '{"plan":"a small document","step":1}' "$DOC"

cat >"$RUN/put.lua" <<'LUA'
wrk.method = "PUT"
wrk.body = '{"plan":"a small document","step":2}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
LUA
cat >"$RUN/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"fast","messages":[{"role":"user","content":"Say hello"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
LUA
cat >"$RUN/get.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer sk-bench"
LUA

cpu_ticks() { awk '{print $14 + $15}' "/proc/$GW/stat"; }

# name url script conns: requests/s, p50 and CPU per request of the gateway
measure() {
    local before after out rps p50 requests cpu
    before=$(cpu_ticks)
    out=$(taskset -c 1 wrk -t1 -c"$4" -d"${DURATION}s" --latency -s "$3" "$2")
    after=$(cpu_ticks)
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$CLK_TCK" \
        'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
    printf '%-10s c=%-3s %10s req/s  p50 %8s  cpu/req %7s us\n' "$1" "$4" "$rps" "$p50" "$cpu"
}

for conns in $CONNECTIONS; do
    measure "chat" "http://127.0.0.1:$PORT_GW/v1/chat/completions" "$RUN/chat.lua" "$conns"
    measure "ctx GET" "$DOC" "$RUN/get.lua" "$conns"
    measure "ctx PUT" "$DOC" "$RUN/put.lua" "$conns"
done
echo
for conns in $CONNECTIONS; do
    echo "redis-benchmark (-c $conns, on core 1):"
    taskset -c 1 redis-benchmark -p "$PORT_REDIS" -c "$conns" -n 200000 -t get,set -q |
        tr '\r' '\n' | grep 'requests per second'
done
