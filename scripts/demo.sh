#!/usr/bin/env bash
# Extract relations with the default model in the torch-free runtime venv (.venv-runtime; set up on the first run).
# Arguments go to `glirel-runtime extract`:
#   --text "Apple was founded by Steve Jobs in Cupertino."          raw text: spaCy finds the entities
#   --text "..." --entities "Ada Lovelace:PERSON" "London:GPE"      your entities;  --labels ... your relations
# With none, a built-in example with given entities runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh runtime
exec "${VENV:-.venv-runtime}/bin/glirel-runtime" extract --top-k 1 "$@"
