#!/usr/bin/env bash
# Runs every test: installs the Debian packages tests start (redis-server) when missing, creates
# the Python venv the SDK tests use and installs the coding agents from npm (once each), then the
# Rust test suite.
# Usage: ./scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/system-deps.sh
source scripts/venv.sh
source scripts/agents.sh

export SWITCHBOARD_PYTHON="$PWD/.venv/bin/python"
cargo test --workspace --all-targets "$@"
