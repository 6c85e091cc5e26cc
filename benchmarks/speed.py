"""Throughput of glirel-onnx against glirel (PyTorch) and the paper's baselines (GLiREL paper, Table 3).

Usage (from the repository root):

    python -m benchmarks.speed                      # full CPU run (tens of minutes on 2 cores)
    python -m benchmarks.speed --models minilm --skip baselines sweeps breakdown threads  # the main table only
    python -m benchmarks.speed --tiny --repeats 1   # tiny shapes, seconds (the smoke test)

Writes ``speed.md`` (tables), ``speed.json`` and ``speed.png`` under ``--out``
(default ``benchmarks/results/``). Every system sees the same sentences (slow
systems a prefix of them: the table says how many); one warm-up pass, then
``--repeats`` timed passes, median reported. Sentences/s counts everything a
user pays for: tokenisation, batching, the model and decoding. The machine (CPU
model, instruction sets, library versions, load average) is recorded with the
figures, and a warning is printed when the load average is high: ratios measured
on a loaded machine overstate the runtime's lead.

The experiments live in `benchmarks.experiments` (one module each), the tables in
`benchmarks.report`. Baseline and DeBERTa-v3-shaped weights are randomly initialised
from configs with the real shapes (nothing is downloaded): speed only.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads as W  # noqa: E402
from benchmarks.experiments import log  # noqa: E402
from benchmarks.experiments.baseline_systems import run_baselines  # noqa: E402
from benchmarks.experiments.breakdown import run_breakdown  # noqa: E402
from benchmarks.experiments.glirel_systems import run_glirel_group  # noqa: E402
from benchmarks.experiments.sweeps import run_sweeps, thread_sweep  # noqa: E402
from benchmarks.machine import describe, high_load_warning, load_average, machine_info  # noqa: E402
from benchmarks.models import MODEL_TITLES, build_artifact  # noqa: E402
from benchmarks.report import markdown, plot, table_rows, targets  # noqa: E402

OPS_SHOWN = ("Attention", "MultiHeadAttention", "SkipLayerNormalization", "EmbedLayerNormalization", "LayerNormalization",
             "BiasGelu", "FastGelu", "Gelu", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "DynamicQuantizeLinear",
             "MatMulInteger", "FusedMatMul", "MatMul", "Softmax", "LSTM")


def training_processes() -> list[str]:
    """Command lines of running training jobs (they take the cores the figures need)."""
    try:
        out = subprocess.run(["pgrep", "-af", "glirel_export.train|glirel-train"], capture_output=True, text=True, timeout=5).stdout
    except Exception:
        return []
    return [line for line in out.splitlines() if line.strip() and "pgrep" not in line]


def gpu_note() -> Optional[str]:
    """Why the GPU rows are skipped, or None when onnxruntime has a GPU provider and a GPU is visible."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available and "TensorrtExecutionProvider" not in available:
        return (f"no GPU provider in this onnxruntime build ({available}): fp16 / CUDA / TensorRT rows skipped")
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return "onnxruntime has GPU providers but no GPU is visible (nvidia-smi failed): GPU rows skipped"
    except Exception:
        return "onnxruntime has GPU providers but no GPU is visible: GPU rows skipped"
    return None


def time_split_bound(path: Optional[str], machine: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The speed-up bound from `python -m benchmarks.time_split`'s output file, refused when it was measured on another CPU."""
    if not path:
        return None
    lines = [line for line in Path(path).read_text().splitlines() if line.strip().startswith("{")]
    summaries = [json.loads(line)["summary"] for line in lines if '"summary"' in line]
    if not summaries:
        raise SystemExit(f"--time-split {path}: no summary line (write it with: python -m benchmarks.time_split > {path})")
    summary = summaries[-1]
    if summary.get("machine", {}).get("cpu") != machine["cpu"]:
        raise SystemExit(f"--time-split {path} was measured on {summary.get('machine', {}).get('cpu')!r}, "
                         f"this machine is {machine['cpu']!r}: its bound does not apply here")
    return {**summary, "machine": describe(summary["machine"])}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks.speed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"), help="holds fewrel/val_wiki.json (else generated workloads)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--cache-dir", default="/tmp/glirel-speed-cache", help="checkpoints and exported artifacts (rebuilt when missing)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--thread-counts", type=int, nargs="*", default=None, help="thread sweep for the runtime (default 1..threads)")
    p.add_argument("--models", nargs="*", default=["minilm", "deberta-v3-base", "deberta-v3-large"])
    p.add_argument("--workloads", nargs="*", default=["fewrel", "wikizsl"])
    p.add_argument("--labels", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--sentences", type=int, default=256, help="sentences per workload for the default-size GLiREL systems")
    p.add_argument("--f1-sentences", type=int, default=512, help="FewRel-shaped sentences for int8 vs fp32 F1 and score agreement")
    p.add_argument("--large-sentences", type=int, default=32, help="sentences for the DeBERTa-v3-large shape")
    p.add_argument("--base-sentences", type=int, default=32, help="sentences for the DeBERTa-v3-base shape")
    p.add_argument("--baseline-sentences", type=int, default=64, help="RelationPrompt NG sentences; TMC-BERT takes 1/16 (gold) and 1/32 (all pairs), at least 2")
    p.add_argument("--reuse-from", default=None, help="a previous speed.json whose parts named by --reuse are taken instead of measured")
    p.add_argument("--reuse", nargs="*", default=[], help="parts to take from --reuse-from: baselines and/or model kinds (e.g. deberta-v3-large)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--large-repeats", type=int, default=3)
    p.add_argument("--baseline-repeats", type=int, default=2)
    p.add_argument("--finetune-steps", type=int, default=2)
    p.add_argument("--sweep-entities", type=int, nargs="*", default=[2, 5, 10, 20, 30, 50])
    p.add_argument("--sweep-labels", type=int, nargs="*", default=[1, 2, 5, 10, 20, 50])
    p.add_argument("--sweep-sentences", type=int, default=8)
    p.add_argument("--sweep-repeats", type=int, default=2)
    p.add_argument("--skip", nargs="*", default=[], choices=["baselines", "sweeps", "breakdown", "threads", "large"])
    p.add_argument("--lean", action="store_true", help="skip the ablation rows (the --optimize exports, no bucketing)")
    p.add_argument("--no-trained", action="store_true", help="ignore checkpoints/glirel-minilm-fewrel even if present")
    p.add_argument("--tiny", action="store_true", help="tiny shapes and few sentences (smoke test; numbers mean nothing)")
    p.add_argument("--gpu-only", action="store_true", help="only the GPU rows (runtime CUDA / TensorRT, glirel on CUDA): "
                                                          "what benchmarks/gpu_check.sh runs")
    p.add_argument("--no-tensorrt", dest="tensorrt", action="store_false", help="leave out the TensorRT row (its engine build takes minutes)")
    p.add_argument("--no-openvino", dest="openvino", action="store_false", help="leave out the OpenVINO rows even if openvino is installed")
    p.add_argument("--time-split", default=None, help="output of `python -m benchmarks.time_split` on this machine: adds the "
                                                      "ratio of the runtime's fp32 speed-up to this machine's bound")
    args = p.parse_args(argv)
    if args.tiny:
        args.models = ["tiny-bert"] if args.models == ["minilm", "deberta-v3-base", "deberta-v3-large"] else args.models
        args.sentences = min(args.sentences, 16)
        args.baseline_sentences = min(args.baseline_sentences, 8)
        args.sweep_entities = [2, 6] if args.sweep_entities == [2, 5, 10, 20, 30, 50] else args.sweep_entities
        args.sweep_labels = [1, 5] if args.sweep_labels == [1, 2, 5, 10, 20, 50] else args.sweep_labels
        args.sweep_sentences = min(args.sweep_sentences, 2)
        args.no_trained = True
        args.finetune_steps = 1
    if args.gpu_only:
        args.skip = sorted(set(args.skip) | {"baselines", "sweeps", "breakdown", "threads"})
        args.lean, args.openvino = True, False
    if "large" in args.skip:
        args.models = [m for m in args.models if m != "deberta-v3-large"]
    if args.thread_counts is None:
        args.thread_counts = sorted({1, args.threads})
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir) if args.data_dir else None
    if data_dir is not None and not (data_dir / "fewrel" / "val_wiki.json").is_file():
        log(f"no FewRel data under {data_dir}: generated workloads")
        data_dir = None
    command = "python -m benchmarks.speed " + " ".join(sys.argv[1:] if argv is None else argv)
    machine = machine_info()
    report: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": command.strip(),
        "machine": machine, "load_warning": high_load_warning(machine), "threads": args.threads, "thread_counts": args.thread_counts,
        "training_processes": training_processes(), "gpu_note": gpu_note(), "time_split_bound": time_split_bound(args.time_split, machine),
        "random_weights_note": "baselines and the DeBERTa-v3-large shape are randomly initialised with the real shapes (speed only)",
        "workloads": args.workloads, "batch_size": args.batch_size, "labels": args.labels,
    }
    log(f"machine: {describe(machine)}")
    if report["load_warning"]:
        log(f"WARNING: {report['load_warning']}")
    args.gpu = report["gpu_note"] is None
    if args.gpu_only and not args.gpu:
        raise SystemExit(f"--gpu-only: {report['gpu_note']}")
    if args.gpu:
        report["gpu_name"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip().splitlines()[0]
    if report["gpu_note"]:
        log(f"GPU: {report['gpu_note']}")
    n_workload = max(args.sentences, args.large_sentences, args.baseline_sentences, args.f1_sentences)
    builders = {"fewrel": W.fewrel_workload, "wikizsl": W.wikizsl_workload}
    workloads = {w: builders[w](data_dir, n_workload, m=args.labels) for w in args.workloads}
    report["workload_info"] = {w: {"source": wl.source, "stats": wl.stats, "labels": wl.labels} for w, wl in workloads.items()}
    for w, wl in workloads.items():
        log(f"workload {w}: {wl.source}; {wl.stats}")

    from benchmarks.ort_profile import op_histogram

    stage_started = time.perf_counter()
    stages: dict[str, float] = {}
    report["stage_seconds"] = stages

    def stage(name: str) -> None:
        nonlocal stage_started
        now = time.perf_counter()
        stages[name] = round(now - stage_started, 1)
        stage_started = now
        (out_dir / "speed.partial.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        log(f"-- {name}: {stages[name]} s")

    stage("workloads and imports")
    prior = json.loads(Path(args.reuse_from).read_text()) if args.reuse_from else None
    report["reused"] = {}
    reused_note = None if prior is None else {"from": args.reuse_from, "date": prior["date"],
                                              "machine": describe(prior["machine"]) if "isa" in prior.get("machine", {}) else None}
    report["glirel"] = []
    for kind in args.models:
        if prior is not None and kind in args.reuse:
            previous = [g for g in prior["glirel"] if g["kind"] == kind]
            if not previous:
                raise SystemExit(f"--reuse {kind}: not in {args.reuse_from}")
            report["glirel"].append(previous[0])
            report["reused"][kind] = reused_note
            log(f"[{kind}] reused from {args.reuse_from} ({prior['date']})")
            continue
        group = run_glirel_group(kind, args, workloads)
        group["ops"] = {}
        for v in group["artifacts"]:
            artifact, _ = build_artifact(kind, v, Path(args.cache_dir), not args.no_trained, log)
            hist = op_histogram(artifact / "model.onnx", args.threads)
            group["ops"][v] = {k: hist[k] for k in OPS_SHOWN if k in hist}
        report["glirel"].append(group)
        stage(f"glirel {kind}")
    if prior is not None and "baselines" in args.reuse:
        report["baselines"] = prior["baselines"]
        report["reused"]["baselines"] = reused_note
        log(f"[baselines] reused from {args.reuse_from} ({prior['date']})")
    elif "baselines" not in args.skip:
        report["baselines"] = run_baselines(args, workloads)
        stage("baselines")
    default_kind = args.models[0]
    if "threads" not in args.skip and len(args.thread_counts) > 1:
        report["threads_sweep"] = thread_sweep(args, default_kind, workloads[args.workloads[0]])
        stage("threads")
    if "sweeps" not in args.skip:
        tmc = report.get("baselines", {}).get("TMC-BERT (gold pairs)", {}).get("rows", {}).get(args.workloads[0])
        tmc_seq_rate = tmc["sentences_per_s"] * tmc["sequences_per_sentence"] if tmc else None  # sequences/s
        report["sweeps"] = run_sweeps(args, default_kind, data_dir, tmc_seq_rate)
        report["sweeps"]["group"] = MODEL_TITLES.get(default_kind, default_kind)
        stage("sweeps")
    if "breakdown" not in args.skip:
        report["breakdown"] = run_breakdown(args, default_kind, data_dir)
        stage("breakdown")
    report["load_after"] = load_average()
    report["training_processes_after"] = training_processes()
    report["targets"] = targets(report)
    report["table"] = table_rows(report)
    (out_dir / "speed.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    md = markdown(report)
    (out_dir / "speed.md").write_text(md)
    note = plot(report, out_dir / "speed.png")
    if note:
        log(note)
    print(md)
    log(f"wrote {out_dir / 'speed.json'}, {out_dir / 'speed.md'}" + ("" if note else f", {out_dir / 'speed.png'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
