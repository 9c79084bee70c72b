#!/usr/bin/env bash
# Refresh the committed default model in firmware/models/default: train with the default
# settings (seed 0, 1 thread, CPU), convert, regenerate the C sources and the report.
# Same seed and thread count on the same software give the same model hash.
#   scripts/refresh_default_model.sh [extra qsnn-train arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
export QSNN_DATA_ROOT="${QSNN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
python -m qsnnkit.train.cli --seed 0 --threads 1 --out build/default_train "$@"
mkdir -p firmware/models/default
cp build/default_train/model.safetensors firmware/models/default/model.safetensors
python -m qsnnkit.convert.cli firmware/models/default/model.safetensors --out firmware/models/default
echo "refreshed firmware/models/default; review report.json and commit"
