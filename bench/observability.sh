#!/usr/bin/env bash
# What the audit log and trace export cost on the request path: the chat relay (JSON and SSE)
# with neither, with the audit log to a file, with every trace exported over OTLP/HTTP to the
# suite's collector, and with both; CPU per request of the gateway (pinned to its own core) as a
# multiple of the run with neither. By hand, not in CI: bench/README.md.
#
#   DURATION=10 CONNECTIONS="1 32" bench/observability.sh
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-"1 32"}
PORT_UP=${PORT_UP:-18181}
PORT_UP_SSE=${PORT_UP_SSE:-18182}
PORT_GW=${PORT_GW:-18185}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$REPO_DIR/target/release/switchboard}
PYTHON=${SWITCHBOARD_PYTHON:-$REPO_DIR/.venv/bin/python}
CLK_TCK=$(getconf CLK_TCK)

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
for tool in nginx wrk curl taskset; do command -v "$tool" >/dev/null || die "needs $tool"; done
[[ -x $PYTHON ]] || die "needs the venv's Python (scripts/test.sh makes it) for the collector"
[[ -x $SWITCHBOARD_BIN ]] || (cd "$REPO_DIR" && cargo build --release)

RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-observability.XXXXXX")
chmod 755 "$RUN"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"' EXIT

mkdir -p "$RUN/upstream"
sed -e "s|@RUN@|$RUN/upstream|g" -e "s|@PORT_UP@|$PORT_UP|g" -e "s|@PORT_UP_SSE@|$PORT_UP_SSE|g" \
    "$BENCH_DIR/nginx-upstream.conf" >"$RUN/upstream/nginx.conf"
taskset -c 1 nginx -p "$RUN/upstream" -e "$RUN/upstream/error.log" -c "$RUN/upstream/nginx.conf" &
PIDS+=("$!")

# The collector decodes every span it is sent (its output is thrown away).
mkfifo "$RUN/collector.in"
taskset -c 1 "$PYTHON" "$REPO_DIR/tests/python/otlp_collector.py" <"$RUN/collector.in" >"$RUN/collector.out" &
PIDS+=("$!")
exec 3>"$RUN/collector.in"
for _ in $(seq 100); do [[ -s $RUN/collector.out ]] && break; sleep 0.1; done
OTLP_PORT=$(head -1 "$RUN/collector.out" | sed 's/.*"http": \([0-9]*\).*/\1/')

GW=
start() {
    local extra=$1
    cat >"$RUN/switchboard.yaml" <<YAML
providers:
  up: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP/v1", api_key: "bench" }
  upsse: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP_SSE/v1", api_key: "bench" }
models:
  - { name: chat-json, targets: [ { provider: up, model: gpt-4.1-mini } ] }
  - { name: chat-sse, targets: [ { provider: upsse, model: gpt-4.1-mini } ] }
keys:
  - { name: bench, key: sk-bench }
state: { data_dir: "$RUN/data" }
$extra
YAML
    RUST_LOG=warn taskset -c 0 "$SWITCHBOARD_BIN" serve --config "$RUN/switchboard.yaml" \
        --listen "127.0.0.1:$PORT_GW" >"$RUN/gateway.log" 2>&1 &
    GW=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT_GW/health" && return; sleep 0.1; done
    die "the gateway did not start: $(cat "$RUN/gateway.log")"
}
stop() { kill "$GW"; wait "$GW" 2>/dev/null || true; rm -rf "$RUN/data" "$RUN"/audit.jsonl*; }
cpu() { local f; read -r -a f <<<"$(sed 's/.*) //' "/proc/$GW/stat")"; echo $((f[11] + f[12])); }

AUDIT="audit: { path: \"$RUN/audit.jsonl\", max_size: 64MiB, keep: 2 }"
TRACES="telemetry: { otlp: { endpoint: \"http://127.0.0.1:$OTLP_PORT/v1/traces\" } }"
# name|config
SETUPS=(
    "neither|"
    "audit log|$AUDIT"
    "traces|$TRACES"
    "both|$AUDIT
$TRACES"
)
printf '%-10s %-4s %5s %10s %8s %12s %9s\n' setup mode conns 'req/s' 'p50 us' 'cpu/req us' 'vs neither'
declare -A base
for setup in "${SETUPS[@]}"; do
    name=${setup%%|*}
    start "${setup#*|}"
    for mode in json sse; do
        for conns in $CONNECTIONS; do
            stream=""
            [[ $mode == sse ]] && stream='"stream":true,'
            body="{\"model\":\"chat-$mode\",$stream\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}"
            curl -sf -o /dev/null -H 'authorization: Bearer sk-bench' -H 'content-type: application/json' \
                -d "$body" "http://127.0.0.1:$PORT_GW/v1/chat/completions" || die "$name ($mode) failed"
            BENCH_PATH=/v1/chat/completions BENCH_BODY=$body taskset -c 1 wrk -t1 -c"$conns" -d1s \
                -s "$BENCH_DIR/surface.lua" "http://127.0.0.1:$PORT_GW" >/dev/null
            before=$(cpu)
            out=$(BENCH_PATH=/v1/chat/completions BENCH_BODY=$body taskset -c 1 wrk -t1 -c"$conns" \
                -d"${DURATION}s" --latency -s "$BENCH_DIR/surface.lua" "http://127.0.0.1:$PORT_GW")
            after=$(cpu)
            line=$(grep '^WRK_RESULT' <<<"$out")
            requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
            p50=$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$line")
            errors=$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$line")
            ((errors == 0)) || die "$name ($mode, c=$conns): $errors errors"
            per=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
            key="$mode-$conns"
            [[ -n ${base[$key]:-} ]] || base[$key]=$per
            ratio=$(awk -v a="$per" -v b="${base[$key]}" 'BEGIN { printf "%.2fx", a / b }')
            printf '%-10s %-4s %5s %10s %8s %12s %9s\n' "$name" "$mode" "$conns" $((requests / DURATION)) "$p50" "$per" "$ratio"
        done
    done
    stop
done
