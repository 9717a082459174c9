#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan + UBSan, build dir build-fuzz) and runs
# each for SECONDS (default 60), as many at a time as there are cores, starting from the
# committed seed corpus tests/fuzz/corpus/<target> (new inputs go to build-fuzz/corpus/<target>,
# so the committed corpus stays small). Prints the executions per target; exits 1 on any finding
# (the input is left in build-fuzz/artifacts/: minimize it, fix the bug, add it to the corpus).
# Exits 77 (skip) if clang is missing.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET ...]      targets: cfg ckpt jpeg csv list weights idx
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(cfg ckpt jpeg csv list weights idx)
command -v clang >/dev/null || { echo "fuzz: clang not found, skipping (scripts/deps.sh installs it)"; exit 77; }
B=build-fuzz
if [ ! -f $B/build.ninja ]; then
    CC=clang meson setup $B -Dfuzz=true -Db_sanitize=address,undefined -Dbuildtype=debug \
        -Doptimization=1 -Dopenmp=disabled -Dnative=false -Db_lundef=false >$B.setup.log 2>&1 ||
        { cat $B.setup.log; echo "fuzz: meson setup failed"; exit 1; }
fi
ninja -C $B $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") >$B.build.log 2>&1 ||
    { tail -n 30 $B.build.log; echo "fuzz: build failed"; exit 1; }
mkdir -p $B/artifacts
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
jobs=$(nproc 2>/dev/null || echo 2)
run_one() {
    local t=$1
    mkdir -p $B/corpus/$t
    $B/tests/fuzz/fuzz_$t $B/corpus/$t tests/fuzz/corpus/$t -max_total_time="$secs" \
        -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix=$B/artifacts/$t- >$B/fuzz-$t.log 2>&1
    echo $? >$B/fuzz-$t.rc
}
running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
fail=0
for t in "${targets[@]}"; do
    rc=$(cat $B/fuzz-$t.rc 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' $B/fuzz-$t.log | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' $B/fuzz-$t.log | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "fuzz_$t: ok, ${execs:-?} executions in ${secs} s, $cov"
    else
        echo "fuzz_$t: FINDING (rc=$rc), see $B/fuzz-$t.log:"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' $B/fuzz-$t.log | head -n 5
        fail=1
    fi
done
exit $fail
