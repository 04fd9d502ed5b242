#!/usr/bin/env bash
# Response cache benchmark (by hand, not CI). One gateway whose model is the built-in mock with a
# 20 ms first-token latency stands in for a slow provider. Measured in one run:
#   - latency of a miss (Cache-Control: no-cache forces the provider call) vs a hit, 1 connection
#   - throughput of hits vs GET /health, 32 connections (the floor of any request the gateway serves)
# Targets: hit at least 20x faster than a miss; hit throughput within 1.5x of /health's.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${SWITCHBOARD_BIN:-target/release/switchboard}
PORT=${PORT:-18090}
DURATION=${DURATION:-10}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
[[ -x $BIN ]] || cargo build --release

RUN=$(mktemp -d)
trap 'kill "$GW" 2>/dev/null || true; rm -rf "$RUN"' EXIT
cat >"$RUN/config.yaml" <<YAML
server: { listen: 127.0.0.1:$PORT }
providers:
  slow: { kind: mock, latency: { first_token: 20ms } }
models:
  - { name: bench-json, targets: [ { provider: slow, model: m } ] }
cache: { ttl: 10m, max_size: 64MiB }
YAML
RUST_LOG=warn taskset -c 0 "$BIN" serve --config "$RUN/config.yaml" >"$RUN/gateway.log" 2>&1 &
GW=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { cat "$RUN/gateway.log"; exit 1; }

URL="http://127.0.0.1:$PORT/v1/chat/completions"
# Warm the one entry every hit run reads.
curl -sf "$URL" -H 'content-type: application/json' \
  -d '{"model":"bench-json","messages":[{"role":"user","content":"Say hello"}]}' >/dev/null

run() { # connections, url, extra env...; prints "requests p50_us"
  local conns=$1 url=$2
  shift 2
  env "$@" taskset -c 1 wrk -t1 -c"$conns" -d"${DURATION}s" -s bench/post.lua "$url" |
    sed -n 's/^WRK_RESULT requests=\([0-9]*\) duration_us=\([0-9]*\) p50_us=\([0-9]*\).*/\1 \2 \3/p'
}

read -r miss_n miss_d miss_p50 < <(run 1 "$URL" BENCH_CACHE=no-cache)
read -r hit_n hit_d hit_p50 < <(run 1 "$URL")
read -r hit32_n hit32_d _ < <(run 32 "$URL")
# /health is a GET: a wrk run without the POST script.
health32=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" "http://127.0.0.1:$PORT/health" | awk '/Requests\/sec/ {print $2}')

awk -v mn="$miss_n" -v md="$miss_d" -v mp="$miss_p50" -v hn="$hit_n" -v hd="$hit_d" -v hp="$hit_p50" \
    -v h32n="$hit32_n" -v h32d="$hit32_d" -v health="$health32" 'BEGIN {
  hit_rps = h32n / (h32d / 1e6)
  printf "miss  c=1   p50 %8.0f us   %8.0f req/s\n", mp, mn / (md / 1e6)
  printf "hit   c=1   p50 %8.0f us   %8.0f req/s\n", hp, hn / (hd / 1e6)
  printf "hit   c=32                  %8.0f req/s\n", hit_rps
  printf "health c=32                 %8.0f req/s\n", health
  printf "\nhit is %.0fx faster than a miss (p50; target >= 20x)\n", mp / hp
  printf "/health throughput is %.2fx hit throughput (target <= 1.5x)\n", health / hit_rps
}'
