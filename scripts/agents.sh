#!/usr/bin/env bash
# Installs the coding agents the tests drive, from npm, into .agents/ (once per pinned version):
# Claude Code and the Codex CLI (both ship native binaries; npm is needed to fetch them), and
# the reference filesystem and memory MCP servers, put behind the gateway by the tests.
# Sourced by scripts/test.sh.
agents_dir=.agents
agents_wanted="@anthropic-ai/claude-code@2.1.332 @openai/codex@0.171.0 @modelcontextprotocol/server-filesystem@2026.8.31 @modelcontextprotocol/server-memory@2026.8.31"
if [[ ! -x "$agents_dir/node_modules/.bin/claude" || "$(cat "$agents_dir/.installed" 2>/dev/null)" != "$agents_wanted" ]]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "cannot install the coding agents: npm is missing (install Node.js with npm)" >&2
        exit 1
    fi
    echo "installing $agents_wanted into $agents_dir" >&2
    mkdir -p "$agents_dir"
    # shellcheck disable=SC2086 # one argument per package
    npm install --prefix "$agents_dir" --no-audit --no-fund --no-save --loglevel=error $agents_wanted >&2
    echo "$agents_wanted" > "$agents_dir/.installed"
fi
export SWITCHBOARD_AGENTS="$PWD/$agents_dir/node_modules/.bin"
