#!/usr/bin/env bash
# The test command: set up (Debian packages, .venv) and run the whole test suite.
# Data: $QSNN_DATA_ROOT, default ../shared/data. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh
export QSNN_DATA_ROOT="${QSNN_DATA_ROOT:-$(cd .. && pwd)/shared/data}"
exec python -m pytest "$@"
