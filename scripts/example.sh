#!/usr/bin/env bash
# Runs one of examples/*.py against a running gateway, setting up .venv first if needed.
# Usage: ./scripts/example.sh chat        (SWITCHBOARD_BASE_URL, SWITCHBOARD_KEY as the example says)
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: ./scripts/example.sh NAME (one of: $(cd examples && ls *.py | sed 's/\.py$//' | tr '\n' ' '))}
shift
[[ -f "examples/$name.py" ]] || { echo "no examples/$name.py" >&2; exit 2; }
source scripts/venv.sh
exec .venv/bin/python "examples/$name.py" "$@"
