#!/usr/bin/env bash
# Create .venv and install the project. Usage: scripts/setup.sh [runtime|dev]
#   runtime: the torch-free runtime only (enough for the default model)
#   dev:     exporter, trainer, tests and the reference `glirel` (CPU torch 2.13.0 via constraints.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-dev}"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
if [ "$mode" = runtime ]; then
    pip install -q -c constraints.txt -e .
else
    pip install -q -c constraints.txt -e ".[test]"
    # the reference implementation, without its unpinned torch/datasets requirements
    pip install -q -c constraints.txt --no-deps glirel==1.2.1
fi
