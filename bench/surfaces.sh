#!/usr/bin/env bash
# The relay cost of each inbound API against the chat relay, in one run: /v1/chat/completions to
# an OpenAI-shaped upstream, /v1/messages passed through to an Anthropic-shaped upstream and
# translated to the OpenAI-shaped one, /v1/responses translated to the OpenAI-shaped one and
# passed through to an OpenAI-shaped upstream with the Responses API (not stored, and stored);
# JSON and SSE; CPU per request of the gateway (pinned to its own core) as a
# multiple of the chat relay's. By hand, not in CI: bench/README.md.
#
#   DURATION=10 CONNECTIONS="1 32" bench/surfaces.sh
#   ONLY='chat relay|responses native' DURATION=20 bench/surfaces.sh   # scenarios by name (a regex)
set -euo pipefail

DURATION=${DURATION:-10}
ONLY=${ONLY:-.}
CONNECTIONS=${CONNECTIONS:-"1 32"}
PORT_UP=${PORT_UP:-18181}
PORT_UP_SSE=${PORT_UP_SSE:-18182}
PORT_GW=${PORT_GW:-18185}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$REPO_DIR/target/release/switchboard}
CLK_TCK=$(getconf CLK_TCK)

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
for tool in nginx wrk curl taskset; do command -v "$tool" >/dev/null || die "needs $tool"; done
[[ -x $SWITCHBOARD_BIN ]] || (cd "$REPO_DIR" && cargo build --release)

RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-surfaces.XXXXXX")
chmod 755 "$RUN"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"' EXIT

mkdir -p "$RUN/upstream"
sed -e "s|@RUN@|$RUN/upstream|g" -e "s|@PORT_UP@|$PORT_UP|g" -e "s|@PORT_UP_SSE@|$PORT_UP_SSE|g" \
    "$BENCH_DIR/nginx-upstream.conf" >"$RUN/upstream/nginx.conf"
taskset -c 1 nginx -p "$RUN/upstream" -e "$RUN/upstream/error.log" -c "$RUN/upstream/nginx.conf" &
PIDS+=("$!")

cat >"$RUN/switchboard.yaml" <<YAML
providers:
  up: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP/v1", api_key: "bench" }
  upsse: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP_SSE/v1", api_key: "bench" }
  ant: { kind: anthropic, base_url: "http://127.0.0.1:$PORT_UP", api_key: "bench" }
  antsse: { kind: anthropic, base_url: "http://127.0.0.1:$PORT_UP_SSE", api_key: "bench" }
  oai: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP/v1", api_key: "bench", responses_api: true }
  oaisse: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP_SSE/v1", api_key: "bench", responses_api: true }
models:
  - { name: chat-json, targets: [ { provider: up, model: gpt-4.1-mini } ] }
  - { name: chat-sse, targets: [ { provider: upsse, model: gpt-4.1-mini } ] }
  - { name: claude-json, targets: [ { provider: ant, model: claude-haiku-4-5 } ] }
  - { name: claude-sse, targets: [ { provider: antsse, model: claude-haiku-4-5 } ] }
  - { name: oai-json, targets: [ { provider: oai, model: gpt-4.1-mini } ] }
  - { name: oai-sse, targets: [ { provider: oaisse, model: gpt-4.1-mini } ] }
state: { data_dir: "$RUN/data" }
YAML
RUST_LOG=warn taskset -c 0 "$SWITCHBOARD_BIN" serve --config "$RUN/switchboard.yaml" \
    --listen "127.0.0.1:$PORT_GW" >"$RUN/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT_GW/health" && break; sleep 0.1; done

cpu() { local f; read -r -a f <<<"$(sed 's/.*) //' "/proc/$GW/stat")"; echo $((f[11] + f[12])); }

# name|path|model|extra fields (the stream flag is added for SSE)
SCENARIOS=(
    'chat relay|/v1/chat/completions|chat|"max_tokens":64,"messages":[{"role":"user","content":"Say hello"}]'
    'messages native|/v1/messages|claude|"max_tokens":64,"messages":[{"role":"user","content":"Say hello"}]'
    'messages translated|/v1/messages|chat|"max_tokens":64,"messages":[{"role":"user","content":"Say hello"}]'
    'responses|/v1/responses|chat|"store":false,"input":"Say hello"'
    'responses stored|/v1/responses|chat|"input":"Say hello"'
    'responses native|/v1/responses|oai|"store":false,"input":"Say hello"'
    'resp. native stored|/v1/responses|oai|"input":"Say hello"'
)
printf '%-20s %-4s %5s %10s %8s %12s %7s\n' scenario mode conns 'req/s' 'p50 us' 'cpu/req us' 'vs chat'
for mode in json sse; do
    for conns in $CONNECTIONS; do
        base=
        for scenario in "${SCENARIOS[@]}"; do
            IFS='|' read -r name path model fields <<<"$scenario"
            [[ $name =~ $ONLY ]] || continue
            stream=""
            [[ $mode == sse ]] && stream='"stream":true,'
            body="{\"model\":\"$model-$mode\",$stream$fields}"
            curl -sf -o /dev/null -H 'content-type: application/json' -d "$body" \
                "http://127.0.0.1:$PORT_GW$path" || die "$name ($mode) failed: $(curl -s -d "$body" "http://127.0.0.1:$PORT_GW$path")"
            BENCH_PATH=$path BENCH_BODY=$body taskset -c 1 wrk -t1 -c"$conns" -d1s \
                -s "$BENCH_DIR/surface.lua" "http://127.0.0.1:$PORT_GW" >/dev/null
            before=$(cpu)
            out=$(BENCH_PATH=$path BENCH_BODY=$body taskset -c 1 wrk -t1 -c"$conns" -d"${DURATION}s" \
                --latency -s "$BENCH_DIR/surface.lua" "http://127.0.0.1:$PORT_GW")
            after=$(cpu)
            line=$(grep '^WRK_RESULT' <<<"$out")
            requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
            p50=$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$line")
            errors=$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$line")
            ((errors == 0)) || die "$name ($mode, c=$conns): $errors errors"
            per=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
            [[ -n $base ]] || base=$per
            ratio=$(awk -v a="$per" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')
            rps=$((requests / DURATION))
            printf '%-20s %-4s %5s %10s %8s %12s %7s\n' "$name" "$mode" "$conns" "$rps" "$p50" "$per" "$ratio"
        done
    done
done
