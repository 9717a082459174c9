#!/usr/bin/env bash
# Fashion-MNIST end to end, small: scripts/fashion-mnist.sh converts a slice of Debian's IDX
# files (2,560 training, 1,000 test images) into JPEG class folders with gemmnet import-idx and
# trains configs/fashion-mnist.cfg for 60 iterations; the test accuracy on the final line must
# be well above chance (10%). A second run adds mixup and cutmix (soft targets through the
# loss). A rerun of the conversion skips every file; a negative mixup_alpha in a config file is
# refused naming file, line and key. Skipped (77) without the package dataset-fashion-mnist.
set -uo pipefail
G=${GEMMNET:?}
ROOT=${GN_SOURCE_ROOT:?}
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] ||
    { echo "dataset-fashion-mnist is not installed (scripts/deps.sh --test)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# the config's EMA (decay 0.999) with its warm-up, so that 60 iterations' EMA is not the
# initialization
short=(--threads 2 --set net.epochs=3 --set net.burn_in=20 --set eval.epoch=0
       --set checkpoint.every=0 --set train.log_every=20 --set train.ema_warmup=1)

top1_of() { sed -n 's/^final:.* top1=\([0-9.]*\)%.*/\1/p' "$1"; }

GEMMNET=$G "$ROOT/scripts/fashion-mnist.sh" --data "$tmp/fm" --out "$tmp/run1" \
    --limit-train 2560 --limit-val 1000 -- "${short[@]}" >"$tmp/log1" 2>&1 ||
    { tail -n 30 "$tmp/log1"; fail "fashion-mnist.sh failed"; }
grep "written" "$tmp/log1"
grep '^final:' "$tmp/log1"
[ -d "$tmp/fm/train/0-T-shirt_top" ] && [ -d "$tmp/fm/val/9-Ankle_boot" ] ||
    fail "class folders: $(ls "$tmp/fm/train" | tr '\n' ' ')"
n=$(find "$tmp/fm/train" -name '*.jpg' | wc -l)
[ "$n" = 2560 ] || fail "$n training JPEGs, expected 2560"
grep -q '^final: iters=60 ' "$tmp/log1" || fail "no final: iters=60 line"
t1=$(top1_of "$tmp/log1")
awk -v t="$t1" 'BEGIN { exit !(t >= 55) }' || fail "test top-1 $t1% < 55%"

# The conversion again: everything is there already.
"$G" import-idx /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \
    /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz "$tmp/fm/val" \
    --names "$tmp/fm/classes.txt" --limit 1000 >"$tmp/log2" 2>&1 || fail "import-idx rerun"
grep -q "0 written, 1000 already there" "$tmp/log2" || fail "rerun: $(cat "$tmp/log2")"

# Mixup and cutmix on top of the label smoothing the config has.
GEMMNET=$G "$ROOT/scripts/fashion-mnist.sh" --data "$tmp/fm" --out "$tmp/run2" \
    --limit-train 2560 --limit-val 1000 -- "${short[@]}" \
    --set data.mixup_alpha=0.2 --set data.cutmix_alpha=1.0 >"$tmp/log3" 2>&1 ||
    { tail -n 30 "$tmp/log3"; fail "the mixup/cutmix run failed"; }
grep '^final:' "$tmp/log3"
t2=$(top1_of "$tmp/log3")
awk -v t="$t2" 'BEGIN { exit !(t >= 40) }' || fail "mixup/cutmix: test top-1 $t2% < 40%"

# Bad values are refused with file:line:key.
sed 's/^\[data\]$/[data]\nmixup_alpha=-0.2/' "$ROOT/configs/fashion-mnist.cfg" >"$tmp/bad.cfg"
line=$(grep -n '^mixup_alpha=-0.2$' "$tmp/bad.cfg" | cut -d: -f1)
"$G" train "$tmp/bad.cfg" --out "$tmp/run3" >"$tmp/log4" 2>&1 && fail "mixup_alpha=-0.2 was accepted"
grep -q "bad.cfg:$line: \[data\] key 'mixup_alpha'" "$tmp/log4" || fail "message: $(cat "$tmp/log4")"
sed 's/^\[train\]$/[train]\nlabel_smoothing=1.5/' "$ROOT/configs/fashion-mnist.cfg" >"$tmp/bad2.cfg"
"$G" train "$tmp/bad2.cfg" --out "$tmp/run3" >"$tmp/log5" 2>&1 && fail "label_smoothing=1.5 was accepted"
grep -q "bad2.cfg:[0-9]*: \[train\] key 'label_smoothing'" "$tmp/log5" || fail "message: $(cat "$tmp/log5")"
echo "ok: top-1 $t1% (label smoothing), $t2% (with mixup and cutmix) after 60 iterations"
