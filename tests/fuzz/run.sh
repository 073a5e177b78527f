#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 30), starting
# from seeds made by `cargo run --example fuzz_seeds`. Runs on the stable
# toolchain: `-s none` builds with libFuzzer's coverage instrumentation but
# no sanitizer (AddressSanitizer needs nightly; with a nightly toolchain,
# FUZZ_SANITIZER=address bash tests/fuzz/run.sh adds it). Needs cargo-fuzz
# (`cargo install cargo-fuzz`) and a C++ compiler. Crashes are kept in
# tests/fuzz/artifacts/TARGET/; the corpus grows in tests/fuzz/corpus/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-30}"
sanitizer="${FUZZ_SANITIZER:-none}"
toolchain=()
[ "$sanitizer" != none ] && toolchain=(+nightly)

cargo run --quiet --locked --example fuzz_seeds -- tests/fuzz/seeds
cargo "${toolchain[@]}" fuzz build --fuzz-dir tests/fuzz -s "$sanitizer"
for target in $(cargo fuzz list --fuzz-dir tests/fuzz); do
    mkdir -p "tests/fuzz/corpus/$target"
    echo "== $target (${seconds}s)"
    cargo "${toolchain[@]}" fuzz run --fuzz-dir tests/fuzz -s "$sanitizer" "$target" \
        "tests/fuzz/corpus/$target" "tests/fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread .* panicked)' || true
    # A crash leaves an artifact and makes the run fail.
    if compgen -G "tests/fuzz/artifacts/$target/crash-*" >/dev/null || compgen -G "tests/fuzz/artifacts/$target/oom-*" >/dev/null || compgen -G "tests/fuzz/artifacts/$target/timeout-*" >/dev/null; then
        echo "$target: failing inputs in tests/fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "fuzzing passed"
