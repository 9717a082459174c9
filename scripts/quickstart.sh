#!/usr/bin/env bash
# The main job: installs what is missing, builds gemmnet, generates the built-in data set if it
# is not there, and trains configs/quickstart.cfg. Extra arguments go to `gemmnet train`
# (e.g. --threads 4, --resume auto).
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
build/gemmnet train configs/quickstart.cfg --out runs/quickstart "$@"
echo
echo "The trained network: runs/quickstart/best.safetensors (best on validation) and"
echo "runs/quickstart/last.safetensors; metrics: runs/quickstart/metrics.csv; curves:"
echo "runs/quickstart/curves.svg (open it in a browser). Try:"
echo "  build/gemmnet predict configs/quickstart.cfg --weights runs/quickstart/best.safetensors data/synth10/val/*/*0.JPEG"
