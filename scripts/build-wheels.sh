#!/usr/bin/env bash
# Build the wheels of glirel-onnx and of its default model (packages/default-model) into dist/ (or $1).
# Offline: the build uses the current environment's setuptools (>= 77), no download.
# Install them anywhere:  pip install --find-links dist "glirel-onnx[default-model]"
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-dist}")"
mkdir -p "$out"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for project in . packages/default-model; do
    # build/ and egg-info go to a scratch folder, so no stale build/ of one project leaks into a wheel
    base="$scratch/$(basename "$(realpath "$project")")"
    printf '[build]\nbuild_base = %s/build\n[egg_info]\negg_base = %s\n' "$base" "$base" > "$scratch/setup.cfg"
    mkdir -p "$base"
    DIST_EXTRA_CONFIG="$scratch/setup.cfg" python -m pip wheel -q --no-deps --no-build-isolation -w "$out" "$project"
done
ls -1 "$out"/glirel_onnx*.whl
