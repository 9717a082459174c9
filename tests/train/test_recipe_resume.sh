#!/usr/bin/env bash
# Exact resume with every optimizer-side recipe element on (AdamW, EMA with warm-up and an
# interval, linear warm-up, gradient clipping, no weight decay on norm layers and biases): a run
# stopped by SIGTERM, and one killed with kill -9, then resumed, end with checkpoints
# byte-identical to an uninterrupted run's. Also: evaluation uses the EMA and best.safetensors
# holds it (best=ema); such a file is refused by --resume and loads with --weights; resuming an
# AdamW run as SGD is refused; the EMA and AdamW tensors are in last.safetensors. With MPI: 2
# ranks equal one process with AdamW, clipping (the global norm of the summed gradients) and
# the EMA on.
set -uo pipefail
G=${GEMMNET:?}
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
. "$(dirname "$0")/small_run.sh"

small_run "$tmp" 200 20 8 1 || { echo "synth failed"; exit 1; }
T=(--threads 2
   --set train.optimizer=adamw --set net.learning_rate=0.01 --set net.decay=0.05
   --set train.norm_decay=0 --set train.bias_decay=0
   --set train.ema_decay=0.95 --set train.ema_every=2 --set train.ema_warmup=1
   --set train.warmup=30 --set train.warmup_start=0.1 --set train.clip_grad_norm=0.5)
"$G" train "$tmp/t.cfg" --out "$tmp/a" "${T[@]}" >"$tmp/a.log" 2>&1
check "grep -q '^final:.*top1=' $tmp/a.log" "uninterrupted run finished"
check "grep -q 'optimizer adamw' $tmp/a.log" "the log names the optimizer"
check "grep -q 'eval at iteration.*(EMA)' $tmp/a.log" "evaluation uses the EMA"
check "grep -q 'optimizer.exp_avg_sq.layers.0.weight' $tmp/a/last.safetensors" \
    "AdamW's state in the checkpoint"
check "grep -q '\"ema.layers.0.bn.running_mean\"' $tmp/a/last.safetensors" \
    "the EMA (running statistics too) in the checkpoint"
check "grep -q '\"weights\":\"ema\"' $tmp/a/best.safetensors" "best.safetensors holds the EMA"

# SIGTERM partway, resume
"$G" train "$tmp/t.cfg" --out "$tmp/b" "${T[@]}" >"$tmp/b.log" 2>&1 &
pid=$!
wait_rows "$tmp/b" 15 $pid
kill -TERM $pid
wait $pid
code=$?
check "[ $code -eq 143 ]" "SIGTERM run exits 143 (got $code)"
check "grep -q 'stopped at iteration' $tmp/b.log" "SIGTERM run stopped"
"$G" train "$tmp/t.cfg" --out "$tmp/b" --resume auto "${T[@]}" >"$tmp/b2.log" 2>&1
check "grep -q 'resumed from' $tmp/b2.log" "resumed after SIGTERM"
check "cmp -s $tmp/a/last.safetensors $tmp/b/last.safetensors" \
    "SIGTERM + resume is bit-identical (AdamW, EMA, warm-up, clipping)"
check "cmp -s $tmp/a/best.safetensors $tmp/b/best.safetensors" "so is best.safetensors (the EMA)"

# kill -9 twice (between checkpoints), resume each time
for at in 12 60; do
    "$G" train "$tmp/t.cfg" --out "$tmp/c" --resume auto "${T[@]}" >>"$tmp/c.log" 2>&1 &
    pid=$!
    wait_rows "$tmp/c" $at $pid
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
done
check "[ $(grep -c '^final:' "$tmp/c.log") -eq 0 ]" "every kill -9 landed before the end"
"$G" train "$tmp/t.cfg" --out "$tmp/c" --resume auto "${T[@]}" >>"$tmp/c.log" 2>&1
check "cmp -s $tmp/a/last.safetensors $tmp/c/last.safetensors" "kill -9 + resume is bit-identical"

# best=ema holds no training state: refused by --resume, loaded by --weights
"$G" train "$tmp/t.cfg" --out "$tmp/d" --resume "$tmp/a/best.safetensors" "${T[@]}" >"$tmp/d.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -q 'holds the EMA' $tmp/d.log" "resume from an EMA best refused"
"$G" train "$tmp/t.cfg" --out "$tmp/e" --weights "$tmp/a/best.safetensors" --set net.max_batches=2 \
    "${T[@]}" >"$tmp/e.log" 2>&1
check "grep -q '^final:' $tmp/e.log" "--weights loads an EMA best"
# optimizer changed: refused
"$G" train "$tmp/t.cfg" --out "$tmp/a" --resume auto --threads 2 >"$tmp/f.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -q 'optimizer=adamw' $tmp/f.log" "resuming an AdamW run with SGD refused"

# warm-up in epochs: 9 iterations per epoch here; lr of iteration 0 = 0.05 x warmup_start
"$G" train "$tmp/t.cfg" --out "$tmp/w" --threads 2 --set net.max_batches=3 \
    --set train.warmup_epochs=1 --set train.warmup_start=0.2 >"$tmp/w.log" 2>&1
check "grep -q 'warm-up 9 iterations' $tmp/w.log" "warmup_epochs=1 is 9 iterations"
check "grep -q '^1,[0-9.]*,[0-9.]*,0.01,' $tmp/w/metrics.csv" "first iteration at 0.2 x the lr"

# 2 ranks == 1 process (a net without batch norm and dropout, which differ per rank)
C=${CKPT_COMPARE:-}
if [ "${GN_MPI:-0}" = 1 ] && command -v mpirun >/dev/null && [ -n "$C" ]; then
    export OMPI_MCA_plm_rsh_agent= OMPI_MCA_btl_vader_single_copy_mechanism=none
    grep -Ev "batch_normalize|dropout|probability" "$tmp/t.cfg" | sed 's/max_batches=200/max_batches=12/' >"$tmp/m.cfg"
    M=(--threads 1 --set train.optimizer=adamw --set net.learning_rate=0.01
       --set train.ema_decay=0.9 --set train.clip_grad_norm=0.05 --set train.warmup=4)
    "$G" train "$tmp/m.cfg" --out "$tmp/m1" "${M[@]}" >"$tmp/m1.log" 2>&1
    mpirun --allow-run-as-root --oversubscribe -np 2 "$G" train "$tmp/m.cfg" --out "$tmp/m2" \
        "${M[@]}" >"$tmp/m2.log" 2>&1
    for p in layers. optimizer. ema.; do
        check "$C $tmp/m1/last.safetensors $tmp/m2/last.safetensors 1e-5 $p" \
            "2 ranks == 1 process: $p tensors (AdamW, clipping, EMA)"
    done
else
    echo "skipped: the 2-rank comparison (no MPI build, mpirun or CKPT_COMPARE)"
fi

[ $fail -eq 0 ] || { echo "--- logs"; tail -n 5 "$tmp"/*.log; }
exit $fail
