#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 30), starting
# from seeds made by `cargo run --example fuzz_seeds`; `.ci/run` runs it.
# Runs on the stable toolchain: `-s none` builds with libFuzzer's coverage
# instrumentation but no sanitizer (AddressSanitizer needs nightly; with a
# nightly toolchain, FUZZ_SANITIZER=address bash tests/fuzz/run.sh adds it).
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a C++ compiler.
# Optional target names after SECONDS run only those.
#
# Exits non-zero when any target crashes, runs out of memory or time, or
# fails to run; it then prints the failing input's path, its bytes in
# base64 and the command that replays it. Failing inputs are kept in
# tests/fuzz/artifacts/TARGET/ (an earlier run's left there fail the run
# too, until they are looked at and removed); the corpus grows in
# tests/fuzz/corpus/TARGET/; each target's full log is in
# tests/fuzz/target/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-30}"
shift || true
sanitizer="${FUZZ_SANITIZER:-none}"
toolchain=()
[ "$sanitizer" != none ] && toolchain=(+nightly)

cargo run --quiet --locked --example fuzz_seeds -- tests/fuzz/seeds
cargo "${toolchain[@]}" fuzz build --fuzz-dir tests/fuzz -s "$sanitizer"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list --fuzz-dir tests/fuzz)
mkdir -p tests/fuzz/target/logs
failed=()
for target in "${targets[@]}"; do
    mkdir -p "tests/fuzz/corpus/$target" "tests/fuzz/artifacts/$target"
    log="tests/fuzz/target/logs/$target.log"
    echo "== $target (${seconds}s)"
    status=0
    cargo "${toolchain[@]}" fuzz run --fuzz-dir tests/fuzz -s "$sanitizer" "$target" \
        "tests/fuzz/corpus/$target" "tests/fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|==[0-9]+==|SUMMARY)' "$log" || true
    # The panic, with the line that says what failed.
    grep -A1 -m1 'panicked at' "$log" || true
    artifacts=$(find "tests/fuzz/artifacts/$target" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | sort)
    if [ "$status" != 0 ] || [ -n "$artifacts" ]; then
        failed+=("$target")
        echo "FUZZ FAILURE: $target (exit $status); full log: $PWD/$log" >&2
        for input in $artifacts; do
            echo "failing input: $PWD/$input ($(wc -c <"$input") bytes)" >&2
            echo "  replay: cargo fuzz run --fuzz-dir tests/fuzz -s $sanitizer $target $input" >&2
            echo "  base64: $(head -c 65536 "$input" | base64 -w0)" >&2
        done
        [ -n "$artifacts" ] || tail -n 20 "$log" >&2
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing passed: ${#targets[@]} targets, ${seconds}s each"
