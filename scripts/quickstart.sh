#!/usr/bin/env bash
# The main job: installs what is missing, builds gemmnet, generates the built-in data set if it
# is not there, and trains configs/quickstart.cfg into runs/quickstart (runs/quickstart-2 when
# that holds an earlier run). Extra arguments go to `gemmnet train` (e.g. --threads 4,
# --resume auto to continue runs/quickstart).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ ! -f build/build.ninja ]; then
    meson setup build
fi
ninja -C build
if [ ! -f data/synth10/.complete ]; then
    echo "generating the built-in data set in data/synth10 ..."
    rm -rf data/synth10
    build/gemmnet synth data/synth10
fi
# The default output directory: runs/quickstart, or runs/quickstart-2, -3, ... when an earlier
# run is there (docs/training.md); the 'checkpoint:' line names it.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# tee ignores Ctrl-C, so that gemmnet can still write its checkpoint and closing lines
build/gemmnet train configs/quickstart.cfg "$@" | (trap '' INT TERM; exec tee "$log")
out=$(sed -n 's|^checkpoint: \(.*\)/last\.safetensors$|\1|p' "$log" | tail -n 1)
echo
echo "The trained network: $out/best.safetensors (best on validation) and"
echo "$out/last.safetensors; metrics: $out/metrics.csv; curves:"
echo "$out/curves.svg (open it in a browser). Try:"
echo "  build/gemmnet predict configs/quickstart.cfg --weights $out/best.safetensors data/synth10/val/*/*0.JPEG"
