#!/usr/bin/env bash
# Set up the dev environment (.venv; once) and run the whole test suite. Some tests read the shared data
# at ../shared/data beside the checkout, or wherever GLIREL_ONNX_SHARED_DATA points.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
. "${VENV:-.venv}/bin/activate"
exec python -m pytest -q "$@"
