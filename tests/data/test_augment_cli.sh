#!/bin/sh
# gemmnet train with darknet's [net] augmentation keys and [data] augmentations: darknet keys that
# a [data] key overrides are named in warnings (file:line), a bad magnitude is refused with file:line:key,
# and training runs with RandAugment, TrivialAugmentWide and random erasing on.
set -u
G="${GEMMNET:?GEMMNET must name the gemmnet binary}"
T=$(mktemp -d /tmp/gn_aug_cli_XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $1"; fail=1; fi; }

"$G" synth "$T/s" --classes 2 --train 8 --val 2 --min-side 40 --max-side 80 --seed 3 > /dev/null 2>&1
check '[ $? -eq 0 ]'
printf '[net]\nbatch=4\nwidth=24\nheight=24\nchannels=3\nmax_batches=2\nlearning_rate=0.01
angle=7\nhue=.1\nsaturation=.75\nexposure=.75\naspect=.75\nmin_crop=128\nmax_crop=448
[data]\ntrain=s/train\nval=s/val\naugment=randaugment\nrandaugment_mstd=1.5\nerasing=0.5
[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=relu\n[avgpool]
[connected]\noutput=2\nactivation=linear\n[softmax]\n' > "$T/a.cfg"
"$G" train "$T/a.cfg" --out "$T/run" > "$T/out" 2> "$T/err"
check '[ $? -eq 0 ]'
check '[ "$(grep -c "^warning:" "$T/err")" -eq 0 ]'   # all darknet keys honoured: no warning
check 'grep -q "^final: " "$T/out"'
"$G" train "$T/a.cfg" --out "$T/run1" --set data.scale=0.5,1 > "$T/out" 2> "$T/err"
check '[ $? -eq 0 ]'
check 'grep -q "^warning: .*a.cfg:13: \[net\] min_crop=128: not used: \[data\] scale" "$T/err"'
check 'grep -q "^warning: .*a.cfg:14: \[net\] max_crop=448: not used: \[data\] scale" "$T/err"'
check '[ "$(grep -c "^warning:" "$T/err")" -eq 2 ]'
"$G" train "$T/a.cfg" --out "$T/run2" --set data.augment=trivialaugment --set data.randaugment_mstd=0 > "$T/out" 2> "$T/err"
check '[ $? -ne 0 ]'   # randaugment_mstd belongs to augment=randaugment
check 'grep -q "randaugment_mstd" "$T/err"'
"$G" train "$T/a.cfg" --out "$T/run3" --set data.randaugment_m=40 > "$T/out" 2> "$T/err"
check '[ $? -ne 0 ]'
check 'grep -q "randaugment_m.*0..30" "$T/err"'
sed -i 's/^randaugment_mstd=1.5$/rotate=10/; s/^augment=randaugment$/augment=trivialaugment/' "$T/a.cfg"
"$G" train "$T/a.cfg" --out "$T/run4" > "$T/out" 2> "$T/err"
check '[ $? -eq 0 ]'
check 'grep -q "a.cfg:8: \[net\] angle=7: not used: \[data\] rotate" "$T/err"'
check 'grep -q "^final: " "$T/out"'
printf '[net]\nwidth=24\nheight=24\n[data]\ntrain=s/train\nratio=0.8,1.25\n' > "$T/b.cfg"
"$G" bench-data "$T/b.cfg" --images 8 --batch 4 --set net.max_crop=64 > "$T/out" 2> "$T/err"
check '[ $? -eq 0 ]'
check 'grep -q "^warning: --set (argument 1): \[net\] max_crop=64: not used" "$T/err"'
exit $fail
