#!/usr/bin/env bash
# The main job: train -> convert -> build the firmware -> evaluate the test split on the
# emulated board (QEMU netduinoplus2, Cortex-M4; --port qemu:m0 for the nRF51822, Cortex-M0,
# qemu:m7 for the MPS2 AN500, Cortex-M7, qemu:rv32 for the SiFive FE310, RISC-V),
# or on a real board with --port PORT (flashed beforehand: see docs/firmware.md).
# Everything it makes goes to build/ (ignored); the committed default model is untouched.
#   scripts/main.sh [--epochs N] [--port PORT] [--limit N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EPOCHS=(); PORT=qemu; LIMIT=()
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS=(--epochs "$2"); shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --limit) LIMIT=(--limit "$2"); shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "main.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
. scripts/setup.sh
export QSNN_DATA_ROOT="${QSNN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
start=$(date +%s)
echo "== 1/4 train (CPU; defaults of qsnn-train unless --epochs) =="
python -m qsnnkit.train.cli "${EPOCHS[@]}" --out build/train
echo "== 2/4 convert =="
python -m qsnnkit.convert.cli build/train/model.safetensors --out build/model
case "$PORT" in
  qemu:m0) ENV=qemu_m0 ;;
  qemu:m7) ENV=qemu_m7 ;;
  qemu:rv32) ENV=qemu_rv32 ;;
  *) ENV=qemu_m4 ;;
esac
echo "== 3/4 build firmware (pio run -e $ENV, model build/model) =="
QSNN_MODEL_DIR="$PWD/build/model" pio run -e "$ENV" -d . -s
echo "== 4/4 evaluate on the device ($PORT) =="
python host/eval.py --port "$PORT" --model build/model/model.npz --split test "${LIMIT[@]}" --json build/eval.json
echo "main job: done in $(( $(date +%s) - start )) s; results in build/eval.json"
