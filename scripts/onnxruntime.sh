#!/usr/bin/env bash
# Installs ONNX Runtime for Node.js (the npm package onnxruntime-node, whose CPU library
# libonnxruntime.so is inside the package), the oracle of tests/interop/test_onnx.sh, into a
# cache directory outside the source tree. Safe to run again. scripts/deps.sh --test calls it.
#   scripts/onnxruntime.sh          install (npm) unless already there, print the directory
#   scripts/onnxruntime.sh --dir    only print the directory
# The directory: $ORT_DIR, else ${XDG_CACHE_HOME:-~/.cache}/gemmnet/onnxruntime-node-VERSION.
# --ignore-scripts: the package's install script only fetches a GPU build, which fails offline.
set -euo pipefail
version=1.31.1
dir=${ORT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gemmnet/onnxruntime-node-$version}
if [ "${1:-}" = "--dir" ]; then
    echo "$dir"
    exit 0
fi
if [ ! -f "$dir/node_modules/onnxruntime-node/package.json" ]; then
    if ! command -v npm >/dev/null; then
        echo "onnxruntime.sh: npm is missing (apt-get install npm)" >&2
        exit 1
    fi
    mkdir -p "$dir"
    (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --no-save --loglevel=error \
        "onnxruntime-node@$version" >&2)
fi
echo "$dir"
