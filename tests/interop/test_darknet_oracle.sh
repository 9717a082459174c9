#!/usr/bin/env bash
# darknet .weights with Debian's darknet binary as the oracle (docs/interop.md):
# - gemmnet trains darknet's own tiny.cfg and darknet.cfg briefly (64x64, 4 classes of the
#   built-in data set), and a small config with [crop], groups, ramp and [connected]; exports
#   .weights, and `darknet classifier predict` prints the same top-1
#   class and probability (to its two decimals) as `gemmnet predict` on 64x64 images, with the
#   .weights file and with gemmnet's own checkpoint;
# - files darknet wrote itself (a short `darknet classifier train`, and `darknet partial` of the
#   config's initialization) go through `gemmnet export` byte-identical, and darknet's trained
#   one predicts the same in both;
# - truncated, too long and wrong-version files are refused with the reason, exit 1, and export
#   leaves no file behind.
# Skipped (77) when darknet is not installed.
set -uo pipefail
G=${GEMMNET:?}
DK=${DARKNET:-/usr/bin/darknet}
CFGS=/usr/share/darknet/cfg
if [ ! -x "$DK" ] || [ ! -r $CFGS/tiny.cfg ]; then
    echo "SKIP: darknet not installed (scripts/deps.sh --test)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

"$G" synth d --classes 4 --train 16 --val 0 --seed 3 >/dev/null || { echo "synth failed"; exit 1; }
"$G" synth img --classes 4 --train 0 --val 1 --min-side 64 --max-side 64 --seed 9 >/dev/null ||
    { echo "synth failed"; exit 1; }
images=$(ls img/val/*/*.JPEG)
printf 'classes=4\nnames=d/classes.txt\ntop=1\n' >p.data

# darknet's config at 64x64 with a 4-way head (its last 1000-filter convolution), batch 8.
adapt() {
    sed -e 's/^filters=1000$/filters=4/' -e 's/^batch=.*/batch=8/' -e 's/^subdivisions=.*/subdivisions=1/' \
        -e 's/^width=.*/width=64/' -e 's/^height=.*/height=64/' -e "s/^max_batches=.*/max_batches=$2/" \
        "$CFGS/$1.cfg"
}

# Top-1 of every image, one "12.34% NAME" line each: darknet reads the paths from stdin (one
# load of the net), gemmnet takes them all ("  12.34%  K": a .weights file has no class names,
# K -> the K-th line of the list darknet reads).
dk_top1() {
    printf '%s\n' $images | "$DK" classifier predict p.data "$1" "$2" 2>/dev/null |
        grep -o '[0-9.]*%: .*' | sed 's/%: /% /'
}
gn_top1() {
    "$G" predict "$1" --weights "$2" --top 1 $images | awk 'NR % 2 == 0 {print $1, $NF}' |
        while read -r p k; do echo "$p $(sed -n "$((k + 1))p" d/classes.txt)"; done
}

compare() { # CFG WEIGHTS WHAT: darknet and gemmnet agree on every image
    local a b n same
    a=$(dk_top1 "$1" "$2")
    b=$(gn_top1 "$1" "$2")
    n=$(echo "$a" | grep -c %)
    same=$(paste -d '|' <(echo "$a") <(echo "$b") | awk -F'|' '$1 == $2' | grep -c %)
    echo "  $3: darknet: $(echo $a)"
    echo "  $3: gemmnet: $(echo $b)"
    check "[ $same -eq $n ] && [ $n -eq 4 ]" "$3: darknet and gemmnet print the same top-1 on $same of $n images"
}

# A config of gemmnet's choosing in darknet's format, for what tiny and darknet lack: [crop] (the
# centre window, 2x-1, at evaluation), a grouped convolution, ramp, [connected] (its [out][in]
# weights over the flattened C,H,W input), [dropout].
cat >mix.cfg <<'CFG'
[net]
batch=8
subdivisions=1
width=64
height=64
channels=3
learning_rate=0.02
momentum=0.9
decay=0.0005
max_batches=4
policy=constant
[crop]
crop_height=56
crop_width=56
flip=1
[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky
[convolutional]
filters=8
size=3
stride=2
groups=2
pad=1
activation=ramp
[maxpool]
size=2
stride=2
[connected]
output=16
activation=leaky
[dropout]
probability=.5
[connected]
output=4
activation=linear
[softmax]
CFG

for net in tiny darknet mix; do
    [ $net = mix ] || adapt $net 4 >$net.cfg
    "$G" train $net.cfg --set data.train="$tmp/d/train" --set data.workers=1 --out run_$net \
        --threads 2 >train_$net.log 2>&1
    check "[ -f run_$net/last.safetensors ]" "$net.cfg: gemmnet trained 4 iterations"
    "$G" export $net.cfg --weights run_$net/last.safetensors --out $net.weights >/dev/null
    check "[ -f $net.weights ]" "$net.cfg: exported as $net.weights"
    seen=$(od -A n -t u4 -j 12 -N 4 $net.weights | tr -d ' ')
    check "[ \"$seen\" = 32 ]" "$net.cfg: the header's seen is the images trained on (4 x 8 = 32: $seen)"
    compare $net.cfg $net.weights "$net.cfg, gemmnet's .weights"
    # the checkpoint gives gemmnet the same answer as the .weights file (one convention)
    "$G" predict $net.cfg --weights run_$net/last.safetensors --top 1 $images >ck.txt
    "$G" predict $net.cfg --weights $net.weights --top 1 $images >dw.txt
    check "[ \"\$(awk '{print \$1}' ck.txt)\" = \"\$(awk '{print \$1}' dw.txt)\" ]" \
        "$net.cfg: gemmnet's checkpoint and its .weights predict the same"
    "$G" export $net.cfg --weights $net.weights --out $net.again.weights >/dev/null
    check "cmp -s $net.weights $net.again.weights" "$net.cfg: .weights -> gemmnet -> .weights is byte-identical"
done

# Fine-tuning from .weights with a config that has its own [data] section: the run trains with
# darknet's convention, its checkpoint says so, and predicts as the .weights it exports.
{ cat mix.cfg; printf '[data]\nflip=1\n'; } | sed 's/^max_batches=.*/max_batches=1/' >mixd.cfg
"$G" train mixd.cfg --weights mix.weights --set data.train="$tmp/d/train" --out run_mixd \
    --threads 2 >train_mixd.log 2>&1
"$G" export mixd.cfg --weights run_mixd/last.safetensors --out mixd.weights >/dev/null
"$G" predict mixd.cfg --weights run_mixd/last.safetensors --top 1 $images >ck.txt
"$G" predict mixd.cfg --weights mixd.weights --top 1 $images >dw.txt
check "[ -s ck.txt ] && [ \"\$(awk '{print \$1}' ck.txt)\" = \"\$(awk '{print \$1}' dw.txt)\" ] && ! cmp -s mix.weights mixd.weights" \
    "fine-tuned from .weights with a [data] config: its checkpoint predicts as its .weights"

# Files darknet wrote: a short training run of its own, and its initialization (`partial`).
adapt tiny 2 >dk.cfg
find d/train -name '*.JPEG' | sort >train.list
mkdir -p backup
printf 'classes=4\ntrain=train.list\nlabels=d/classes.txt\nbackup=backup\ntop=1\n' >t.data
"$DK" classifier train t.data dk.cfg >dk_train.log 2>&1
check "[ -f backup/dk.weights ]" "darknet trained dk.cfg for 2 iterations and saved backup/dk.weights"
"$G" export dk.cfg --weights backup/dk.weights --out dk.again.weights >/dev/null
check "cmp -s backup/dk.weights dk.again.weights" "darknet's trained file -> gemmnet -> .weights is byte-identical"
compare dk.cfg backup/dk.weights "darknet's trained file"
"$DK" partial dk.cfg "" partial.weights 1000 >/dev/null 2>&1
"$G" export dk.cfg --weights partial.weights --out partial.again.weights >/dev/null
check "[ -s partial.weights ] && cmp -s partial.weights partial.again.weights" \
    "darknet's partial (initialization) file -> gemmnet -> .weights is byte-identical"

# Refusals: exit 1, the reason, no file written.
size=$(stat -c %s tiny.weights)
head -c $((size - 1000)) tiny.weights >cut.weights
"$G" export tiny.cfg --weights cut.weights --out out1.weights 2>err1.txt
rc=$?
check "[ $rc -eq 1 ] && grep -q 'truncated: the file ends in layer 19 \[convolutional\] (weight' err1.txt && [ ! -e out1.weights ]" \
    "a truncated file: exit 1, the layer named ($(cat err1.txt))"
cat tiny.weights tiny.weights >long.weights
"$G" predict tiny.cfg --weights long.weights $(echo $images | cut -d " " -f 1) >/dev/null 2>err2.txt
rc=$?
check "[ $rc -eq 1 ] && grep -q 'bytes after the last layer' err2.txt" "a too long file: exit 1 ($(cat err2.txt))"
{ printf '\003\000\000\000'; tail -c +5 tiny.weights; } >v3.weights
"$G" export tiny.cfg --weights v3.weights --out out3.weights 2>err3.txt
rc=$?
check "[ $rc -eq 1 ] && grep -q 'version 3.2.0 is not one gemmnet reads' err3.txt && [ ! -e out3.weights ]" \
    "a wrong version: exit 1 ($(cat err3.txt))"
"$G" train tiny.cfg --set data.train="$tmp/d/train" --weights cut.weights --out run_bad >/dev/null 2>err4.txt
rc=$?
check "[ $rc -eq 1 ] && grep -q 'truncated' err4.txt" "train --weights with a truncated file: exit 1"

exit $fail
