#!/usr/bin/env bash
# Runs every test: creates the Python venv the SDK tests use (once), then the Rust test suite.
# Usage: ./scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
requirements=tests/python/requirements.txt
stamp="$venv/.requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$stamp"; then
    echo "setting up $venv from $requirements"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi

export SWITCHBOARD_PYTHON="$PWD/$venv/bin/python"
cargo test --workspace --all-targets "$@"
