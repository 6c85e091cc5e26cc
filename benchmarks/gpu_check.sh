#!/usr/bin/env bash
# The GPU rows of the speed table on a machine with an NVIDIA GPU and torch but no onnxruntime-gpu
# and no network: installs wheels carried with the checkout, then runs `benchmarks.speed --gpu-only`
# (runtime CUDA fp32 / fp16 with and without IO binding, glirel on CUDA; MiniLM and the DeBERTa-v3-large
# shape) within a time limit, and writes the table to a file.
#
# Usage (from the repository root):
#
#   bash benchmarks/gpu_check.sh prepare [WHEEL_DIR]    # on a machine with network: download + split the wheels
#   bash benchmarks/gpu_check.sh [options]               # on the GPU machine
#
# Options:
#   --wheels DIR     wheels, or wheel parts NAME.whl.part-NN (+ NAME.whl.sha256), to install (default: shared/wheels)
#   --out FILE       where the table goes (default: benchmarks/results/gpu/speed.md; JSON beside it)
#   --limit SECONDS  wall-clock limit for the benchmark itself (default: 540)
#   --tensorrt       add the TensorRT row (its engine build can take minutes for the large shape)
#   --dry-run        check this script, the wheel parts and the benchmark's arguments; install and run nothing
#
# Large wheels are carried in parts (split -b 40M -d) because file transfers have a size limit;
# `prepare` writes them, and this script joins them again and checks their SHA-256 before installing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python}"
WHEELS="shared/wheels"
OUT="benchmarks/results/gpu/speed.md"
LIMIT=540
DRY_RUN=0
TENSORRT_FLAG="--no-tensorrt"
PART_SIZE="40M"

say() { echo "[gpu_check] $*" >&2; }
run() { if [ "$DRY_RUN" = 1 ]; then say "would run: $*"; else say "running: $*"; "$@"; fi; }

if [ "${1:-}" = "prepare" ]; then
    DIR="${2:-$WHEELS}"
    mkdir -p "$DIR"
    ORT_VERSION="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("onnxruntime"))')"
    say "downloading onnxruntime-gpu==$ORT_VERSION into $DIR"
    "$PYTHON" -m pip download --no-deps --only-binary=:all: -d "$DIR" "onnxruntime-gpu==$ORT_VERSION"
    for wheel in "$DIR"/*.whl; do
        sha256sum "$wheel" | awk '{print $1}' > "$wheel.sha256"
        split -b "$PART_SIZE" -d "$wheel" "$wheel.part-"
        rm "$wheel"
        say "split $(basename "$wheel") into $(ls "$wheel".part-* | wc -l) parts"
    done
    exit 0
fi

while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) WHEELS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --limit) LIMIT="$2"; shift 2 ;;
        --tensorrt) TENSORRT_FLAG=""; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) say "unknown option $1"; exit 2 ;;
    esac
done

OUT_DIR="$(dirname "$OUT")"
SPEED_ARGS=(--gpu-only --models minilm deberta-v3-large --workloads fewrel wikizsl --sentences 256 --large-sentences 64
            --repeats 3 --large-repeats 3 --out "$OUT_DIR" $TENSORRT_FLAG)

# 1. the GPU
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
    say "GPU: $(nvidia-smi -L | head -n 1)"
elif [ "$DRY_RUN" = 1 ]; then
    say "no GPU visible (dry run: continuing)"
else
    say "no GPU visible (nvidia-smi -L failed): nothing to measure"; exit 1
fi

# 2. join the wheel parts, check them, install them
STAGING="$(mktemp -d)"
trap 'rm -rf "$STAGING"' EXIT
shopt -s nullglob
parts=("$WHEELS"/*.whl.part-*)
wheels=("$WHEELS"/*.whl)
declare -A joined=()
for part in "${parts[@]}"; do
    joined["${part%.part-*}"]=1
done
for wheel in "${!joined[@]}"; do
    target="$STAGING/$(basename "$wheel")"
    cat $(printf '%s\n' "$wheel".part-* | sort) > "$target"
    if [ -f "$wheel.sha256" ]; then
        if [ "$(sha256sum "$target" | awk '{print $1}')" != "$(cat "$wheel.sha256")" ]; then
            say "$(basename "$wheel"): SHA-256 does not match $wheel.sha256 (a part is missing or damaged)"; exit 1
        fi
        say "$(basename "$wheel"): joined from $(ls "$wheel".part-* | wc -l) parts, SHA-256 ok"
    else
        say "$(basename "$wheel"): joined from $(ls "$wheel".part-* | wc -l) parts (no .sha256 to check against)"
    fi
done
for wheel in "${wheels[@]}"; do
    cp "$wheel" "$STAGING/"
done
staged=("$STAGING"/*.whl)
if [ ${#staged[@]} -eq 0 ]; then
    say "no wheels under $WHEELS: expecting onnxruntime-gpu to be installed already"
else
    say "wheels: $(for w in "${staged[@]}"; do basename "$w"; done | tr '\n' ' ')"
    if printf '%s\n' "${staged[@]}" | grep -q 'onnxruntime_gpu'; then
        run "$PYTHON" -m pip uninstall -y onnxruntime  # the CPU build shadows the GPU one
    fi
    run "$PYTHON" -m pip install --no-index --find-links "$STAGING" "${staged[@]}"
fi
if [ "$DRY_RUN" = 0 ]; then
    "$PYTHON" -c 'import onnxruntime as ort, sys
providers = ort.get_available_providers()
print("[gpu_check] onnxruntime", ort.__version__, providers, file=sys.stderr)
sys.exit(0 if "CUDAExecutionProvider" in providers else "onnxruntime has no CUDAExecutionProvider: install onnxruntime-gpu")'
fi

# 3. the benchmark, within the limit; its partial results stay in $OUT_DIR if the limit is hit
mkdir -p "$OUT_DIR"
if [ "$DRY_RUN" = 1 ]; then
    "$PYTHON" -c 'import sys; from benchmarks.speed import parse_args; a = parse_args(sys.argv[1:]); print("[gpu_check] benchmark arguments ok:", a.models, a.workloads, "skip", a.skip, file=sys.stderr)' "${SPEED_ARGS[@]}"
    say "would run: timeout $LIMIT $PYTHON -m benchmarks.speed ${SPEED_ARGS[*]}"
    say "dry run done"
    exit 0
fi
started=$(date +%s)
status=0
timeout "$LIMIT" "$PYTHON" -m benchmarks.speed "${SPEED_ARGS[@]}" || status=$?
say "benchmark finished in $(( $(date +%s) - started )) s with status $status"
if [ -f "$OUT_DIR/speed.md" ] && [ "$status" = 0 ]; then
    [ "$OUT_DIR/speed.md" -ef "$OUT" ] || cp "$OUT_DIR/speed.md" "$OUT"
    say "table: $OUT (JSON: $OUT_DIR/speed.json)"
elif [ -f "$OUT_DIR/speed.partial.json" ]; then
    say "the limit of $LIMIT s was hit or the run failed: partial results in $OUT_DIR/speed.partial.json"
    exit 1
else
    exit 1
fi
