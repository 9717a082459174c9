#!/usr/bin/env bash
# Fashion-MNIST, a real data set: installs Debian's dataset-fashion-mnist (and what gemmnet
# needs), builds gemmnet, converts the IDX files into JPEG class folders with
# `gemmnet import-idx` (data/fashion-mnist/train: the 60,000 training images, .../val: the
# 10,000 test images; files already converted are skipped), and trains
# configs/fashion-mnist.cfg. The last line is gemmnet's `final:` line (top1= is test accuracy).
#
# usage: scripts/fashion-mnist.sh [--config CFG] [--data DIR] [--out DIR]
#                                 [--limit-train N] [--limit-val N] [--prepare-only]
#                                 [-- TRAIN-ARGS...]
#   --config CFG      default configs/fashion-mnist.cfg (configs/fashion-mnist-long.cfg: the
#                     longer recipe)
#   --data DIR        where the JPEG folders go (default data/fashion-mnist)
#   --out DIR         the run directory (default runs/<config name>)
#   --limit-*         convert only the first N images of each split (a quick check; the test
#                     suite uses it)
#   --prepare-only    convert, do not train (scripts/fashion-mnist-vs-pytorch uses it)
#   TRAIN-ARGS        passed to gemmnet train (e.g. --threads 2, --resume auto, --set ...)
# With GEMMNET=path/to/gemmnet set, nothing is installed or built.
set -euo pipefail
cd "$(dirname "$0")/.."
config=configs/fashion-mnist.cfg data=data/fashion-mnist out="" lim_train="" lim_val="" prepare=0
while [ $# -gt 0 ]; do
    case "$1" in
    --config) config=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --limit-train) lim_train=$2; shift 2 ;;
    --limit-val) lim_val=$2; shift 2 ;;
    --prepare-only) prepare=1; shift ;;
    --) shift; break ;;
    *) echo "fashion-mnist.sh: unknown argument $1 (see the top of the script)" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || out=runs/$(basename "$config" .cfg)

src=/usr/share/datasets/fashion-mnist
readme=/usr/share/doc/dataset-fashion-mnist/README.md.gz
if [ -z "${GEMMNET:-}" ]; then
    scripts/deps.sh
    if ! dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "install ok installed"; then
        sudo_cmd=""
        [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends dataset-fashion-mnist
    fi
    [ -f build/build.ninja ] || meson setup build
    ninja -C build
    GEMMNET=build/gemmnet
fi
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$src/$f.gz" ] || { echo "fashion-mnist.sh: $src/$f.gz is missing (package dataset-fashion-mnist)" >&2; exit 1; }
done

# The class names, in label order, from the data set's README ("| 0 | T-shirt/top |" ...).
mkdir -p "$data"
names="$data/classes.txt"
if [ -f "$readme" ]; then
    zcat "$readme" | sed -n '/^### Labels/,/^##[^#]/s/^| *\([0-9]\+\) *| *\(.*[^ ]\) *|$/\2/p' > "$names.tmp"
fi
if [ "$(wc -l < "$names.tmp" 2>/dev/null || echo 0)" -ne 10 ]; then
    # the README's table as of the Debian package 0.0~git20200523
    printf '%s\n' "T-shirt/top" Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag "Ankle boot" > "$names.tmp"
fi
mv "$names.tmp" "$names"

"$GEMMNET" import-idx "$src/train-images-idx3-ubyte.gz" "$src/train-labels-idx1-ubyte.gz" \
    "$data/train" --names "$names" ${lim_train:+--limit "$lim_train"}
"$GEMMNET" import-idx "$src/t10k-images-idx3-ubyte.gz" "$src/t10k-labels-idx1-ubyte.gz" \
    "$data/val" --names "$names" ${lim_val:+--limit "$lim_val"}
[ $prepare = 1 ] && exit 0

# the data paths in the config are relative to it; --data moves them
exec "$GEMMNET" train "$config" --set "data.train=$(realpath "$data/train")" \
    --set "data.val=$(realpath "$data/val")" --out "$out" "$@"
