#!/usr/bin/env bash
# What a bearer JWT costs next to a static key: the same non-streamed chat request to the
# built-in mock, through one gateway, with each credential; wrk, 1 thread, 1 and 32
# connections. The JWT is RS256 (the slowest of the three algorithms to verify), of the test
# fixtures' key, served by a local JWKS. By hand, not in CI: bench/README.md.
#
#   DURATION=10 bench/jwt.sh
set -euo pipefail

PORT_GW=${PORT_GW:-18196}
PORT_KEYS=${PORT_KEYS:-18197}
DURATION=${DURATION:-10}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$REPO_DIR/target/release/switchboard}
PYTHON=${SWITCHBOARD_PYTHON:-$REPO_DIR/.venv/bin/python}
FIXTURES=$REPO_DIR/tests/gateway/fixtures/jwt

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
command -v wrk >/dev/null || die "needs wrk (apt-get install wrk)"
[[ -x $PYTHON ]] || die "needs the venv's Python (scripts/test.sh makes it)"
[[ -x $SWITCHBOARD_BIN ]] || (cd "$REPO_DIR" && cargo build --release)

RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-jwt.XXXXXX")
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"' EXIT

"$PYTHON" - "$FIXTURES" "$RUN" <<'PY'
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
fixtures, run = sys.argv[1], sys.argv[2]
jwk = json.load(open(f"{fixtures}/public-jwks.json"))["rsa"]
json.dump({"keys": [jwk]}, open(f"{run}/jwks", "w"))
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}).encode())
claims = {"iss": "https://issuer.bench", "aud": "switchboard", "sub": "bench", "exp": int(time.time()) + 3600}
body = f"{header}.{b64(json.dumps(claims).encode())}"
key = serialization.load_pem_private_key(open(f"{fixtures}/rsa.pem", "rb").read(), None)
signature = key.sign(body.encode(), padding.PKCS1v15(), hashes.SHA256())
open(f"{run}/token", "w").write(f"{body}.{b64(signature)}")
PY
(cd "$RUN" && exec "$PYTHON" -m http.server "$PORT_KEYS" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS+=($!)

cat >"$RUN/config.yaml" <<YAML
server: { listen: "127.0.0.1:$PORT_GW" }
state: { data_dir: "$RUN/data" }
providers: { demo: { kind: mock } }
models:
  - { name: m, targets: [ { provider: demo, model: x } ] }
keys:
  - { name: bench, key: sk-bench }
auth:
  jwt: { issuer: "https://issuer.bench", jwks_url: "http://127.0.0.1:$PORT_KEYS/jwks", audiences: [switchboard] }
YAML
RUST_LOG=warn taskset -c 0 "$SWITCHBOARD_BIN" serve --config "$RUN/config.yaml" >"$RUN/gateway.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT_GW/health" >/dev/null && break; sleep 0.1; done

cat >"$RUN/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BEARER")
LUA

run() {
    local name=$1 bearer=$2 connections=$3
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $bearer" \
        -H 'content-type: application/json' -d '{"model":"m","messages":[{"role":"user","content":"hi"}]}' \
        "http://127.0.0.1:$PORT_GW/v1/chat/completions")
    [[ $status == 200 ]] || die "$name: HTTP $status"
    BEARER=$bearer taskset -c 1 wrk -t1 -c"$connections" -d2s -s "$RUN/post.lua" "http://127.0.0.1:$PORT_GW/v1/chat/completions" >/dev/null
    BEARER=$bearer taskset -c 1 wrk -t1 -c"$connections" -d"${DURATION}s" --latency -s "$RUN/post.lua" \
        "http://127.0.0.1:$PORT_GW/v1/chat/completions" >"$RUN/$name-$connections.txt"
    local rps p50
    rps=$(awk '/Requests\/sec/ {print $2}' "$RUN/$name-$connections.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$RUN/$name-$connections.txt")
    printf '%-6s %3s connections: %10s req/s, p50 %s\n' "$name" "$connections" "$rps" "$p50"
}

for connections in 1 32; do
    run key sk-bench "$connections"
    run jwt "$(cat "$RUN/token")" "$connections"
done
