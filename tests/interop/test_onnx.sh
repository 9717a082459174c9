#!/usr/bin/env bash
# ONNX export against ONNX Runtime (docs/interop.md).
#   test_onnx.sh         every config in configs/ and the exporter's own layer test
#                        (onnx_layers.cfg), then the refusal of a layer ONNX cannot express
#   test_onnx.sh --zoo   darknet's zoo (/usr/share/darknet/cfg/*.cfg), up to GN_ONNX_ZOO_MAX (30)
#                        million parameters unless GN_ONNX_ZOO_MAX=0
# For each config: onnx_ref builds it at its own size with random weights and batch-norm
# statistics (batch 2), writes them as a checkpoint and gemmnet's outputs; `gemmnet export`
# writes the model; ONNX Runtime (npm onnxruntime-node, scripts/onnxruntime.sh) runs it on the
# same input; python3-onnx's checker (full shape inference) checks it, and every output (the
# probabilities) must match gemmnet's within 1e-5 absolute. Configs gemmnet refuses, and ones
# without [softmax], are skipped with the reason. The refusal: exit 1, the layer named, nothing
# written.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${GN_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
GEMMNET=${GEMMNET:?GEMMNET must name the gemmnet binary}
ONNX_REF=${ONNX_REF:?ONNX_REF must name the onnx_ref test program}
PY=${PYTHON:-/usr/bin/python3}
ORT_DIR=${ORT_DIR:-$("$root/scripts/onnxruntime.sh" --dir)}
export ORT_DIR
skip() { echo "SKIP: $*"; exit 77; }
[ -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] ||
    skip "onnxruntime-node is not in $ORT_DIR (scripts/deps.sh --test installs it)"
command -v node >/dev/null || skip "node is missing (scripts/deps.sh --test installs it)"
"$PY" -c 'import onnx, numpy' 2>/dev/null || skip "$PY lacks onnx or numpy (python3-onnx)"

zoo=0
[ "${1:-}" = "--zoo" ] && zoo=1
if [ $zoo -eq 1 ]; then
    [ -d /usr/share/darknet/cfg ] ||
        skip "/usr/share/darknet/cfg is missing (apt-get install darknet)"
    cfgs=(/usr/share/darknet/cfg/*.cfg)
else
    cfgs=("$root"/configs/*.cfg "$here/onnx_layers.cfg")
fi
# models of up to 400 MB are written, checkpointed and fsynced: in memory where possible
tmp=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 skipped=0
# The zoo's largest models (vgg-16: 138M parameters, a 553 MB model) cost minutes each in
# python3-onnx's full check; the suite takes those up to 30M parameters (GN_ONNX_ZOO_MAX, in
# millions; GN_ONNX_ZOO_MAX=0 takes them all).
zoo_max=${GN_ONNX_ZOO_MAX:-30}
for cfg in "${cfgs[@]}"; do
    name=${cfg#"$root"/}
    if [ $zoo -eq 1 ] && [ "$zoo_max" -gt 0 ]; then
        np=$("$GEMMNET" summary "$cfg" --batch 1 2>/dev/null | awk '/^parameters:/ {print $2}')
        if [ -n "$np" ] && [ "$np" -gt $((zoo_max * 1000000)) ]; then
            echo "skip $name: $np parameters, over GN_ONNX_ZOO_MAX=${zoo_max}M"
            skipped=$((skipped + 1))
            continue
        fi
    fi
    d="$tmp/run"
    rm -rf "$d" && mkdir -p "$d"
    t0=$(date +%s%N)
    out=$("$ONNX_REF" "$cfg" "$d" 2>&1)
    rc=$?
    if [ $rc -eq 77 ]; then
        echo "skip $name: $out"
        skipped=$((skipped + 1))
        continue
    fi
    ok=1
    if [ $rc -ne 0 ]; then
        echo "$out"
        ok=0
    elif ! "$GEMMNET" export "$cfg" --weights "$d/weights.safetensors" --out "$d/model.onnx" \
            >"$d/export.log" 2>&1; then
        cat "$d/export.log"
        ok=0
    elif ! node "$here/onnx_run.js" "$d/model.onnx" "$d/input.f32" "$d/dims" "$d/ort.f32" \
            >"$d/ort.log" 2>&1; then
        cat "$d/ort.log"
        ok=0
    fi
    res=""
    if [ $ok -eq 1 ]; then
        res=$("$PY" "$here/onnx_check.py" "$d/model.onnx" "$d/dims" "$d/gemmnet.f32" \
              "$d/ort.f32" 2>&1) || ok=0
    fi
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ $ok -eq 1 ]; then
        mb=$(($(stat -c %s "$d/model.onnx") / 1000000))
        printf 'ok   %s (%s MB, %d.%d s)\n%s\n' "$name" "$mb" $((ms / 1000)) $((ms % 1000 / 100)) \
            "$res"
        pass=$((pass + 1))
    else
        printf 'FAIL %s\n%s\n' "$name" "$res"
        fail=$((fail + 1))
    fi
done

# A layer ONNX cannot express: refused by name, exit 1, nothing written (an older file at the
# path stays as it was).
if [ $zoo -eq 0 ]; then
    d="$tmp/bad"
    mkdir -p "$d"
    if ! "$ONNX_REF" "$here/onnx_refuse.cfg" "$d" >"$d/ref.log" 2>&1; then
        echo "FAIL onnx_refuse.cfg: onnx_ref: $(cat "$d/ref.log")"
        fail=$((fail + 1))
    else
        echo "old" >"$d/model.onnx"
        "$GEMMNET" export "$here/onnx_refuse.cfg" --weights "$d/weights.safetensors" \
            --out "$d/model.onnx" >"$d/out" 2>"$d/err"
        rc=$?
        left=$(cd "$d" && ls model.onnx.* 2>/dev/null)
        if [ $rc -eq 1 ] && grep -q 'layer 2 \[shortcut\]' "$d/err" && [ -z "$left" ] &&
                [ "$(cat "$d/model.onnx")" = old ]; then
            echo "ok   refused: $(cat "$d/err")"
            pass=$((pass + 1))
        else
            echo "FAIL refusal: exit $rc, stderr: $(cat "$d/err"), left: $left"
            fail=$((fail + 1))
        fi
    fi
fi

echo "$pass passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ] && [ $pass -ge 2 ]
