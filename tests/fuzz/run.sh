#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer and sanitizer coverage on stable Rust — what
# `cargo fuzz` does, without AddressSanitizer (which needs nightly): panics, aborts,
# overflows (debug assertions are on), timeouts and memory over the RSS limit are what
# a run catches — and runs each target for FUZZ_SECONDS seconds (default 8) from its
# corpus folder (tests/fuzz/corpus/<target>, kept between runs, not committed). Exits
# non-zero on the first target that finds a failure; the input is kept in
# tests/fuzz/artifacts/. The test command runs this within five minutes: the build
# (its own, instrumented), then 16 targets × 8 s.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-8}"
host="$(rustc -vV | sed -n 's/^host: //p')"
# Coverage instrumentation for the fuzzed code only: with an explicit --target, build
# scripts and proc macros are built without these flags.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
# opt-level 1 builds in half the time of 3 and still runs about a million inputs a
# minute per target.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=1
cargo build --release --target "$host" --bins
mkdir -p artifacts
targets="$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^logbridge-fuzz$')"
for t in $targets; do
    mkdir -p "corpus/$t"
    status=0
    "target/$host/release/$t" -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t-" "corpus/$t" >"artifacts/$t.log" 2>&1 \
        || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "artifacts/$t.log")"
    echo "fuzz $t: ${runs:-0} runs in ${seconds}s, exit $status"
    if [ "$status" != "0" ]; then
        tail -40 "artifacts/$t.log" >&2
        echo "fuzz target $t failed; the input is in tests/fuzz/artifacts/" >&2
        exit 1
    fi
done
