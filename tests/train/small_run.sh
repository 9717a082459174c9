# Shared by the shell tests of training (and scripts/crash-test.sh): the pass/fail helper and a
# small data set + config that train in about a second.
#
#   check CONDITION DESCRIPTION   evaluates CONDITION; prints ok/FAIL; sets fail=1 on failure
#   rows_in DIR                   rows (iterations and evaluations) in DIR/metrics.csv; 0 if none
#   small_run DIR MAX_BATCHES EVAL_EVERY CKPT_EVERY DROPOUT
#       writes DIR/d (3 classes of the built-in data set) and DIR/t.cfg: a strided conv with
#       batch norm, [dropout] (when DROPOUT=1), global average pooling, a 3-way classifier;
#       batch 8 in 2 subdivisions, 24x24 input, a steps schedule.
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
rows_in() { local n; n=$(grep -c '^[0-9]' "$1/metrics.csv" 2>/dev/null); echo "${n:-0}"; }
# wait_rows DIR N PID: until DIR/metrics.csv has N rows (0) or PID has exited (1), 30 s at most
wait_rows() {
    for _ in $(seq 1 3000); do
        [ "$(rows_in "$1")" -ge "$2" ] && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

small_run() {
    local dir=$1 max=$2 eval_every=$3 ckpt_every=$4 dropout=$5
    "$G" synth "$dir/d" --classes 3 --train 24 --val 6 --seed 3 >/dev/null || return 1
    {
        cat <<CFG
[net]
batch=8
subdivisions=2
width=24
height=24
channels=3
learning_rate=0.05
momentum=0.9
decay=0.0005
policy=steps
steps=10,20
scales=0.5,0.5
max_batches=$max
[data]
train=$dir/d/train
val=$dir/d/val
workers=2
[train]
log_every=1
[eval]
every=$eval_every
[checkpoint]
every=$ckpt_every
keep=2
[convolutional]
filters=8
size=3
stride=2
pad=1
batch_normalize=1
activation=leaky
CFG
        [ "$dropout" = 1 ] && printf '[dropout]\nprobability=0.2\n'
        printf '[avgpool]\n[connected]\noutput=3\n[softmax]\n'
    } >"$dir/t.cfg"
}
