#!/usr/bin/env bash
# Crash test: trains a small config uninterrupted, then again while killing it with kill -9 at
# random moments (20, or 5 with --short), resuming with --resume auto after each kill; checkpoints
# are written every iteration, so many kills land inside a checkpoint write. Passes if the final
# last.safetensors equals the uninterrupted run's byte for byte and every checkpoint file ever
# found on disk after a kill validates and loads (gemmnet ckpt-info --config).
#
# usage: scripts/crash-test.sh [--short] [--seed N]
# Uses $GEMMNET if set (the meson test does), else builds ./build and uses build/gemmnet.
set -uo pipefail
kills=20
seed=${RANDOM}
while [ $# -gt 0 ]; do
    case $1 in
    --short) kills=5 ;;
    --seed) seed=$2; shift ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "crash-test: unexpected '$1'" >&2; exit 2 ;;
    esac
    shift
done
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${GEMMNET:-}" ]; then
    if [ ! -d "$root/build" ]; then meson setup "$root/build" >/dev/null || exit 1; fi
    ninja -C "$root/build" >/dev/null || { echo "build failed"; exit 1; }
    GEMMNET=$root/build/gemmnet
fi
G=$GEMMNET
RANDOM=$seed
echo "crash-test: $kills kills, seed $seed"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$root/tests/train/small_run.sh"

small_run "$tmp" 28 7 1 1 || { echo "synth failed"; exit 1; }
T=(--threads 2)
t0=$(date +%s%N)
"$G" train "$tmp/t.cfg" --out "$tmp/a" "${T[@]}" >"$tmp/a.log" 2>&1 || { echo "FAIL: uninterrupted run"; cat "$tmp/a.log"; exit 1; }
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -lt 100 ] && ms=100
echo "uninterrupted run: ${ms} ms"

checked=0
check_all() { # validate and load every checkpoint file now in the output directory
    local f
    for f in "$tmp"/b/*.safetensors; do
        [ -e "$f" ] || continue
        checked=$((checked + 1))
        if ! "$G" ckpt-info "$f" --config "$tmp/t.cfg" --quiet >>"$tmp/info.log" 2>&1; then
            echo "FAIL: $f left on disk does not load:"; tail -n 1 "$tmp/info.log"
            cp "$f" "$tmp/../crash-test-bad-$(basename "$f")" 2>/dev/null
            fail=1
        fi
    done
}

done_early=0
mid_write=0
for k in $(seq 1 "$kills"); do
    # a random moment within the expected length of what is left of the run (a kill that comes
    # after the run finished counts as "finished", and we start again from scratch)
    done_it=0
    [ -f "$tmp/b/last.safetensors" ] &&
        done_it=$("$G" ckpt-info "$tmp/b/last.safetensors" | sed -n 's/^  meta iteration = //p')
    if [ "${done_it:-0}" -eq 28 ]; then
        # the previous run got to the end (killed after its last checkpoint): compare, start over
        cmp -s "$tmp/a/last.safetensors" "$tmp/b/last.safetensors" ||
            { echo "FAIL: a run that finished after kills differs from the uninterrupted run"; fail=1; }
        done_early=$((done_early + 1))
        rm -rf "$tmp/b"
        done_it=0
    fi
    left=$((ms * (28 - ${done_it:-0}) / 28 + 60))
    delay_ms=$((RANDOM % left + 10))
    "$G" train "$tmp/t.cfg" --out "$tmp/b" --resume auto "${T[@]}" >>"$tmp/b.log" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    rc=$?
    it=$(rows_in "$tmp/b")
    tmps=$(ls "$tmp"/b/*.tmp.* 2>/dev/null | wc -l)
    mid_write=$((mid_write + (tmps > 0)))
    echo "kill $k after ${delay_ms} ms: rc=$rc, started at iteration ${done_it:-0}, metrics rows=$it, partial checkpoint files left: $tmps"
    check_all
    if [ $rc -eq 0 ]; then
        # the run finished before the kill: compare, then start over so later kills still land
        done_early=$((done_early + 1))
        if ! cmp -s "$tmp/a/last.safetensors" "$tmp/b/last.safetensors"; then
            echo "FAIL: a run that finished after kills differs from the uninterrupted run"; fail=1
        fi
        rm -rf "$tmp/b"
    fi
done
"$G" train "$tmp/t.cfg" --out "$tmp/b" --resume auto "${T[@]}" >>"$tmp/b.log" 2>&1 || {
    echo "FAIL: final resume"; tail -n 5 "$tmp/b.log"; fail=1; }
check_all
if cmp -s "$tmp/a/last.safetensors" "$tmp/b/last.safetensors"; then
    echo "ok: final last.safetensors is bit-identical to the uninterrupted run's"
else
    echo "FAIL: final last.safetensors differs from the uninterrupted run's"; fail=1
fi
resumes=$(grep -c 'resumed from' "$tmp/b.log")
echo "ok: $checked checkpoint files checked, $resumes resumes, $mid_write kills during a checkpoint write, $done_early runs finished before their kill"
[ $fail -eq 0 ] && echo "crash-test passed" || { echo "crash-test FAILED (seed $seed)"; tail -n 20 "$tmp/b.log"; }
exit $fail
