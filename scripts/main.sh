#!/usr/bin/env bash
# The main job: train -> convert -> build the firmware -> evaluate the test split on the
# emulated board (QEMU netduinoplus2, Cortex-M4; --port qemu:m0 for the nRF51822, Cortex-M0,
# qemu:m7 for the MPS2 AN500, Cortex-M7, qemu:rv32 for the SiFive FE310, RISC-V, qemu:lx106
# for the Xtensa lx106), or on a real board with --port PORT (flashed beforehand with
# build/model: see docs/firmware.md). --dataset nmnist does the same for the event-camera
# digits (N-MNIST: events -> C binner -> network), --dataset fsdd for spoken digits (FSDD:
# 8 kHz recordings resampled and centred in 1 s, the keyword spotter's front end). Everything
# it makes goes to build/ (ignored); the committed models are untouched. --hidden-bits 4
# trains the wider keyword spotter (4-bit hidden weights: more accurate, about twice the
# network instructions and three times the weight bytes; README, "Which keyword model").
#   scripts/main.sh [--dataset speech_commands|fsdd|nmnist] [--epochs N] [--hidden-bits 1|2|4|8]
#                   [--port PORT] [--limit N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EPOCHS=(); PORT=qemu; LIMIT=(); DATASET=speech_commands; BITS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dataset) DATASET="$2"; shift 2 ;;
    --epochs) EPOCHS=(--epochs "$2"); shift 2 ;;
    --hidden-bits) BITS=(--hidden-bits "$2"); shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --limit) LIMIT=(--limit "$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "main.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$DATASET" in
  speech_commands) OUT=build ;;
  nmnist) OUT=build/nmnist ;;
  fsdd) OUT=build/fsdd ;;
  *) echo "main.sh: --dataset must be speech_commands, fsdd or nmnist, got $DATASET" >&2; exit 2 ;;
esac
. scripts/setup.sh
export QSNN_DATA_ROOT="${QSNN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
start=$(date +%s)
echo "== 1/4 train $DATASET (CPU; defaults of qsnn-train unless --epochs / --hidden-bits) =="
python -m qsnnkit.train.cli --dataset "$DATASET" "${BITS[@]}" "${EPOCHS[@]}" --out "$OUT/train"
echo "== 2/4 convert =="
python -m qsnnkit.convert.cli "$OUT/train/model.safetensors" --out "$OUT/model"
case "$PORT" in
  qemu|qemu:*)
    echo "== 3/4 build the firmware for $OUT/model ($PORT; reused from the build cache when unchanged) =="
    python -m qsnnkit.host.build --model "$OUT/model/model.npz" --port "$PORT" ;;
  *)
    echo "== 3/4 build: $PORT is a real board; it must run firmware built with $OUT/model" \
         "(QSNN_MODEL_DIR=$PWD/$OUT/model pio run -e <env> -t upload) =="
    ;;
esac
echo "== 4/4 evaluate on the device ($PORT) =="
python host/eval.py --port "$PORT" --model "$OUT/model/model.npz" --split test "${LIMIT[@]}" --json "$OUT/eval.json"
echo "main job: done in $(( $(date +%s) - start )) s; results in $OUT/eval.json"
