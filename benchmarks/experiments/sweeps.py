"""Sweeps on the default encoder shape: entities per text, labels, and the runtime's intra-op threads."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from benchmarks import workloads as W
from benchmarks.experiments import log
from benchmarks.experiments.glirel_systems import running_systems, system_specs
from benchmarks.models import build_artifact, build_checkpoint
from benchmarks.systems import SystemProcess, SystemSpec, round_robin


def run_sweeps(args, group_kind: str, data_dir: Optional[Path], baseline_tmc_rate: Optional[float]) -> dict[str, Any]:
    cache = Path(args.cache_dir)
    checkpoint, _ = build_checkpoint(group_kind, cache, use_trained=not args.no_trained)
    artifacts = {v: build_artifact(group_kind, v, cache, not args.no_trained, log) for v in ("fp32", "int8")}
    specs = [s for s in system_specs(group_kind, args, checkpoint, artifacts)
             if s[0] in ("glirel (PyTorch)", "runtime fp32", "runtime int8", "runtime OpenVINO bf16")]
    sweeps: dict[str, Any] = {"entities": {}, "labels": {}, "texts_per_point": args.sweep_sentences,
                              "note": "TMC-BERT is estimated: measured seconds per sequence × pairs × labels"}
    kwargs = {"threshold": args.threshold, "batch_size": args.batch_size}
    with running_systems(specs, "sweep") as systems:
        for e in args.sweep_entities:
            wl = W.entity_sweep_workload(data_dir, e, args.sweep_sentences, m=10)
            timings = round_robin(systems, (wl.texts(), wl.labels, wl.ner()), kwargs, args.sweep_repeats)
            point = {"pairs_per_text": e * (e - 1), **{name: len(wl.sentences) / t["median_s"] for name, t in timings.items()}}
            if baseline_tmc_rate:
                point["TMC-BERT (all ordered pairs, estimated)"] = baseline_tmc_rate / (e * (e - 1) * 10)
            sweeps["entities"][e] = point
            log(f"[sweep] entities={e}: " + ", ".join(f"{k}={v:.2f}" for k, v in point.items() if isinstance(v, float)))
        base = W.fewrel_workload(data_dir, args.sweep_sentences * 4, m=10)
        for m in args.sweep_labels:
            wl = W.with_labels(base, m, data_dir)
            timings = round_robin(systems, (wl.texts(), wl.labels, wl.ner()), kwargs, args.sweep_repeats)
            point = {name: len(wl.sentences) / t["median_s"] for name, t in timings.items()}
            if baseline_tmc_rate:
                point["TMC-BERT (gold pairs, estimated)"] = baseline_tmc_rate / m
            sweeps["labels"][m] = point
            log(f"[sweep] labels={m}: " + ", ".join(f"{k}={v:.2f}" for k, v in point.items()))
    return sweeps


def thread_sweep(args, kind: str, workload: W.Workload) -> dict[str, Any]:
    """Runtime sentences/s per intra-op thread count (one process per setting)."""
    cache = Path(args.cache_dir)
    out = {}
    texts, ner = workload.texts()[:args.sentences], workload.ner()[:args.sentences]
    for variant, name in (("fp32", "runtime fp32"), ("int8", "runtime int8")):
        artifact, _ = build_artifact(kind, variant, cache, not args.no_trained, log)
        for threads in args.thread_counts:
            with SystemProcess(f"{name}, {threads} threads", SystemSpec("runtime", str(artifact), threads)) as system:
                timing = round_robin([system], (texts, workload.labels, ner), {"batch_size": args.batch_size}, args.repeats)
            out.setdefault(name, {})[threads] = len(texts) / timing[system.name]["median_s"]
            log(f"[threads] {name} threads={threads}: {out[name][threads]:.2f}")
    return out
