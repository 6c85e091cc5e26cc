#!/usr/bin/env bash
# Create a venv and install the project into it, once. Usage: scripts/setup.sh [runtime|dev]
#   runtime: .venv-runtime: the torch-free runtime and spaCy's English pipeline for raw text (what demo.sh runs)
#   dev:     .venv: exporter, trainer, tests and the reference `glirel` (CPU torch 2.13.0 via constraints.txt)
# VENV=path puts the venv elsewhere. A stamp in the venv holds a hash of pyproject.toml, constraints.txt,
# this script, the mode and the checkout's path: when it matches, nothing is done (delete it to force a reinstall).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-dev}"
case "$mode" in
    runtime) venv="${VENV:-.venv-runtime}"; target=".[ner]" ;;
    dev) venv="${VENV:-.venv}"; target=".[test]" ;;
    *) echo "usage: scripts/setup.sh [runtime|dev]" >&2; exit 2 ;;
esac
stamp="$venv/.glirel-onnx-setup"
inputs="$mode $(pwd) $(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
    exit 0
fi
echo "setup.sh: installing the $mode environment into $venv (once; later calls check a stamp and return)" >&2
python3 -m venv "$venv"
echo '*' > "$venv/.gitignore"   # the venv ignores itself
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install -q --upgrade pip "setuptools>=77"
# setuptools announces every editable install with a warning: not ours to act on
PYTHONWARNINGS="ignore:Editable installation" "${pip[@]}" install -q -c constraints.txt -e "$target"
if [ "$mode" = dev ]; then
    # the reference implementation, without its unpinned torch/datasets requirements
    "${pip[@]}" install -q -c constraints.txt --no-deps glirel==1.2.1
fi
echo "$inputs" > "$stamp"
