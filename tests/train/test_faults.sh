#!/usr/bin/env bash
# Faults: a checkpoint that cannot be written (file-size limit: writes fail with EFBIG, as on a
# full disk) with on_error=stop and on_error=continue; a config that needs more memory than the
# machine has (refused at planning time with the numbers); ckpt-info on good and broken files.
set -uo pipefail
G=${GEMMNET:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/small_run.sh"

small_run "$tmp" 8 100 4 0 || { echo "synth failed"; exit 1; }
T=(--threads 2)

# ---- checkpoint writes fail (EFBIG under a 4 KiB file-size limit; a checkpoint is ~4.7 KB)
"$G" train "$tmp/t.cfg" --out "$tmp/o" "${T[@]}" >"$tmp/a.log" 2>&1
check "[ -f $tmp/o/last.safetensors ]" "first run (8 iterations) wrote last.safetensors"
cp "$tmp/o/last.safetensors" "$tmp/prev.safetensors"
limited() { # run gemmnet with writes limited to 4 KiB per file; SIGXFSZ ignored, so EFBIG
    (trap '' XFSZ; ulimit -f 4; "$G" "$@")
}
limited train "$tmp/t.cfg" --out "$tmp/o" --resume auto --set net.max_batches=16 "${T[@]}" \
    >"$tmp/stop.log" 2>&1
rc=$?
check "[ $rc -ne 0 ]" "on_error=stop: a failed checkpoint stops the run with an error (rc=$rc)"
check "grep -q 'checkpoint at iteration 12 failed; the previous one is intact: cannot write .*File too large' $tmp/stop.log" \
    "on_error=stop: the error names the iteration, the file and the reason"
check "cmp -s $tmp/prev.safetensors $tmp/o/last.safetensors" "on_error=stop: previous checkpoint untouched"
check "'$G' ckpt-info $tmp/o/last.safetensors --config $tmp/t.cfg --quiet" "on_error=stop: previous checkpoint loads"
check "! ls $tmp/o/*.tmp* >/dev/null 2>&1" "on_error=stop: no temporary files left behind"

limited train "$tmp/t.cfg" --out "$tmp/o" --resume auto --set net.max_batches=16 \
    --set checkpoint.on_error=continue "${T[@]}" >"$tmp/cont.log" 2>&1
rc=$?
check "grep -q 'warning: checkpoint at iteration 12 failed (cannot write .*File too large); the previous one is intact; retrying' $tmp/cont.log" \
    "on_error=continue: a failed checkpoint is a warning"
check "grep -q 'iter 16/16' $tmp/cont.log" "on_error=continue: training went on to the end"
check "[ $rc -ne 0 ] && grep -q 'the final checkpoint (iteration 16) failed' $tmp/cont.log" \
    "on_error=continue: the final checkpoint failing is still an error (rc=$rc)"
check "cmp -s $tmp/prev.safetensors $tmp/o/last.safetensors" "on_error=continue: previous checkpoint untouched"
check "! ls $tmp/o/*.tmp* >/dev/null 2>&1" "on_error=continue: no temporary files left behind"
# continue, with room again for the final checkpoint: exits 0
"$G" train "$tmp/t.cfg" --out "$tmp/o" --resume auto --set net.max_batches=16 \
    --set checkpoint.on_error=continue "${T[@]}" >"$tmp/ok.log" 2>&1
check "[ $? -eq 0 ] && '$G' ckpt-info $tmp/o/last.safetensors | grep -q 'iteration = 16'" \
    "with room again the run resumes and finishes"

# ---- memory: refused at planning time with the numbers, before allocating
R=$GN_SOURCE_ROOT/configs/resnet18.cfg
"$G" summary "$R" --set net.batch=100000 >"$tmp/sum.log" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q 'does not fit: the network needs [0-9]* MiB for batch 100000' $tmp/sum.log" \
    "summary reports a batch that does not fit (rc=$rc)"
"$G" train "$R" --set net.batch=100000 --out "$tmp/m" >"$tmp/mem.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -qE 'needs [0-9]+ MiB for batch 100000 .*the machine has [0-9]+ MiB available' $tmp/mem.log" \
    "train refuses a batch that does not fit, with the numbers (rc=$rc)"
GEMMNET_MAX_MEM=64 "$G" train "$tmp/t.cfg" --out "$tmp/m2" --set net.width=512 --set net.height=512 \
    --set net.subdivisions=1 "${T[@]}" >"$tmp/mem2.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -q 'MiB available (GEMMNET_MAX_MEM)' $tmp/mem2.log" \
    "GEMMNET_MAX_MEM lowers the limit (rc=$rc)"
GEMMNET_MAX_MEM=1G "$G" train "$tmp/t.cfg" --out "$tmp/m3" "${T[@]}" >"$tmp/mem3.log" 2>&1
check "[ $? -eq 0 ]" "a small net fits under GEMMNET_MAX_MEM=1G"
# the loaders' rings count: 2 x 64 prefetched batches of 4 images of 256x256 (384 MiB) do not fit
# in 64 MiB although the net does; with 2 slots each (12 MiB) the run goes on
big=(--set net.width=256 --set net.height=256 --set net.max_batches=2 "${T[@]}")
GEMMNET_MAX_MEM=64 "$G" train "$tmp/t.cfg" --out "$tmp/m4" --set data.prefetch=64 "${big[@]}" \
    >"$tmp/mem4.log" 2>&1
rc=$?
check "[ $rc -ne 0 ] && grep -qE 'parameters [0-9]+ MiB, the data loaders. prefetch rings 38[0-9] MiB\), the machine has 64 MiB' $tmp/mem4.log" \
    "the memory check counts the loaders' prefetch rings (rc=$rc)"
GEMMNET_MAX_MEM=64 "$G" train "$tmp/t.cfg" --out "$tmp/m5" --set data.prefetch=2 "${big[@]}" \
    >"$tmp/mem5.log" 2>&1
check "[ $? -eq 0 ]" "... and the same run with rings of 2 batches fits in 64 MiB"

# ---- unreadable images: skipped with a warning each, counted over both splits at the end
cp -r "$tmp/d" "$tmp/dbad"
printf 'not a jpeg' >"$(ls "$tmp"/dbad/train/*/*.JPEG | head -n 1)"
printf 'not a jpeg' >"$(ls "$tmp"/dbad/val/*/*.JPEG | head -n 1)"
"$G" train "$tmp/t.cfg" --out "$tmp/bi" --set data.train="$tmp/dbad/train" \
    --set data.val="$tmp/dbad/val" --set data.max_bad_fraction=0.5 --set net.max_batches=18 \
    "${T[@]}" >"$tmp/bi.log" 2>&1
rc=$?
nw=$(grep -c '^warning: skipped' "$tmp/bi.log")
check "[ $rc -eq 0 ] && [ $nw -eq 2 ] && grep -q '^skipped 2 unreadable files' $tmp/bi.log" \
    "a bad training and a bad validation image: 2 warnings, 2 counted (rc=$rc, $nw warnings)"

# ---- config and data errors as the user sees them (docs/errors.md)
err_case() { # description, expected message (grep -E), train arguments...
    local what=$1 want=$2
    shift 2
    "$G" train "$tmp/t.cfg" --out "$tmp/x" "${T[@]}" "$@" >"$tmp/x.log" 2>&1
    local rc=$?
    check "[ $rc -ne 0 ] && grep -qE \"$want\" $tmp/x.log" "$what (rc=$rc)"
}
err_case "misspelt key in --set" "argument [0-9]+.: .convolutional. .layer 0. key 'filtres': unknown key" \
    --set 0.filtres=3
printf 'filtres=3\n' >"$tmp/bad.cfg"; cat "$tmp/t.cfg" >>"$tmp/bad.cfg"
"$G" train "$tmp/bad.cfg" --out "$tmp/x" >"$tmp/x.log" 2>&1
check "[ $? -ne 0 ] && grep -q 'bad.cfg:1' $tmp/x.log" "config error names file:line"
err_case "batch not divisible by subdivisions" "t.cfg:[0-9]+: .net. key 'subdivisions': batch=7 is not divisible" \
    --set net.batch=7
err_case "missing data folder" "/nonexistent: cannot open" --set data.train=/nonexistent
err_case "fewer samples than a batch" "72 samples are fewer than one batch of 200" \
    --set net.batch=200 --set net.subdivisions=1
err_case "classes do not match the output" "the training data has 3 classes but the network outputs 4" \
    --set 2.output=4

# ---- ckpt-info
"$G" ckpt-info "$tmp/o/last.safetensors" >"$tmp/info.log" 2>&1
check "[ $? -eq 0 ] && grep -q 'layers.0.weight  *F32  *\[8,3,3,3\]' $tmp/info.log" "ckpt-info lists tensors"
head -c 3000 "$tmp/o/last.safetensors" >"$tmp/trunc.safetensors"
"$G" ckpt-info "$tmp/trunc.safetensors" >"$tmp/info2.log" 2>&1
check "[ $? -eq 1 ] && grep -q 'refused' $tmp/info2.log" "ckpt-info refuses a truncated file with the reason"
cp "$tmp/o/last.safetensors" "$tmp/flip.safetensors"
printf '\x55' | dd of="$tmp/flip.safetensors" bs=1 seek=$(($(stat -c %s "$tmp/flip.safetensors") - 10)) conv=notrunc 2>/dev/null
"$G" ckpt-info "$tmp/flip.safetensors" >"$tmp/info3.log" 2>&1
check "[ $? -eq 1 ] && grep -qi 'checksum\|crc' $tmp/info3.log" "ckpt-info refuses a flipped byte (checksum)"
"$G" ckpt-info "$tmp/o/last.safetensors" --config "$tmp/t.cfg" --set 0.filters=4 >"$tmp/info4.log" 2>&1
check "[ $? -eq 1 ] && grep -q 'does not load into' $tmp/info4.log" "ckpt-info --config refuses another network"

[ $fail -eq 0 ] || { echo "--- logs"; tail -n 3 "$tmp"/*.log; }
exit $fail
