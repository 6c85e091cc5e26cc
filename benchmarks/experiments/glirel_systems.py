"""glirel (PyTorch) and the runtime's variants on the same sentences, each in its own process, round-robin.

Rows for one encoder shape: glirel, runtime fp32 / int8 (onnxruntime, plain exports), OpenVINO
bf16 / f32 / bf16 on two streams on the fp32 export when the `openvino` package is installed, the
ablations (the `--optimize` exports, no bucketing, no thread spinning) unless lean, and the GPU rows
when a GPU is visible. After timing, the pair scores of each variant give int8 / OpenVINO agreement
with fp32 and FewRel macro-F1.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

from benchmarks import systems as systems_module
from benchmarks import workloads as W
from benchmarks.agreement import fewrel_f1, identical_pct, score_agreement
from benchmarks.experiments import log
from benchmarks.machine import load_average
from benchmarks.models import MODEL_TITLES, build_artifact, build_checkpoint
from benchmarks.systems import SystemProcess, SystemSpec, round_robin, runtime_model

OPTIONAL_ROW_MARKS = ("[GPU", "OpenVINO")
"""Rows whose worker may fail to start on a given machine (missing provider or package): left out with a log line."""
OPENVINO_ROWS = {"runtime OpenVINO bf16": "bf16", "runtime OpenVINO f32": "f32"}
OPENVINO_STREAMS_ROW = "runtime OpenVINO bf16, 2 streams"
"""bf16 with `("openvino", {"streams": 2})`: a call's batches two at a time on throughput streams."""


def openvino_installed() -> bool:
    from glirel_runtime.engines import openvino_available

    return openvino_available()


def system_specs(kind: str, args, checkpoint: Path, artifacts: dict[str, tuple[Path, dict]]) -> list[tuple[str, SystemSpec]]:
    """(row name, what its worker loads) for one encoder shape; only variants present in `artifacts`."""
    t = args.threads
    fp32 = str(artifacts["fp32"][0])
    specs = [("glirel (PyTorch)", SystemSpec("glirel", str(checkpoint), t)),
             ("runtime fp32", SystemSpec("runtime", fp32, t))]
    if "fp32-opt" in artifacts:
        specs += [("runtime fp32, --optimize", SystemSpec("runtime", str(artifacts["fp32-opt"][0]), t)),
                  ("runtime fp32, no bucketing", SystemSpec("runtime", fp32, t, {"bucketing": False})),
                  ("runtime fp32, no thread spinning", SystemSpec("runtime", fp32, t, {"spinning": False}))]
    specs.append(("runtime int8", SystemSpec("runtime", str(artifacts["int8"][0]), t)))
    if "int8-opt" in artifacts:
        specs.append(("runtime int8, --optimize", SystemSpec("runtime", str(artifacts["int8-opt"][0]), t)))
    if getattr(args, "openvino", True) and openvino_installed():
        specs += [(name, SystemSpec("runtime", fp32, t, {"providers": "openvino", "precision": precision}))
                  for name, precision in OPENVINO_ROWS.items()]
        specs.append((OPENVINO_STREAMS_ROW, SystemSpec("runtime", fp32, t, {"providers": "openvino", "precision": "bf16",
                                                                           "openvino_streams": 2})))
    if getattr(args, "gpu_only", False):
        specs = []
    if "fp16" in artifacts:
        specs += [("glirel (PyTorch) [GPU]", SystemSpec("glirel", str(checkpoint), t, {"device": "cuda"})),
                  ("runtime fp32 [GPU, CUDA]", SystemSpec("runtime", fp32, t, {"providers": "cuda"})),
                  ("runtime fp16 [GPU, CUDA]", SystemSpec("runtime", str(artifacts["fp16"][0]), t, {"providers": "cuda"})),
                  ("runtime fp16 [GPU, CUDA, no IO binding]",
                   SystemSpec("runtime", str(artifacts["fp16"][0]), t, {"providers": "cuda", "io_binding": False}))]
        if getattr(args, "tensorrt", True):  # TensorRT builds its engines on first use: minutes for the large shapes
            specs.append(("runtime fp16 [GPU, TensorRT]", SystemSpec("runtime", str(artifacts["fp16"][0]), t, {"providers": "tensorrt"})))
    return specs


@contextmanager
def running_systems(specs: list[tuple[str, SystemSpec]], tag: str) -> Iterator[list[SystemProcess]]:
    """Each system loaded in its own worker process; every worker is closed on leaving the block.

    A GPU or OpenVINO row whose worker cannot start (its provider or package missing, or the
    engine falling back to another one) is left out with a log line; any other failure stops the run.
    """
    with ExitStack() as stack:
        systems = []
        for name, spec in specs:
            log(f"[{tag}] loading {name} (own process)")
            try:
                systems.append(stack.enter_context(SystemProcess(name, spec)))
            except RuntimeError as error:
                if not any(mark in name for mark in OPTIONAL_ROW_MARKS):
                    raise
                log(f"[{tag}] {name}: row left out, the worker failed: {str(error).strip().splitlines()[-1]}")
        yield systems


def run_glirel_group(kind: str, args, workloads: dict[str, W.Workload]) -> dict[str, Any]:
    """Reference + runtime variants for one encoder shape, each in its own process, round-robin on every workload."""
    cache = Path(args.cache_dir)
    deberta_shape = kind.startswith("deberta-v3-")  # random weights, slow: fewer sentences, lean variants
    n = {"deberta-v3-large": args.large_sentences, "deberta-v3-base": args.base_sentences}.get(kind, args.sentences)
    repeats = args.large_repeats if deberta_shape else args.repeats
    checkpoint, note = build_checkpoint(kind, cache, use_trained=not args.no_trained)
    variants = ["fp32", "int8"] if (deberta_shape or args.lean) else ["fp32", "fp32-opt", "int8", "int8-opt"]
    if args.gpu:
        variants = ["fp32", "fp16"] if getattr(args, "gpu_only", False) else variants + ["fp16"]
    artifacts = {v: build_artifact(kind, v, cache, use_trained=not args.no_trained, log=log) for v in variants}
    group: dict[str, Any] = {"kind": kind, "title": MODEL_TITLES.get(kind, kind), "checkpoint_note": note,
                             "artifacts": {v: info for v, (_, info) in artifacts.items()}, "systems": {},
                             "isolation": "one process per system, round-robin, "
                                          f"{systems_module.PAUSE_S} s pause between calls; time measured inside the worker"}
    with running_systems(system_specs(kind, args, checkpoint, artifacts), kind) as systems:
        relations: dict[str, dict[str, set]] = {s.name: {} for s in systems}
        for wname, workload in workloads.items():
            texts, ner = workload.texts()[:n], workload.ner()[:n]
            # warm-up on the timed sentences themselves: onnxruntime's arena and PyTorch's allocator
            # grow to the largest batch during the first pass, which would otherwise land in a timed pass
            timings = round_robin(systems, (texts, workload.labels, ner), {"threshold": args.threshold, "batch_size": args.batch_size},
                                  repeats, load_average=lambda: load_average()[0])
            for name, t in timings.items():
                relations[name][wname] = set(t["relations"])
                group["systems"].setdefault(name, {})[wname] = {
                    "sentences": len(texts), "repeats": repeats, "seconds": t["seconds"], "median_s": t["median_s"],
                    "sentences_per_s": len(texts) / t["median_s"], "best_sentences_per_s": len(texts) / min(t["seconds"]),
                    "load_avg_1min": t["load_avg_1min"]}
                log(f"    [{kind}] {name} / {wname}: {len(texts) / t['median_s']:.2f} sentences/s (n={len(texts)})")
    if getattr(args, "gpu_only", False):
        group["agreement"] = gpu_agreement(workloads, relations)
    else:
        group["agreement"] = agreement(kind, args, workloads, artifacts, relations, n if deberta_shape else args.f1_sentences,
                                       group["artifacts"]["int8"].get("trained"))
    return group


def gpu_agreement(workloads: dict[str, W.Workload], relations: dict[str, dict[str, set]]) -> dict[str, Any]:
    """Relations of each runtime GPU row identical to glirel's on the GPU (%), per workload."""
    reference = relations.get("glirel (PyTorch) [GPU]")
    if reference is None:
        return {}
    return {w: {"gpu_relations_identical_to_glirel_gpu_pct": {name: identical_pct(reference[w], r[w]) for name, r in relations.items()
                                                              if name.startswith("runtime") and "[GPU" in name}}
            for w in workloads}


def agreement(kind: str, args, workloads: dict[str, W.Workload], artifacts: dict[str, tuple[Path, dict]],
              relations: dict[str, dict[str, set]], checked: int, trained: bool) -> dict[str, Any]:
    """Relations each variant predicted vs fp32's, pair-score agreement with fp32 and FewRel macro-F1 per variant."""
    out: dict[str, Any] = {}
    for wname in workloads:
        a = relations["runtime fp32"][wname]
        out[wname] = {"fp32_relations": len(a), "fp32_vs_reference_identical_pct": identical_pct(a, relations["glirel (PyTorch)"][wname]),
                      "relations_identical_to_fp32_pct": {name: identical_pct(a, r[wname]) for name, r in relations.items()
                                                          if name.startswith("runtime") and name != "runtime fp32" and "[GPU" not in name}}
    # pair scores of each variant, computed once and shared by the score agreement and the F1
    # (the DeBERTa shapes are slow and untrained: `checked` is their timed sentences only)
    runs = {v: (artifacts[v][0], "cpu", "auto", None) for v in ("fp32", "int8", "int8-opt") if v in artifacts}
    if getattr(args, "openvino", True) and openvino_installed():
        runs.update({f"openvino-{p}": (artifacts["fp32"][0], "openvino", p, None) for p in OPENVINO_ROWS.values()})
        runs["openvino-bf16-2streams"] = (artifacts["fp32"][0], "openvino", "bf16", 2)
    scores: dict[str, dict[str, list]] = {}
    for v, (artifact, providers, precision, streams) in runs.items():
        try:
            model = runtime_model(artifact, args.threads, providers, precision, openvino_streams=streams)
        except RuntimeError as error:
            log(f"[{kind}] {v}: no scores, {error}")
            continue
        scores[v] = {wname: model.score_pairs(wl.texts()[:checked], wl.labels, wl.ner()[:checked]) for wname, wl in workloads.items()}
        del model
    for wname in workloads:
        out[wname]["scores_vs_fp32"] = {v: score_agreement(scores["fp32"][wname], s[wname])
                                        for v, s in scores.items() if v != "fp32"}
    if "fewrel" in workloads:
        out["fewrel_macro_f1"] = {"by_variant": {v: fewrel_f1(s["fewrel"], workloads["fewrel"]) for v, s in scores.items()},
                                  "trained_weights": bool(trained), "sentences": len(scores["fp32"]["fewrel"])}
    return out
