#!/usr/bin/env bash
# Set up the torch-free runtime and extract relations from an example text with the default model (models/).
# Extra arguments go to `glirel-runtime extract`, e.g. --text "..." --entities "Ada Lovelace:PER" "London:LOC" --labels ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh runtime
. .venv/bin/activate
glirel-runtime extract --threshold 0.3 --top-k 1 "$@"
