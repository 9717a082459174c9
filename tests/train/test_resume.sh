#!/usr/bin/env bash
# Exact resume: a run stopped by SIGTERM, and one killed with kill -9 between checkpoints, end
# with a checkpoint byte-identical to an uninterrupted run's. Also: NaN stops the run and
# leaves the last good checkpoint; resuming with another network is refused.
set -uo pipefail
G=${GEMMNET:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/small_run.sh"

# 300 iterations (about a second here): long enough that the signals below land mid-run on a
# much faster machine too; each is sent once the run has logged a given number of rows, not after
# a fixed delay.
small_run "$tmp" 300 7 4 1 || { echo "synth failed"; exit 1; }
T=(--threads 2)
"$G" train "$tmp/t.cfg" --out "$tmp/a" "${T[@]}" >"$tmp/a.log" 2>&1
check "[ -f $tmp/a/last.safetensors ]" "uninterrupted run finished"
check "grep -q '^final:.*top1=' $tmp/a.log" "final line with top1"
check "[ -f $tmp/a/curves.svg ] && head -c 4 $tmp/a/curves.svg | grep -q '<svg'" "curves.svg written"
n=$(ls "$tmp"/a/ckpt-*.safetensors 2>/dev/null | wc -l)
check "[ $n -eq 2 ]" "numbered checkpoints pruned to keep=2 (found $n)"
rows_a=$(rows_in "$tmp/a")

# SIGTERM once a few iterations are logged, then resume.
"$G" train "$tmp/t.cfg" --out "$tmp/b" "${T[@]}" >"$tmp/b.log" 2>&1 &
pid=$!
wait_rows "$tmp/b" 6 $pid
kill -TERM $pid
wait $pid
rc=$?
check "[ $rc -eq 143 ]" "SIGTERM exits 143, the checkpoint written (rc=$rc)"
check "grep -q 'stopped at iteration' $tmp/b.log && grep -q '^final:.*(stopped)' $tmp/b.log" \
    "SIGTERM run says it stopped (after $(rows_in "$tmp/b") of $rows_a rows)"
"$G" train "$tmp/t.cfg" --out "$tmp/b" --resume auto "${T[@]}" >"$tmp/b2.log" 2>&1
check "grep -q 'resumed from' $tmp/b2.log" "resumed after SIGTERM"
check "cmp -s $tmp/a/last.safetensors $tmp/b/last.safetensors" "SIGTERM + resume is bit-identical"

# kill -9 at several points of the run (sometimes mid-checkpoint), resuming after each.
for at in 20 120 220; do
    "$G" train "$tmp/t.cfg" --out "$tmp/c" --resume auto "${T[@]}" >>"$tmp/c.log" 2>&1 &
    pid=$!
    wait_rows "$tmp/c" $at $pid
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
done
n=$(grep -c '^final:' "$tmp/c.log")
check "[ $n -eq 0 ]" "every kill -9 landed before the end of the run ($n runs finished)"
"$G" train "$tmp/t.cfg" --out "$tmp/c" --resume auto "${T[@]}" >>"$tmp/c.log" 2>&1
check "cmp -s $tmp/a/last.safetensors $tmp/c/last.safetensors" "kill -9 + resume is bit-identical"
check "! ls $tmp/c/*.tmp.* >/dev/null 2>&1" "no temporary checkpoint files left behind"
rows=$(rows_in "$tmp/c")
check "[ $rows -eq $rows_a ]" "metrics.csv has no duplicated rows after resumes ($rows vs $rows_a)"

# Another network: refused with the reason.
"$G" train "$tmp/t.cfg" --out "$tmp/a" --resume auto --set 0.filters=4 "${T[@]}" >"$tmp/d.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -q 'another network' $tmp/d.log" "resume with another network refused"

# A NaN loss stops the run; the last good checkpoint stays loadable.
"$G" train "$tmp/t.cfg" --out "$tmp/e" --set net.learning_rate=1e5 --set net.policy=constant \
    --set checkpoint.every=1 "${T[@]}" >"$tmp/e.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -qE 'NaN|infinite' $tmp/e.log" "non-finite loss stops the run"

# A broken checkpoint is refused with the reason.
head -c 1000 "$tmp/a/last.safetensors" >"$tmp/broken.safetensors"
"$G" train "$tmp/t.cfg" --out "$tmp/f" --resume "$tmp/broken.safetensors" "${T[@]}" >"$tmp/f.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -q 'cannot resume' $tmp/f.log" "truncated checkpoint refused"

[ $fail -eq 0 ] || { echo "--- logs"; tail -n 5 "$tmp"/*.log; }
exit $fail
