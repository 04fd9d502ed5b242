#!/usr/bin/env bash
# Soak (by hand, not CI): DURATION seconds (default 600) of mixed traffic from one wrk process
# per scenario (bench/soak.lua): plain and streamed chat (cache misses), one repeated question
# (cache hits), a model whose first target fails 30% of its tries (retried: the client must never
# see it), a model with only a failing target (its 503s are the one intended error), stateless
# MCP tool calls and context writes, all under a key with token limits (the counter on).
# Samples RSS every 10 s and counts file descriptors idle before and after.
#   DURATION  seconds of load (default 600)   CONNS  connections per scenario (default 2)
#   STREAMS=N instead: N concurrent slow streams, peak RSS against idle
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${SWITCHBOARD_BIN:-target/release/switchboard}
PORT=${PORT:-18091}
DURATION=${DURATION:-600}
CONNS=${CONNS:-2}
STREAMS=${STREAMS:-0}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
[[ -x $BIN ]] || cargo build --release

RUN=$(mktemp -d)
GW= SAMPLER=
trap 'kill "$GW" "$SAMPLER" 2>/dev/null || true; wait "$GW" 2>/dev/null || true; rm -rf "$RUN"' EXIT
cat >"$RUN/config.yaml" <<YAML
server: { listen: 127.0.0.1:$PORT, max_connections: 4096 }
providers:
  flaky: { kind: mock, error_rate: 0.3, latency: { first_token: 2ms, per_chunk: 1ms } }
  steady: { kind: mock, latency: { first_token: 2ms, per_chunk: 1ms } }
  slow: { kind: mock, latency: { first_token: 100ms, per_chunk: 1s } }
models:
  - name: soak-steady
    targets: [ { provider: steady, model: m } ]
  - name: soak-flaky
    targets: [ { provider: flaky, model: m }, { provider: steady, model: m } ]
    retry: { attempts: 3, backoff: 1ms, max_backoff: 10ms }
  - name: soak-failing
    targets: [ { provider: flaky, model: m } ]
    retry: { attempts: 1 }
  - name: soak-slow
    targets: [ { provider: slow, model: m } ]
keys:
  - name: soak
    key: sk-soak
    limits: { tokens_per_day: 100000000000, tokens_per_minute: 4000000000 }
cache: { enabled: true, ttl: 10m, max_size: 4MiB, only_deterministic: false }
state: { data_dir: "$RUN/data" }
YAML
ulimit -n 65536 2>/dev/null || true
RUST_LOG=error "$BIN" serve --config "$RUN/config.yaml" >"$RUN/gateway.log" 2>&1 &
GW=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { cat "$RUN/gateway.log"; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$GW/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$GW/status"; }
fds() { ls "/proc/$GW/fd" | wc -l; }
URL="http://127.0.0.1:$PORT"

if ((STREAMS > 0)); then
    # One warm-up stream, then the idle figure, then N streams of 60 chunks a second apart.
    curl -s -H 'Authorization: Bearer sk-soak' -H 'Content-Type: application/json' \
        -d '{"model":"soak-steady","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
        "$URL/v1/chat/completions" >/dev/null
    idle=$(rss)
    echo "idle RSS: $idle KiB, $(fds) descriptors"
    cat >"$RUN/stream.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer sk-soak"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Cache-Control"] = "no-cache"
wrk.body = '{"model":"soak-slow","stream":true,"max_tokens":60,"messages":[{"role":"user","content":"take your time"}]}'
LUA
    wrk -t2 -c"$STREAMS" -d60s --timeout 120s -s "$RUN/stream.lua" "$URL/v1/chat/completions" >"$RUN/wrk.log" 2>&1 &
    WRK=$!
    for _ in $(seq 12); do sleep 5; echo "$(date +%T) RSS $(rss) KiB, $(fds) descriptors"; done
    wait "$WRK" || true
    peak=$(hwm)
    grep -E 'requests in|Socket errors|Non-2xx' "$RUN/wrk.log" || true
    echo "peak RSS: $peak KiB, $(( (peak - idle) / 1024 )) MiB above idle"
    exit 0
fi

idle_fds=$(fds)
( while sleep 10; do echo "$(date +%s) $(rss)"; done ) >"$RUN/rss.log" &
SAMPLER=$!
scenarios=(plain cached streamed flaky failing mcp context)
loads=()
for scenario in "${scenarios[@]}"; do
    SOAK_SCENARIO=$scenario wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s bench/soak.lua \
        "$URL" >"$RUN/$scenario.log" 2>&1 &
    loads+=($!)
done
wait "${loads[@]}" || true
kill "$SAMPLER" 2>/dev/null || true
sleep 2
grep -h '^SOAK_RESULT' "$RUN"/*.log
echo "descriptors: $idle_fds idle before, $(fds) after"
# Flat after warm-up: the last 8 minutes' samples against the first of them.
awk -v skip=$(( (DURATION - 480) / 10 )) 'NR > skip {if (!first) first = $2; last = $2; if ($2 > max) max = $2; n++}
  END {printf "RSS KiB over the last %d samples: first %d, last %d, max %d (max/first %.3f)\n",
       n, first, last, max, max / first}' "$RUN/rss.log"
awk '{printf "%s ", $2} END {print ""}' "$RUN/rss.log"
grep -E 'ERROR|panic' "$RUN/gateway.log" | head -5 || true
