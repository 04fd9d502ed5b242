#!/usr/bin/env bash
# Resilience soak (by hand, not CI): one of two targets fails 30% of its tries (the mock's
# `error_rate`), the other is healthy. The client must see 100% success while the gateway retries
# and its breakers open and close, and the gateway's RSS must stay flat.
#   DURATION  seconds of load (default 120)   CONNS  concurrent connections (default 16)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${SWITCHBOARD_BIN:-target/release/switchboard}
PORT=${PORT:-18091}
DURATION=${DURATION:-120}
CONNS=${CONNS:-16}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
[[ -x $BIN ]] || cargo build --release

RUN=$(mktemp -d)
trap 'kill "$GW" "$SAMPLER" 2>/dev/null || true; rm -rf "$RUN"' EXIT
cat >"$RUN/config.yaml" <<YAML
server: { listen: 127.0.0.1:$PORT }
providers:
  flaky: { kind: mock, error_rate: 0.3, latency: { first_token: 2ms } }
  steady: { kind: mock, latency: { first_token: 2ms } }
models:
  - name: bench-json
    targets: [ { provider: flaky, model: m }, { provider: steady, model: m } ]
    retry: { attempts: 3, backoff: 1ms, max_backoff: 10ms }
YAML
RUST_LOG=error "$BIN" serve --config "$RUN/config.yaml" >"$RUN/gateway.log" 2>&1 &
GW=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { cat "$RUN/gateway.log"; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$GW/status"; }
( while sleep 5; do echo "$(date +%s) $(rss)"; done ) >"$RUN/rss.log" &
SAMPLER=$!

URL="http://127.0.0.1:$PORT/v1/chat/completions"
result=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/post.lua "$URL" | grep '^WRK_RESULT')
kill "$SAMPLER" 2>/dev/null || true
echo "$result"
metrics=$(curl -s "http://127.0.0.1:$PORT/metrics")
retries=$(echo "$metrics" | awk '/^switchboard_retries_total/ {print $2}')
echo "retries: ${retries:-0}"
awk 'NR == 1 {first = $2} {last = $2; if ($2 > max) max = $2; n++}
  END {printf "RSS KiB: first sample %d, last %d, max %d over %d samples (last/first %.2f)\n",
       first, last, max, n, last / first}' "$RUN/rss.log"
echo "$result" | awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
  END {bad = v["err_status"] + v["err_connect"] + v["err_read"] + v["err_timeout"];
       printf "client success: %.4f%% of %d requests\n", 100 * (v["requests"] - bad) / v["requests"], v["requests"]}'
