#!/usr/bin/env bash
# Creates (or refreshes) .venv with the Python packages the examples and client tests use:
# the official openai, anthropic and mcp SDKs, pinned in tests/python/requirements.txt. Sourced by
# scripts/test.sh and scripts/example.sh; needs python3 with its venv module.
venv=.venv
requirements=tests/python/requirements.txt
stamp="$venv/.requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$stamp"; then
    echo "setting up $venv from $requirements" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
