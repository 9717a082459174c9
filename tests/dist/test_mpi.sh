#!/usr/bin/env bash
# Data-parallel training with 2 ranks on this machine:
#  - after K steps on the same global batch the weights equal a single process's (1e-5 relative);
#  - a 2-rank run of K steps resumed to 2K equals a straight 2-rank 2K run;
#  - batch norm with sync_bn runs, rank count stored in the checkpoint;
#  - a rank that fails, or hangs, stops the job through the mpi_timeout watchdog, with a message;
#  - rank 0 holds the output directory's lock; a run into a locked directory fails on every rank.
# Skipped (77) when gemmnet was built without MPI or mpirun is missing.
set -uo pipefail
G=${GEMMNET:?}
C=${CKPT_COMPARE:?}
[ "${GN_MPI:-0}" = 1 ] || { echo "gemmnet built without MPI: skipped"; exit 77; }
command -v mpirun >/dev/null || { echo "no mpirun: skipped"; exit 77; }
export OMPI_MCA_plm_rsh_agent=      # no ssh needed on one machine
export OMPI_MCA_btl_vader_single_copy_mechanism=none  # containers: no ptrace/CMA
MPI=(mpirun --allow-run-as-root --oversubscribe -np 2)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

"$G" synth "$tmp/d" --classes 3 --train 48 --val 10 --seed 5 >/dev/null || { echo "synth failed"; exit 1; }
cat >"$tmp/t.cfg" <<CFG
[net]
batch=16
subdivisions=2
width=24
height=24
channels=3
learning_rate=0.05
momentum=0.9
decay=0.0005
policy=steps
steps=4
scales=0.5
max_batches=8
[data]
train=$tmp/d/train
val=$tmp/d/val
workers=1
[train]
log_every=1
bucket_mb=0.002
[eval]
every=4
[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky
[convolutional]
filters=8
size=3
stride=1
pad=1
activation=relu
[avgpool]
[connected]
output=3
[softmax]
CFG
T=(--threads 1)
"$G" train "$tmp/t.cfg" --out "$tmp/one" "${T[@]}" >"$tmp/one.log" 2>&1
check "[ -f $tmp/one/last.safetensors ]" "single process run finished"
"${MPI[@]}" "$G" train "$tmp/t.cfg" --out "$tmp/two" "${T[@]}" >"$tmp/two.log" 2>&1
rc=$?
check "[ $rc -eq 0 ] && [ -f $tmp/two/last.safetensors ]" "2-rank run finished (rc=$rc)"
check "[ \$(grep -c '^final:' $tmp/two.log) -eq 1 ]" "one final line (rank 0 only)"
check "grep -q 'data-parallel: 2 ranks' $tmp/two.log" "2-rank run says so"
check "grep -aq '\"ranks\":\"2\"' $tmp/two/last.safetensors" "rank count in checkpoint metadata"
check "$C $tmp/one/last.safetensors $tmp/two/last.safetensors 1e-5" \
    "2 ranks == 1 process after 8 steps (weights, 1e-5 relative)"
check "$C $tmp/one/last.safetensors $tmp/two/last.safetensors 1e-5 optimizer." "... and momentum"
v1=$(grep '^final:' "$tmp/one.log" | grep -o 'val_loss=[0-9.]*')
v2=$(grep '^final:' "$tmp/two.log" | grep -o 'val_loss=[0-9.]*')
check "[ -n '$v1' ] && [ '$v1' = '$v2' ]" "sharded evaluation gives the single-process val loss ($v1 / $v2)"

# resume: 4 steps, then on to 8, equals the straight 8-step 2-rank run
"${MPI[@]}" "$G" train "$tmp/t.cfg" --out "$tmp/res" --set net.max_batches=4 "${T[@]}" \
    >"$tmp/res1.log" 2>&1
"${MPI[@]}" "$G" train "$tmp/t.cfg" --out "$tmp/res" --resume auto "${T[@]}" >"$tmp/res2.log" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q 'resumed from' $tmp/res2.log" "2-rank resume ran (rc=$rc)"
check "$C $tmp/two/last.safetensors $tmp/res/last.safetensors 0" \
    "2-rank K + resume to 2K == straight 2K (bit-identical tensors)"
check "$C $tmp/two/last.safetensors $tmp/res/last.safetensors 0 optimizer." "... and momentum"
# another rank count: allowed, with a warning
"$G" train "$tmp/t.cfg" --out "$tmp/res" --resume auto --set net.max_batches=9 "${T[@]}" \
    >"$tmp/res3.log" 2>&1
check "grep -q 'written by 2 ranks, this run has 1' $tmp/res3.log" "resume with another N warns"

# a global batch the ranks cannot split
"${MPI[@]}" "$G" train "$tmp/t.cfg" --out "$tmp/bad" --set net.batch=6 "${T[@]}" >"$tmp/bad.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -q 'divisible by ranks' $tmp/bad.log" "indivisible global batch refused"

# batch norm, local statistics averaged at eval/checkpoint (sync_bn=1), batch per rank
sed -e 's/^activation=leaky/activation=leaky\nbatch_normalize=1/' "$tmp/t.cfg" >"$tmp/bn.cfg"
"${MPI[@]}" "$G" train "$tmp/bn.cfg" --out "$tmp/bn" --set train.sync_bn=1 \
    --set train.batch_per_rank=1 --set net.batch=8 "${T[@]}" >"$tmp/bn.log" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q 'global batch 16' $tmp/bn.log" "sync_bn + batch_per_rank run (rc=$rc)"

# the output directory's lock: rank 0 takes it, every rank learns the outcome
"$G" train "$tmp/t.cfg" --out "$tmp/lk" --set net.max_batches=1000000 "${T[@]}" >"$tmp/lk1.log" 2>&1 &
holder=$!
for _ in $(seq 1 200); do grep -qx "$holder" "$tmp/lk/.lock" 2>/dev/null && break; sleep 0.05; done
"${MPI[@]}" "$G" train "$tmp/t.cfg" --out "$tmp/lk" --overwrite "${T[@]}" >"$tmp/lk2.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -q 'in use by another run (PID $holder)' $tmp/lk2.log && kill -0 $holder" \
    "a 2-rank run into a locked directory fails, naming the holder (rc=$rc)"
kill -9 $holder
wait $holder 2>/dev/null
"${MPI[@]}" "$G" train "$tmp/t.cfg" --out "$tmp/lk" --overwrite --set net.max_batches=2 "${T[@]}" \
    >"$tmp/lk3.log" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q '^final: iters=2' $tmp/lk3.log" "... and runs once the holder is gone (rc=$rc)"

# a rank that fails (here: its data is missing) stops every rank, with its message
mpirun --allow-run-as-root --oversubscribe -np 1 "$G" train "$tmp/t.cfg" --out "$tmp/f" "${T[@]}" : \
    -np 1 "$G" train "$tmp/t.cfg" --out "$tmp/f" --set data.train="$tmp/nonexistent" "${T[@]}" \
    >"$tmp/f.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -q 'nonexistent' $tmp/f.log && grep -q 'stopping every rank' $tmp/f.log" \
    "a failing rank stops the job with its message (rc=$rc)"

# a rank that hangs (SIGSTOP): the other's watchdog stops the job with a message
"${MPI[@]}" "$G" train "$tmp/t.cfg" --out "$tmp/hang" --set net.max_batches=100000 \
    --set train.mpi_timeout=3 "${T[@]}" >"$tmp/hang.log" 2>&1 &
mp=$!
for _ in $(seq 1 100); do
    n=$(grep -c '^[0-9]' "$tmp/hang/metrics.csv" 2>/dev/null)
    [ "${n:-0}" -ge 3 ] && break
    sleep 0.1
done
kids=$(pgrep -P $mp)
victim=$(echo "$kids" | tail -n 1)
[ -n "$victim" ] && kill -STOP "$victim"
t0=$(date +%s)
for _ in $(seq 1 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
kill -0 $mp 2>/dev/null && { kill -CONT "$victim"; kill -TERM $mp; }
wait $mp
rc=$?
dt=$(( $(date +%s) - t0 ))
check "[ -n '$victim' ] && [ $rc -ne 0 ] && [ $dt -lt 25 ]" "hung rank stops the job (rc=$rc, ${dt}s)"
check "grep -q 'did not complete within mpi_timeout' $tmp/hang.log" "... with the watchdog's message"

[ $fail -eq 0 ] || { echo "--- logs"; tail -n 8 "$tmp"/*.log; }
exit $fail
