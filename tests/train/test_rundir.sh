#!/usr/bin/env bash
# Runs cannot clobber each other (src/train/rundir.c), and a stopped run does not look finished:
#  - a second run into a directory a run is training in fails within a second, naming its PID;
#    after kill -9 of the holder a new run proceeds (the kernel dropped the lock);
#  - a new run into a directory that holds another run's checkpoints is refused, every file
#    left byte for byte; --overwrite replaces it; --resume auto continues it;
#  - the default --out runs/<config name> picks runs/<config name>-2 when that holds a run;
#  - --set of a key that excludes one in the file wins (the resolved config printed shows it);
#  - SIGINT and SIGTERM write the checkpoint, say (stopped) and exit 130 and 143.
set -uo pipefail
G=${GEMMNET:?}
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/small_run.sh"
small_run "$tmp" 6 3 2 0 || { echo "synth failed"; exit 1; }
T=(--threads 1)
ms() { echo $(($(date +%s%N) / 1000000)); }
# snapshot DIR NAME: a copy of DIR's files to compare with later
snapshot() { rm -rf "$tmp/$2" && cp -a "$1" "$tmp/$2"; }
same_files() { diff -r "$1" "$2" >/dev/null; }
same_run() { diff -r -x .lock "$1" "$2" >/dev/null; } # the lock file holds the last PID

# --- the lock: a long run holds it ---
"$G" train "$tmp/t.cfg" --out "$tmp/L" --set net.max_batches=1000000 "${T[@]}" >"$tmp/L1.log" 2>&1 &
holder=$!
pids+=($holder)
wait_rows "$tmp/L" 2 $holder
check "kill -0 $holder 2>/dev/null && grep -qx $holder $tmp/L/.lock" "the first run holds DIR/.lock (PID $holder)"
t0=$(ms)
"$G" train "$tmp/t.cfg" --out "$tmp/L" --overwrite "${T[@]}" >"$tmp/L2.log" 2>&1
rc=$?
dt=$(($(ms) - t0))
check "[ $rc -eq 1 ] && [ $dt -lt 1000 ]" "a second run into the locked DIR fails within a second (rc=$rc, ${dt} ms)"
check "grep -q 'in use by another run (PID $holder)' $tmp/L2.log" "... naming the holder's PID"
check "kill -0 $holder 2>/dev/null" "... and the holder trains on"
kill -9 $holder
wait $holder 2>/dev/null
"$G" train "$tmp/t.cfg" --out "$tmp/L" --overwrite "${T[@]}" >"$tmp/L3.log" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q '^final:' $tmp/L3.log" "after kill -9 of the holder a new run proceeds (rc=$rc)"

# --- the refusal: a finished run's files stay as they are ---
"$G" train "$tmp/t.cfg" --out "$tmp/R" "${T[@]}" >"$tmp/R1.log" 2>&1
check "[ -f $tmp/R/last.safetensors ] && [ -f $tmp/R/best.safetensors ]" "a run finished in R"
snapshot "$tmp/R" R.before
"$G" train "$tmp/t.cfg" --out "$tmp/R" --set net.learning_rate=0.01 "${T[@]}" >"$tmp/R2.log" 2>&1
rc=$?
check "[ $rc -eq 1 ] && grep -q 'R holds a run at iteration 6 of 6: --resume auto continues it; --out NEW for a new run; --overwrite to replace it' $tmp/R2.log" \
    "a new run into R is refused with the run's iteration and the three ways on (rc=$rc)"
check "same_files $tmp/R.before $tmp/R" "... and every file in R is unchanged, byte for byte"
"$G" train "$tmp/t.cfg" --out "$tmp/R" --weights "$tmp/R/last.safetensors" "${T[@]}" >"$tmp/R3.log" 2>&1
rc=$?
check "[ $rc -eq 1 ] && grep -q 'holds a run' $tmp/R3.log && same_files $tmp/R.before $tmp/R" \
    "--weights (a new run) into R is refused too, R unchanged"
"$G" train "$tmp/t.cfg" --out "$tmp/R" --resume "$tmp/L/last.safetensors" "${T[@]}" >"$tmp/R3b.log" 2>&1
rc=$?
check "[ $rc -eq 1 ] && grep -q 'holds a run' $tmp/R3b.log && same_files $tmp/R.before $tmp/R" \
    "--resume of another directory's checkpoint into R is refused too, R unchanged"
"$G" train "$tmp/t.cfg" --out "$tmp/R" --resume auto --set net.max_batches=8 "${T[@]}" >"$tmp/R4.log" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q 'resumed from .*iteration 6' $tmp/R4.log && grep -q '^final: iters=8' $tmp/R4.log" \
    "--resume auto continues it (rc=$rc)"
snapshot "$tmp/R" R.resumed
"$G" train "$tmp/t.cfg" --out "$tmp/R" --overwrite --set 0.filtres=4 "${T[@]}" >"$tmp/R4b.log" 2>&1
rc=$?
check "[ $rc -eq 1 ] && grep -q \"'filtres': unknown key\" $tmp/R4b.log && same_run $tmp/R.resumed $tmp/R" \
    "--overwrite with a config error leaves the old run as it was (rc=$rc)"
"$G" train "$tmp/t.cfg" --out "$tmp/R" --overwrite --set net.max_batches=4 --set checkpoint.every=1 \
    "${T[@]}" >"$tmp/R5.log" 2>&1
rc=$?
it=$("$G" ckpt-info "$tmp/R/last.safetensors" | sed -n 's/^  meta iteration = //p')
old=$(ls "$tmp"/R/ckpt-0000000[68].safetensors 2>/dev/null | wc -l)
check "[ $rc -eq 0 ] && [ \"$it\" = 4 ] && [ $old -eq 0 ]" \
    "--overwrite replaces it: last is the new run's (iteration $it), the old numbered checkpoints are gone ($old left)"

# --- the default name ---
mkdir -p "$tmp/cwd"
cp "$tmp/t.cfg" "$tmp/cwd/small.cfg"
(cd "$tmp/cwd" && "$G" train small.cfg "${T[@]}" >"$tmp/D1.log" 2>&1)
check "grep -q '^checkpoint: runs/small/last.safetensors' $tmp/D1.log" "the first run goes to runs/small"
snapshot "$tmp/cwd/runs/small" D.before
(cd "$tmp/cwd" && "$G" train small.cfg "${T[@]}" >"$tmp/D2.log" 2>&1)
rc=$?
check "[ $rc -eq 0 ] && grep -q '^checkpoint: runs/small-2/last.safetensors' $tmp/D2.log && grep -q '^metrics: *runs/small-2/metrics.csv' $tmp/D2.log" \
    "the second picks runs/small-2 and says so (rc=$rc)"
check "same_files $tmp/D.before $tmp/cwd/runs/small" "... leaving runs/small untouched"
(cd "$tmp/cwd" && "$G" train small.cfg "${T[@]}" >"$tmp/D3.log" 2>&1)
check "grep -q '^checkpoint: runs/small-3/last.safetensors' $tmp/D3.log" "the third picks runs/small-3"
(cd "$tmp/cwd" && "$G" train small.cfg --resume auto --set net.max_batches=7 "${T[@]}" >"$tmp/D4.log" 2>&1)
check "grep -q 'resumed from runs/small/last.safetensors' $tmp/D4.log" "--resume auto with the default name continues runs/small"

# --- the command line wins: --set net.epochs over the file's max_batches ---
"$G" train "$tmp/t.cfg" --out "$tmp/O" --set net.epochs=1 "${T[@]}" >"$tmp/O.log" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q '^final: iters=9 epochs=1.00' $tmp/O.log && grep -q '^epochs=1\$' $tmp/O.log && grep -q '^# max_batches=6 (.*t.cfg:13) dropped: --set gives epochs' $tmp/O.log && ! grep -q '^max_batches=' $tmp/O.log" \
    "--set net.epochs=1 on a config with max_batches=6: one epoch (9 iterations), the resolved config shows it (rc=$rc)"

# --- signals: the checkpoint first, then 130 / 143 ---
for sig in INT TERM; do
    want=$([ $sig = INT ] && echo 130 || echo 143)
    "$G" train "$tmp/t.cfg" --out "$tmp/S$sig" --set net.max_batches=1000000 "${T[@]}" >"$tmp/S$sig.log" 2>&1 &
    pid=$!
    pids+=($pid)
    wait_rows "$tmp/S$sig" 3 $pid
    kill -$sig $pid
    wait $pid
    rc=$?
    it=$("$G" ckpt-info "$tmp/S$sig/last.safetensors" 2>/dev/null | sed -n 's/^  meta iteration = //p')
    check "[ $rc -eq $want ] && grep -q '^final:.*(stopped)' $tmp/S$sig.log && [ \"\$(grep -o 'stopped at iteration [0-9]*' $tmp/S$sig.log)\" = 'stopped at iteration $it' ]" \
        "SIG$sig: checkpoint at the stop (iteration $it) and exit $want (rc=$rc)"
done

[ $fail -eq 0 ] || { echo "--- logs"; tail -n 3 "$tmp"/*.log; }
exit $fail
