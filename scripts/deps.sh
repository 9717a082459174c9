#!/usr/bin/env bash
# Installs the Debian 12 packages gemmnet needs, where missing. Safe to run again.
# Usage: scripts/deps.sh [--test]   (--test adds what the test suite uses)
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc libc6-dev
      libopenblas-openmp-dev libjpeg62-turbo-dev libcjson-dev
      zlib1g-dev                    # gzipped IDX files (gemmnet import-idx)
      libopenmpi-dev openmpi-bin    # MPI: data-parallel training (-Dmpi=auto)
      libprotobuf-c-dev protobuf-c-compiler python3-onnx)  # ONNX export: protoc-c on onnx.proto
if [ "${1:-}" = "--test" ]; then
    pkgs+=(darknet)   # its classification configs are parsed by the tests
    pkgs+=(clang)     # the libFuzzer targets (scripts/fuzz.sh)
    pkgs+=(python3-torch python3-torchvision python3-pil python3-numpy)  # test_torchvision's oracle
    # clang's runtime libraries (libclang_rt.fuzzer, .asan, .ubsan): --no-install-recommends
    # leaves them out, and the fuzz targets then do not link (Debian 12's clang is clang 14)
    pkgs+=(libclang-rt-14-dev)
    # pgrep/ps (tests/dist/test_mpi.sh): not in a minimal Debian (scripts/check-fresh.sh)
    pkgs+=(procps)
    pkgs+=(dataset-fashion-mnist)   # test_fashion_mnist converts and trains on a slice of it
    # ONNX Runtime (npm) checks the ONNX exporter. A machine whose Node.js comes from elsewhere
    # (NodeSource's nodejs package carries its own npm and conflicts with Debian's) keeps it.
    command -v npm >/dev/null || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" = "--test" ]; then
    "$(dirname "$0")/onnxruntime.sh" >/dev/null   # npm onnxruntime-node, into ~/.cache/gemmnet
fi
