#!/usr/bin/env bash
# A short end-to-end training on the built-in data set: the training loss falls, and the final
# line reports validation accuracy above chance.
set -uo pipefail
G=${GEMMNET:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$G" synth "$tmp/d" --classes 3 --train 60 --val 10 --seed 5 >/dev/null || { echo "synth failed"; exit 1; }
cat >"$tmp/e.cfg" <<CFG
[net]
batch=16
width=32
height=32
channels=3
learning_rate=0.1
momentum=0.9
decay=0.0001
policy=cosine
max_batches=60
[data]
train=$tmp/d/train
val=$tmp/d/val
scale=0.5,1
[train]
log_every=2
[convolutional]
filters=16
size=3
pad=1
batch_normalize=1
activation=relu
[maxpool]
size=2
stride=2
[convolutional]
filters=32
size=3
pad=1
batch_normalize=1
activation=relu
[maxpool]
size=2
stride=2
[convolutional]
filters=32
size=3
pad=1
batch_normalize=1
activation=relu
[avgpool]
[connected]
output=3
[softmax]
CFG
"$G" train "$tmp/e.cfg" --out "$tmp/a" --threads 2 >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
# mean of the last 5 logged training losses against the first 5
read -r first last < <(awk -F, 'NR > 1 && $3 != "" { l[n++] = $3 } END {
    for (i = 0; i < 5; i++) { a += l[i]; b += l[n - 1 - i] } print a / 5, b / 5 }' "$tmp/a/metrics.csv")
echo "training loss: first 5 logged $first, last 5 logged $last"
top1=$(sed -n 's/^final:.* top1=\([0-9.]*\)%.*/\1/p' "$tmp/log")
echo "validation top-1: $top1%"
ok=$(awk -v a="$first" -v b="$last" -v t="${top1:-0}" 'BEGIN { print (b < 0.85 * a && t > 40) ? 1 : 0 }')
[ "$ok" = 1 ] && echo "ok: the loss falls and accuracy is above chance" && exit 0
echo "FAIL: the loss did not fall enough or accuracy is at chance"
exit 1
