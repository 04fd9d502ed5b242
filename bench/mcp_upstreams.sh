#!/usr/bin/env bash
# Upstream MCP sessions through the gateway: what opening a client's own upstream session costs
# (HTTP, a Python stdio server, the reference filesystem server), a refused oversized result
# next to a delivered one, and how soon a restarted HTTP upstream is noticed. By hand, not in CI:
# bench/README.md.
#
#   ROUNDS=20 bench/mcp_upstreams.sh
set -euo pipefail

PORT_UP=${PORT_UP:-18191}
PORT_GW=${PORT_GW:-18195}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$REPO_DIR/target/release/switchboard}
PYTHON=${SWITCHBOARD_PYTHON:-$REPO_DIR/.venv/bin/python}
AGENTS=${SWITCHBOARD_AGENTS:-$REPO_DIR/.agents/node_modules/.bin}
FAKE=$REPO_DIR/tests/python/fake_mcp_server.py

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
[[ -x $PYTHON ]] || die "needs the venv's Python (scripts/test.sh makes it)"
[[ -x $AGENTS/mcp-server-filesystem ]] || die "needs the reference servers (scripts/test.sh installs them)"
[[ -x $SWITCHBOARD_BIN ]] || (cd "$REPO_DIR" && cargo build --release)

RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-mcp.XXXXXX")
mkdir -p "$RUN/files" "$RUN/data"
GATEWAY=
trap '[[ -n $GATEWAY ]] && kill "$GATEWAY" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"' EXIT

cat >"$RUN/config.yaml" <<YAML
server: { listen: "127.0.0.1:$PORT_GW" }
state: { data_dir: "$RUN/data" }
keys:
  - { name: bench, key: sk-bench }
mcp:
  servers:
    - { name: up, url: "http://127.0.0.1:$PORT_UP/mcp" }
    - { name: local, command: "$PYTHON", args: ["$FAKE", stdio] }
    - { name: files, command: "$AGENTS/mcp-server-filesystem", args: ["$RUN/files"] }
YAML
"$SWITCHBOARD_BIN" serve --config "$RUN/config.yaml" >"$RUN/gateway.log" 2>&1 &
GATEWAY=$!

SWITCHBOARD_MCP_URL="http://127.0.0.1:$PORT_GW/mcp" SWITCHBOARD_KEY=sk-bench \
    FAKE_MCP_SERVER="$FAKE" UPSTREAM_PORT="$PORT_UP" ROUNDS="${ROUNDS:-20}" \
    "$PYTHON" "$BENCH_DIR/mcp_upstreams.py"
