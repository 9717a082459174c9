#!/usr/bin/env bash
# Fine-tuning under mpirun with 3 ranks and sync_bn=1: the frozen layer's weights and batch-norm
# running statistics come out bit-identical (averaging equal values over 3 ranks need not give
# the same bits, so frozen statistics are left out of sync_bn), the trained layer changes.
# Skipped (77) when gemmnet was built without MPI or mpirun is missing.
set -uo pipefail
G=${GEMMNET:?}
C=${CKPT_COMPARE:?}
[ "${GN_MPI:-0}" = 1 ] || { echo "gemmnet built without MPI: skipped"; exit 77; }
command -v mpirun >/dev/null || { echo "no mpirun: skipped"; exit 77; }
export OMPI_MCA_plm_rsh_agent=
export OMPI_MCA_btl_vader_single_copy_mechanism=none
here=$(cd "$(dirname "$0")/../train" && pwd)
source "$here/small_run.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
small_run "$tmp" 1 0 0 0 || { echo "setup failed"; exit 1; }
"$G" train "$tmp/t.cfg" --out "$tmp/init" >/dev/null || { echo "initial run failed"; exit 1; }
mpirun --allow-run-as-root --oversubscribe -np 3 "$G" train "$tmp/t.cfg" \
    --weights "$tmp/init/last.safetensors" --set train.freeze=1 --set train.sync_bn=1 \
    --set train.batch_per_rank=1 --set net.subdivisions=1 --set net.max_batches=6 \
    --set eval.every=3 --out "$tmp/mp" >"$tmp/mp.log" 2>&1
check '[ $? = 0 ]' "3-rank fine-tuning run"
check '"$C" "$tmp/init/last.safetensors" "$tmp/mp/last.safetensors" 0 layers.0. >/dev/null' \
    "frozen layer 0 (weights and running statistics) bit-identical"
check '! "$C" "$tmp/init/last.safetensors" "$tmp/mp/last.safetensors" 0 layers.2. >/dev/null' \
    "the head changed"
exit $fail
