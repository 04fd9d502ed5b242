#!/usr/bin/env bash
# Installs the real components the tests start, from Debian's packages, when they are missing:
# redis-server (and redis-cli) and nginx-light (a round-robin proxy) for the replica tests, and chromium with
# chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) for the console's browser tests. Sourced by
# scripts/test.sh; uses sudo when not root, and says what to install when it cannot.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if (( ${#missing[@]} )); then
    echo "installing ${missing[*]} (Debian packages the tests start)" >&2
    sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "cannot install ${missing[*]}: not root and no sudo; install them and run again" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q >&2
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
