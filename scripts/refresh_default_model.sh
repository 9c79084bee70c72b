#!/usr/bin/env bash
# Refresh a committed default model: train with the qsnn-train defaults (seed 0, 2 torch
# threads, CPU), convert, regenerate the C sources and the report.
#   scripts/refresh_default_model.sh                    # firmware/models/default (keywords)
#   scripts/refresh_default_model.sh --dataset nmnist   # firmware/models/nmnist (event camera)
# Extra arguments go to qsnn-train. The same seed and thread count on the same software give
# the same model hash on a CPU with the same vector extensions (the report's provenance.trained_on;
# scripts/main.sh trains the same way, into build/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=firmware/models/default; TRAIN=build/default_train
if [ "${1:-}" = "--dataset" ] && [ "${2:-}" = "nmnist" ]; then
  DIR=firmware/models/nmnist; TRAIN=build/nmnist_default_train
fi
. scripts/setup.sh
export QSNN_DATA_ROOT="${QSNN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
python -m qsnnkit.train.cli --seed 0 --out "$TRAIN" "$@"
mkdir -p "$DIR"
cp "$TRAIN/model.safetensors" "$DIR/model.safetensors"
python -m qsnnkit.convert.cli "$DIR/model.safetensors" --out "$DIR" --split val,test
echo "refreshed $DIR; review report.json, update its MODEL_CARD.md and commit"
