#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, keeping each target's corpus in
# fuzz/corpus/<target> between runs. A crash stops the run, leaves its input in
# fuzz/artifacts/<target>/ and exits non-zero; turn it into a regression test.
#
#   scripts/fuzz.sh 30                 # what CI runs: a quick build, 30 s per target
#   FUZZ_PROFILE=release scripts/fuzz.sh 600 config tokens   # a long run, with AddressSanitizer
#
# cargo-fuzz is installed if missing. It needs a nightly compiler; this machine has one stable
# toolchain and no other can be fetched, so RUSTC_BOOTSTRAP=1 lets stable take the nightly
# flags (sanitizer coverage, -Zsanitizer). Nothing outside fuzz/ is built that way.
set -euo pipefail

SECONDS_EACH=${1:-30}
shift || true
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PROFILE=${FUZZ_PROFILE:-dev}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2

export RUSTC_BOOTSTRAP=1
cd fuzz
if [[ $PROFILE == release ]]; then
    flags=(-s address)
else
    # Quick to build (a third of the release build's time); enough to catch a regression.
    flags=(-s none --dev)
fi
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build "${flags[@]}"
for target in "${targets[@]}"; do
    corpus=corpus/$target
    mkdir -p "$corpus"
    # The shipped config seeds the config target, the vendored Petstore spec the openapi one;
    # the others start from nothing.
    if [[ $target == config && -z $(ls -A "$corpus") ]]; then
        cp "$ROOT/config.yaml" "$corpus/"
    fi
    if [[ $target == openapi && -z $(ls -A "$corpus") ]]; then
        cp "$ROOT/tests/gateway/fixtures/openapi/petstore.yaml" "$corpus/"
    fi
    echo "==> $target for ${SECONDS_EACH}s"
    cargo fuzz run "${flags[@]}" "$target" "$corpus" -- \
        -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 2>&1 | grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|panicked|ERROR|SUMMARY|crash-|leak-|timeout-' || true
    # cargo fuzz's own exit status is lost in the pipe: a crash leaves an artifact.
    if compgen -G "artifacts/$target/*" >/dev/null; then
        echo "error: $target found a failing input in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
