#!/usr/bin/env bash
# The test command: installs what is missing, builds gemmnet in a fresh directory, runs every
# test, runs the unit suite again under AddressSanitizer + UndefinedBehaviorSanitizer and under
# ThreadSanitizer (OpenMP off), runs each libFuzzer target briefly (scripts/fuzz.sh; one test
# in the tally; FUZZ_SECONDS, default 60, 0 skips) and ends with one line "N passed, N failed".
# Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test || { echo "dependency installation failed"; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
status=0

count() { # count OK / failed results in a meson testlog.json
    local log=$1
    [ -f "$log" ] || return
    local ok bad
    ok=$(grep -c '"result": "OK"' "$log" || true)
    bad=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
    passed=$((passed + ok))
    failed=$((failed + bad))
}

run_build() { # dir, suite ("" = all), meson options...
    local dir=$1 suite=$2
    shift 2
    rm -rf "$dir"
    if ! meson setup "$dir" "$@" >"$dir.setup.log" 2>&1; then
        cat "$dir.setup.log"; echo "meson setup failed for $dir"; failed=$((failed + 1)); status=1; return
    fi
    if ! ninja -C "$dir" -j "$jobs"; then
        echo "build failed in $dir"; failed=$((failed + 1)); status=1; return
    fi
    local args=(-C "$dir" --print-errorlogs --num-processes "$jobs")
    [ -n "$suite" ] && args+=(--suite "$suite")
    meson test "${args[@]}" || status=1
    count "$dir/meson-logs/testlog.json"
}

run_build build ""
# ASan/UBSan: the unit suite, with leak checks and UB made fatal.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_build build-asan unit -Db_sanitize=address,undefined -Dbuildtype=debug -Doptimization=1

# ThreadSanitizer: the unit suite (loader threads, trainer) with OpenMP off: libgomp is not
# TSan-instrumented and gives false positives (docs/reliability.md). OpenBLAS's own threads are
# libgomp's too (the OpenMP build), so sgemm runs single-threaded here as well: large enough
# GEMMs (the batched convolution path) otherwise trip the same false positives.
export TSAN_OPTIONS=halt_on_error=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run_build build-tsan unit -Db_sanitize=thread -Dbuildtype=debug -Doptimization=1 -Dopenmp=disabled
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS

# libFuzzer: every target from the committed corpus, counted as one test.
fuzz_secs=${FUZZ_SECONDS:-60}
if [ "$fuzz_secs" -gt 0 ]; then
    rm -rf build-fuzz
    scripts/fuzz.sh "$fuzz_secs"
    case $? in
    0) passed=$((passed + 1)) ;;
    77) echo "fuzz: skipped (no clang)" ;;
    *) failed=$((failed + 1)); status=1 ;;
    esac
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
