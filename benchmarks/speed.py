"""Throughput of glirel-onnx against glirel (PyTorch) and the paper's baselines (GLiREL paper, Table 3).

Usage (from the repository root):

    python -m benchmarks.speed                      # full CPU run (tens of minutes on 2 cores)
    python -m benchmarks.speed --tiny --repeats 1   # tiny shapes, seconds (the smoke test)

Writes ``speed.md`` (tables), ``speed.json`` and ``speed.png`` under ``--out``
(default ``benchmarks/results/``). Every system sees the same sentences (slow
systems a prefix of them: the table says how many); one warm-up pass, then
``--repeats`` timed passes, median reported. Sentences/s counts everything a
user pays for: tokenisation, batching, the model and decoding.

Baseline and DeBERTa-v3-large-shaped weights are randomly initialised from
configs with the real shapes (nothing is downloaded): speed only.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import systems as systems_module  # noqa: E402
from benchmarks import workloads as W  # noqa: E402
from benchmarks.models import build_artifact, build_checkpoint  # noqa: E402
from benchmarks.systems import SystemProcess, SystemSpec, round_robin  # noqa: E402

FEWREL_TEST_SENTENCES_PER_LABEL = 700  # FewRel: 700 sentences per relation
WIKIZSL_TEST_SENTENCES_PER_LABEL = 835  # Wiki-ZSL: 94,383 sentences / 113 relations
MODEL_TITLES = {"minilm": "MiniLM-L6 (default model's encoder)", "deberta-v3-large": "DeBERTa-v3-large shape (paper's model)",
                "deberta-v3-base": "DeBERTa-v3-base shape (BART-base's size)",
                "tiny-bert": "tiny BERT", "tiny-deberta": "tiny DeBERTa"}


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def training_processes() -> list[str]:
    try:
        out = subprocess.run(["pgrep", "-af", "glirel_export.train|glirel-train"], capture_output=True, text=True, timeout=5).stdout
    except Exception:
        return []
    return [line for line in out.splitlines() if line.strip() and "pgrep" not in line]


def timed(fn: Callable[[], Any], sentences: int, repeats: int, warmup: Optional[Callable[[], Any]] = None) -> dict[str, Any]:
    """Run `warmup` (or `fn`) once, then `fn` `repeats` times; median sentences/s."""
    (warmup or fn)()
    times, loads = [], []
    for _ in range(repeats):
        loads.append(load_average())
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {"sentences": sentences, "repeats": repeats, "seconds": times, "median_s": median,
            "sentences_per_s": sentences / median, "load_avg_1min": loads}


# --------------------------------------------------------------------------- GLiREL systems

def system_specs(kind: str, args, checkpoint: Path, artifacts: dict[str, tuple[Path, dict]]) -> list[tuple[str, SystemSpec]]:
    """(row name, what its worker loads) for one encoder shape; only variants present in `artifacts`."""
    t = args.threads
    specs = [("glirel (PyTorch)", SystemSpec("glirel", str(checkpoint), t)),
             ("runtime fp32", SystemSpec("runtime", str(artifacts["fp32-opt"][0]), t))]
    if "fp32" in artifacts:
        specs += [("runtime fp32, no --optimize", SystemSpec("runtime", str(artifacts["fp32"][0]), t)),
                  ("runtime fp32, no bucketing", SystemSpec("runtime", str(artifacts["fp32-opt"][0]), t, {"bucketing": False})),
                  ("runtime fp32, no thread spinning (experiment)",
                   SystemSpec("runtime", str(artifacts["fp32-opt"][0]), t, {"spinning": False}))]
    specs.append(("runtime int8", SystemSpec("runtime", str(artifacts["int8"][0]), t)))
    if "int8-unfused" in artifacts:
        specs.append(("runtime int8, no --optimize", SystemSpec("runtime", str(artifacts["int8-unfused"][0]), t)))
    if "fp16" in artifacts:  # GPU rows: never run yet (no GPU with onnxruntime-gpu has been available; docs/speed.md)
        specs += [("glirel (PyTorch) [GPU]", SystemSpec("glirel", str(checkpoint), t, {"device": "cuda"})),
                  ("runtime fp32 [GPU, CUDA]", SystemSpec("runtime", str(artifacts["fp32-opt"][0]), t, {"providers": "cuda"})),
                  ("runtime fp16 [GPU, CUDA]", SystemSpec("runtime", str(artifacts["fp16"][0]), t, {"providers": "cuda"})),
                  ("runtime fp16 [GPU, CUDA, no IO binding]",
                   SystemSpec("runtime", str(artifacts["fp16"][0]), t, {"providers": "cuda", "io_binding": False})),
                  ("runtime fp16 [GPU, TensorRT]", SystemSpec("runtime", str(artifacts["fp16"][0]), t, {"providers": "tensorrt"}))]
    return specs


@contextmanager
def running_systems(specs: list[tuple[str, SystemSpec]], tag: str) -> Iterator[list[SystemProcess]]:
    """Each system loaded in its own worker process; every worker is closed on leaving the block.

    A GPU row whose worker cannot start (its provider missing, or onnxruntime falling back
    to another device) is left out with a log line; any other failure stops the run.
    """
    with ExitStack() as stack:
        systems = []
        for name, spec in specs:
            log(f"[{tag}] loading {name} (own process)")
            try:
                systems.append(stack.enter_context(SystemProcess(name, spec)))
            except RuntimeError as error:
                if "[GPU" not in name:
                    raise
                log(f"[{tag}] {name}: row left out, the worker failed: {str(error).strip().splitlines()[-1]}")
        yield systems


def identical_pct(a: set, b: set) -> float:
    """|A ∩ B| / |A ∪ B| in %, 100 when both are empty."""
    return 100.0 * len(a & b) / len(a | b) if a | b else 100.0


def score_agreement(a: list, b: list, thresholds: tuple[float, ...] = (0.3, 0.5)) -> dict[str, Any]:
    """fp32 pair scores `a` vs int8 pair scores `b` of the same sentences: same top-1 label per pair (%),
    same relations at each threshold (%)."""
    import numpy as np

    same_top1 = np.concatenate([x.probabilities.argmax(-1) == y.probabilities.argmax(-1) for x, y in zip(a, b)])
    out: dict[str, Any] = {"sentences": len(a), "pairs": int(same_top1.size),
                           "top1_identical_pct": 100.0 * float(same_top1.mean()),
                           "max_abs_diff": max(float(np.abs(x.probabilities - y.probabilities).max()) for x, y in zip(a, b))}
    def relations_above(scores: list, t: float) -> set:  # (text, pair, label) with probability ≥ t
        return {(i, *map(int, k)) for i, x in enumerate(scores) for k in zip(*np.nonzero(x.probabilities >= t))}

    for t in thresholds:
        fa, fb = relations_above(a, t), relations_above(b, t)
        out[f"at_{t:g}"] = {"fp32_relations": len(fa), "int8_relations": len(fb), "identical_pct": identical_pct(fa, fb)}
    return out


def fewrel_f1(scores: list, workload: W.Workload) -> Optional[float]:
    """Macro-F1 (%) of the best label for each gold (head → tail) pair, FewRel's zero-shot protocol.

    `scores`: `score_pairs` of the workload's first len(scores) sentences."""
    if not all(s.gold_label for s in workload.sentences[:len(scores)]):
        return None
    gold, pred = [], []
    for s, sc in zip(workload.sentences, scores):
        h, t = s.gold_pairs[0]
        rows = [k for k in range(len(sc.heads)) if sc.heads[k] == h and sc.tails[k] == t]
        if not rows:
            continue
        gold.append(s.gold_label)
        pred.append(workload.labels[int(sc.probabilities[rows[0]].argmax())])
    f1s = []
    for label in set(gold):
        tp = sum(g == p == label for g, p in zip(gold, pred))
        fp = sum(p == label and g != label for g, p in zip(gold, pred))
        fn = sum(g == label and p != label for g, p in zip(gold, pred))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return 100.0 * sum(f1s) / max(len(f1s), 1)


# --------------------------------------------------------------------------- the run

def gpu_note() -> Optional[str]:
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


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "platform": platform.platform()}


def run_glirel_group(kind: str, args, workloads: dict[str, W.Workload]) -> dict[str, Any]:
    """Reference + runtime variants for one encoder shape, each in its own process, round-robin on every workload."""
    cache = Path(args.cache_dir)
    deberta_shape = kind.startswith("deberta-v3-")  # random weights, slow: fewer sentences, lean variants
    n = {"deberta-v3-large": args.large_sentences, "deberta-v3-base": args.base_sentences}.get(kind, args.sentences)
    repeats = args.large_repeats if deberta_shape else args.repeats
    checkpoint, note = build_checkpoint(kind, cache, use_trained=not args.no_trained)
    variants = ["fp32-opt", "int8"] if (deberta_shape or args.lean) else ["fp32", "fp32-opt", "int8", "int8-unfused"]
    if args.gpu:
        variants.append("fp16")
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
                                  repeats, load_average=load_average)
            for name, t in timings.items():
                relations[name][wname] = set(t["relations"])
                group["systems"].setdefault(name, {})[wname] = {
                    "sentences": len(texts), "repeats": repeats, "seconds": t["seconds"], "median_s": t["median_s"],
                    "sentences_per_s": len(texts) / t["median_s"], "best_sentences_per_s": len(texts) / min(t["seconds"]),
                    "load_avg_1min": t["load_avg_1min"]}
                log(f"    [{kind}] {name} / {wname}: {len(texts) / t['median_s']:.2f} sentences/s (n={len(texts)})")
    # int8 vs fp32 agreement, and FewRel F1 (meaningful only with trained weights)
    agreement: dict[str, Any] = {}
    for wname in workloads:
        a, b = relations["runtime fp32"][wname], relations["runtime int8"][wname]
        agreement[wname] = {"fp32_relations": len(a), "int8_relations": len(b), "int8_identical_pct": identical_pct(a, b),
                            "fp32_vs_reference_identical_pct": identical_pct(a, relations["glirel (PyTorch)"][wname])}
        unfused = relations.get("runtime int8, no --optimize", {}).get(wname)
        if unfused is not None:
            agreement[wname]["int8_unfused_relations"] = len(unfused)
            agreement[wname]["int8_unfused_identical_pct"] = identical_pct(a, unfused)
    # pair scores of each variant, computed once and shared by the score agreement and the F1
    from glirel_runtime import GLiREL

    checked = n if deberta_shape else args.f1_sentences  # the DeBERTa shapes are slow and untrained: their timed sentences only
    scores: dict[str, dict[str, list]] = {}
    for v in ("fp32-opt", "int8", "int8-unfused"):
        if v in artifacts:
            model = GLiREL(artifacts[v][0], providers="cpu", threads=args.threads)
            scores[v] = {wname: model.score_pairs(wl.texts()[:checked], wl.labels, wl.ner()[:checked])
                         for wname, wl in workloads.items()}
            del model
    for wname in workloads:
        agreement[wname]["scores"] = score_agreement(scores["fp32-opt"][wname], scores["int8"][wname])
    if "fewrel" in workloads:
        f1 = {v: fewrel_f1(by_workload["fewrel"], workloads["fewrel"]) for v, by_workload in scores.items()}
        agreement["fewrel_macro_f1"] = {"fp32": f1["fp32-opt"], "int8": f1["int8"],
                                        **({"int8_unfused": f1["int8-unfused"]} if "int8-unfused" in f1 else {}),
                                        "trained_weights": bool(group["artifacts"]["int8"].get("trained")),
                                        "sentences": len(scores["fp32-opt"]["fewrel"])}
    group["agreement"] = agreement
    return group


def side_by_side_ng(args, workloads: dict[str, W.Workload], n: int, kind: str) -> dict[str, Any]:
    """RelationPrompt NG and the runtime fp32 / int8 of `kind`, each in its own process, round-robin."""
    cache = Path(args.cache_dir)
    specs = [("RelationPrompt NG", SystemSpec("relationprompt-ng", threads=args.threads, options={"tiny": args.tiny}))]
    specs += [(name, SystemSpec("runtime", str(build_artifact(kind, v, cache, not args.no_trained, log)[0]), args.threads))
              for name, v in (("runtime fp32", "fp32-opt"), ("runtime int8", "int8"))]
    out: dict[str, Any] = {"model": MODEL_TITLES.get(kind, kind)}
    with running_systems(specs, "baseline") as systems:
        for wname, wl in workloads.items():
            sub = W.Workload(wl.name, wl.sentences[:n], wl.labels, wl.descriptions, wl.source)
            texts, ner = sub.texts(), sub.ner()
            timings = round_robin(systems, (texts, sub.labels, ner),
                                  {"threshold": args.threshold, "batch_size": args.batch_size, "workload": sub},
                                  max(args.baseline_repeats, 2))
            out[wname] = {name: len(texts) / t["median_s"] for name, t in timings.items()}
            out[wname]["sentences"] = len(texts)
            log(f"[baseline] side by side / {wname}: " + ", ".join(f"{k}={v:.2f}" for k, v in out[wname].items()))
    return out


def run_baselines(args, workloads: dict[str, W.Workload]) -> dict[str, Any]:
    from benchmarks import baselines as B
    import torch

    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {}
    n = args.baseline_sentences
    repeats = args.baseline_repeats

    def measure(name: str, system, workload_names: list[str], count: int) -> None:
        row = out.setdefault(name, {"shape": system.shape, "rows": {}})
        for wname in workload_names:
            wl = workloads[wname]
            sub = W.Workload(wl.name, wl.sentences[:count], wl.labels, wl.descriptions, wl.source)
            warm = W.Workload(wl.name, wl.sentences[:1], wl.labels, wl.descriptions, wl.source)
            log(f"[baseline] {name} / {wname}")
            r = timed(lambda: system.predict(sub, batch_size=args.batch_size), len(sub.sentences), repeats,
                      warmup=lambda: system.predict(warm, batch_size=args.batch_size))
            if hasattr(system, "sequences_per_sentence"):
                r["sequences_per_sentence"] = system.sequences_per_sentence(sub)
            row["rows"][wname] = r
            log(f"    {r['sentences_per_s']:.3f} sentences/s (n={len(sub.sentences)})")

    tmc_gold = B.TMCBert("gold", tiny=args.tiny)
    measure("TMC-BERT (gold pairs)", tmc_gold, list(workloads), max(2, n // 16))
    tmc_all = B.TMCBert("all", tiny=args.tiny)
    tmc_all.encoder, tmc_all.head = tmc_gold.encoder, tmc_gold.head
    measure("TMC-BERT (all ordered pairs)", tmc_all, list(workloads), max(2, n // 32))
    del tmc_gold, tmc_all
    ng = B.RelationPromptNG(tiny=args.tiny)
    measure("RelationPrompt NG", ng, list(workloads), n)
    out["RelationPrompt NG"]["side_by_side"] = [side_by_side_ng(args, workloads, n, kind) for kind in args.models
                                                if kind != "deberta-v3-large"]
    full = B.RelationPromptFull(ng, tiny=args.tiny)
    log("[baseline] RelationPrompt fixed cost: GPT-2 generation + BART fine-tuning")
    fixed = {}
    first = next(iter(workloads.values()))  # the fixed cost depends on the label set, not the test workload
    gen = full.generation_seconds(first, labels_measured=1)
    tune = full.finetune_seconds(first, steps_measured=args.finetune_steps)
    for wname, wl in workloads.items():
        test = len(wl.labels) * (FEWREL_TEST_SENTENCES_PER_LABEL if wname == "fewrel" else WIKIZSL_TEST_SENTENCES_PER_LABEL)
        ng_rate = out["RelationPrompt NG"]["rows"][wname]["sentences_per_s"]
        fixed[wname] = {"generation": gen, "finetune": tune, "fixed_s": gen["total_s"] + tune["total_s"],
                        "test_sentences": test, "sentences_per_s": B.amortised_rate(ng_rate, gen["total_s"] + tune["total_s"], test)}
        log(f"    {wname}: fixed {fixed[wname]['fixed_s']:.0f} s over {test} test sentences → {fixed[wname]['sentences_per_s']:.3f} sentences/s")
    out["RelationPrompt"] = {"shape": full.shape, "rows": fixed}
    return out


def run_sweeps(args, group_kind: str, data_dir: Optional[Path], baseline_tmc_rate: Optional[float]) -> dict[str, Any]:
    cache = Path(args.cache_dir)
    checkpoint, _ = build_checkpoint(group_kind, cache, use_trained=not args.no_trained)
    artifacts = {v: build_artifact(group_kind, v, cache, not args.no_trained, log) for v in ("fp32-opt", "int8")}
    specs = [s for s in system_specs(group_kind, args, checkpoint, artifacts)
             if s[0] in ("glirel (PyTorch)", "runtime fp32", "runtime int8")]
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


def run_breakdown(args, kind: str, data_dir: Optional[Path]) -> dict[str, Any]:
    """At 50 entities (2,450 pairs): encoder vs. pair builder + scorer, graph and Python side."""
    import numpy as np

    from benchmarks.ort_profile import graph_breakdown
    from glirel_runtime import GLiREL
    from glirel_runtime.pairs import build_pairs
    from glirel_runtime.validation import check_item, check_labels

    cache = Path(args.cache_dir)
    entities = max(args.sweep_entities)
    wl = W.entity_sweep_workload(data_dir, entities, args.sweep_sentences, m=10)
    out: dict[str, Any] = {"entities": entities, "pairs_per_text": entities * (entities - 1), "texts": len(wl.sentences), "labels": 10}
    for variant in ("fp32-opt", "int8"):
        artifact, _ = build_artifact(kind, variant, cache, not args.no_trained, log)
        model = GLiREL(artifact, providers="cpu", threads=args.threads)
        spec = check_labels(wl.labels)
        items = [check_item(t, n) for t, n in zip(wl.texts(), wl.ner())]
        encoded = model.features.encode(spec.labels, [i.words for i in items], [i.spans for i in items])
        batches = [model.features.pad(encoded[i:i + args.batch_size]) for i in range(0, len(encoded), args.batch_size)]
        graph = graph_breakdown(artifact / "model.onnx", batches, args.threads, runs=args.sweep_repeats)
        # Python side, per run over the same texts
        reps = max(args.sweep_repeats, 3)
        started = time.perf_counter()
        for _ in range(reps):
            for enc in encoded:
                build_pairs(enc.span_index[:, 0], model.config.max_entity_pair_distance)
        pairs_ms = (time.perf_counter() - started) * 1000 / reps
        started = time.perf_counter()
        for _ in range(reps):
            model.features.encode(spec.labels, [i.words for i in items], [i.spans for i in items])
        encode_ms = (time.perf_counter() - started) * 1000 / reps - pairs_ms
        scores = model.score_pairs(wl.texts(), wl.labels, wl.ner(), batch_size=args.batch_size)
        started = time.perf_counter()
        for _ in range(reps):
            for item, sc in zip(items, scores):
                model._decode(item, sc, spec, args.threshold, -1)
        decode_ms = (time.perf_counter() - started) * 1000 / reps
        per_run = {k: v / graph["runs"] * len(batches) for k, v in graph["node_ms"].items()}
        enc_ms = per_run.get("encoder", 0.0)
        pair_ms = per_run.get("pairs_scorer", 0.0) + pairs_ms + decode_ms
        out[variant] = {
            "graph_ms": {k: round(v, 2) for k, v in per_run.items()},
            "graph_top_ops_ms": graph["top_ops_ms"],
            "python_ms": {"tokenise_inputs": round(encode_ms, 2), "pair_builder": round(pairs_ms, 2),
                          "decode_threshold": round(decode_ms, 2)},
            "encoder_ms": round(enc_ms, 2),
            "pair_builder_plus_scorer_ms": round(pair_ms, 2),
            "ratio_to_encoder_pct": round(100.0 * pair_ms / enc_ms, 1) if enc_ms else None,
        }
        log(f"[breakdown] {variant}: encoder {enc_ms:.1f} ms, pair builder + scorer {pair_ms:.1f} ms "
            f"({out[variant]['ratio_to_encoder_pct']}%), graph {out[variant]['graph_ms']}")
        del model
        np.asarray(0)
    return out


def thread_sweep(args, kind: str, workload: W.Workload) -> dict[str, Any]:
    """Runtime sentences/s per intra-op thread count (one process per setting)."""
    cache = Path(args.cache_dir)
    out = {}
    texts, ner = workload.texts()[:args.sentences], workload.ner()[:args.sentences]
    for variant, name in (("fp32-opt", "runtime fp32"), ("int8", "runtime int8")):
        artifact, _ = build_artifact(kind, variant, cache, not args.no_trained, log)
        for threads in args.thread_counts:
            with SystemProcess(f"{name}, {threads} threads", SystemSpec("runtime", str(artifact), threads)) as system:
                timing = round_robin([system], (texts, workload.labels, ner), {"batch_size": args.batch_size}, args.repeats)
            out.setdefault(name, {})[threads] = len(texts) / timing[system.name]["median_s"]
            log(f"[threads] {name} threads={threads}: {out[name][threads]:.2f}")
    return out


# --------------------------------------------------------------------------- reporting

def fmt(x: Optional[float]) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def table_rows(report: dict) -> list[dict]:
    """Flat rows: system, model shape, device, sentences/s per workload, n."""
    rows = []
    for group in report["glirel"]:
        for name, row in group["systems"].items():
            rows.append({"system": name, "model": group["title"], "device": "GPU" if "[GPU" in name else "CPU", "group": group["kind"],
                         **{w: r["sentences_per_s"] for w, r in row.items()},
                         "n": {w: r["sentences"] for w, r in row.items()}})
    for name, b in report.get("baselines", {}).items():
        rows.append({"system": name, "model": b["shape"], "device": "CPU", "group": "baseline",
                     **{w: r.get("sentences_per_s") for w, r in b["rows"].items()},
                     "n": {w: r.get("sentences", r.get("test_sentences")) for w, r in b["rows"].items()}})
    return rows


def targets(report: dict) -> list[dict]:
    """The issue's targets, met or not, with the figure (default-model group unless stated)."""
    out = []
    groups = {g["kind"]: g for g in report["glirel"]}
    default = groups.get("minilm") or groups.get("tiny-bert") or report["glirel"][0]
    ref = default["systems"]["glirel (PyTorch)"]
    for system, need in (("runtime fp32", 3.0), ("runtime int8", 6.0)):
        for w in report["workloads"]:
            ratio = default["systems"][system][w]["sentences_per_s"] / ref[w]["sentences_per_s"]
            out.append({"target": f"{system} ≥ {need:g}× glirel (PyTorch), {w}, {default['title']}",
                        "figure": f"{ratio:.2f}×", "met": ratio >= need})
    for kind, g in groups.items():
        if kind == default["kind"]:
            continue
        for system, need in (("runtime fp32", 3.0), ("runtime int8", 6.0)):
            for w in report["workloads"]:
                ratio = g["systems"][system][w]["sentences_per_s"] / g["systems"]["glirel (PyTorch)"][w]["sentences_per_s"]
                out.append({"target": f"{system} ≥ {need:g}× glirel (PyTorch), {w}, {g['title']}",
                            "figure": f"{ratio:.2f}×", "met": ratio >= need})
    agreement = default["agreement"]
    if "fewrel" in agreement:
        a = agreement["fewrel"]
        sc = a.get("scores", {})
        if sc:
            out.append({"target": "int8: ≥ 99% of predicted relations identical to fp32 (FewRel-shaped; top-1 label of every pair)",
                        "figure": f"{sc['top1_identical_pct']:.2f}% of {sc['pairs']} pairs ({sc['sentences']} sentences)",
                        "met": sc["top1_identical_pct"] >= 99.0})
            for key in sorted(k for k in sc if k.startswith("at_")):
                r = sc[key]
                out.append({"target": f"int8: ≥ 99% of predicted relations identical to fp32 (FewRel-shaped; threshold {key[3:]})",
                            "figure": f"{r['identical_pct']:.2f}% (fp32 {r['fp32_relations']}, int8 {r['int8_relations']} relations)",
                            "met": r["identical_pct"] >= 99.0 if r["fp32_relations"] + r["int8_relations"] >= 50 else None})
    f1 = agreement.get("fewrel_macro_f1")
    if f1 and f1["fp32"] is not None:
        delta = abs(f1["fp32"] - f1["int8"])
        trained = f1["trained_weights"]
        out.append({"target": "int8: FewRel F1 within 0.5 points of fp32", "figure":
                    f"Δ = {delta:.2f} (fp32 {f1['fp32']:.2f}, int8 {f1['int8']:.2f}, {f1['sentences']} sentences"
                    f"{'' if trained else '; UNTRAINED weights: F1 is not meaningful'})",
                    "met": (delta <= 0.5) if trained else None})
    ng = report.get("baselines", {}).get("RelationPrompt NG")
    sides = (ng or {}).get("side_by_side") or []
    for side in ([sides] if isinstance(sides, dict) else sides):
        for w in report["workloads"]:
            for system in ("runtime fp32", "runtime int8"):
                ratio = side[w][system] / side[w]["RelationPrompt NG"]
                out.append({"target": f"faster than RelationPrompt NG (BART-base): {system}, {side['model']}, {w}, "
                                      f"round-robin on the same {side[w]['sentences']} sentences",
                            "figure": f"{ratio:.2f}× ({fmt(side[w][system])} vs {fmt(side[w]['RelationPrompt NG'])} sentences/s)",
                            "met": ratio > 1.0})
    if ng:
        for kind, g in groups.items():
            for w in report["workloads"]:
                for system in ("runtime fp32", "runtime int8"):
                    ratio = g["systems"][system][w]["sentences_per_s"] / ng["rows"][w]["sentences_per_s"]
                    out.append({"target": f"faster than RelationPrompt NG (BART-base): {system}, {g['title']}, {w} (separate timings)",
                                "figure": f"{ratio:.2f}×", "met": ratio > 1.0})
    bd = report.get("breakdown")
    if bd:
        for variant in ("fp32-opt", "int8"):
            if variant in bd:
                pct = bd[variant]["ratio_to_encoder_pct"]
                out.append({"target": f"pair builder + scorer ≤ 10% of encoder time at {bd['entities']} entities "
                                      f"({bd['pairs_per_text']} pairs), {variant}", "figure": f"{pct}%",
                            "met": pct is not None and pct <= 10.0})
    large = groups.get("deberta-v3-large")
    gpu_rows = {k: v for k, v in (large or {}).get("systems", {}).items() if "[GPU" in k and k.startswith("runtime")}
    if gpu_rows and "fewrel" in report["workloads"]:
        best_name, best = max(gpu_rows.items(), key=lambda kv: kv[1]["fewrel"]["sentences_per_s"])
        rate = best["fewrel"]["sentences_per_s"]
        out.append({"target": "GPU: DeBERTa-v3-large shape ≥ 2,000 sentences/s (FewRel-shaped; the issue asks for an H100)",
                    "figure": f"{rate:,.0f} sentences/s ({best_name}; {report.get('gpu_name', 'GPU')})", "met": rate >= 2000})
    else:
        out.append({"target": "H100: DeBERTa-v3-large shape ≥ 2,000 sentences/s (FewRel-shaped)",
                    "figure": "not measured: no GPU in this run", "met": None})
    return out


def markdown(report: dict) -> str:
    ws = report["workloads"]
    wtitle = {"fewrel": "FewRel-shaped", "wikizsl": "Wiki-ZSL-shaped"}
    lines = [f"# GLiREL speed, {report['date']}", "",
             f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; threads = {report['threads']}; "
             f"onnxruntime {report['machine']['onnxruntime']}, torch {report['machine']['torch']}.",
             f"Command: `{report['command']}`", "",
             f"Contention: load average {report['load_before']:.2f} before, {report['load_after']:.2f} after; "
             f"training processes seen: {report['training_processes'] or 'none'}.", ""]
    for part, info in report.get("reused", {}).items():
        lines += [f"**{part}: taken from an earlier run** ({info['date']}, load average {info['load_before']}, "
                  f"training processes: {info['training_processes'] or 'none'}), same workloads and harness.", ""]
    for w in ws:
        lines.append(f"- **{wtitle.get(w, w)}**: {report['workload_info'][w]['source']}; {report['workload_info'][w]['stats']}")
    lines += ["", "Batch size 32, m = 10 labels, threshold 0.5; one warm-up pass over the timed sentences, median of the timed passes; every GLiREL system in its own process, round-robin. "
              "Baselines and the DeBERTa-v3 shapes use randomly initialised weights of the real size (speed only).", ""]
    if report.get("gpu_note"):
        lines += [f"GPU: {report['gpu_note']}.", ""]
    lines += ["## Sentences per second", "",
              "| system | model | " + " | ".join(wtitle.get(w, w) for w in ws) + " | sentences timed |",
              "|---|---|" + "---:|" * len(ws) + "---|"]
    for row in table_rows(report):
        lines.append(f"| {row['system']} | {row['model']} | " + " | ".join(fmt(row.get(w)) for w in ws)
                     + " | " + ", ".join(f"{w}: {row['n'].get(w)}" for w in ws) + " |")
    lines += ["", "## Ratios", ""]
    for group in report["glirel"]:
        ref = group["systems"]["glirel (PyTorch)"]
        lines += [f"**{group['title']}** ({group['checkpoint_note']})", "",
                  "| system | " + " | ".join(f"× glirel (same device), {wtitle.get(w, w)}" for w in ws) + " | "
                  + " | ".join(f"× {b}, {wtitle.get(w, w)}" for b in report.get("baselines", {}) for w in ws) + " |",
                  "|---|" + "---:|" * (len(ws) * (1 + len(report.get("baselines", {})))) ]
        for name, row in group["systems"].items():
            on_gpu = "[GPU" in name  # GPU rows compare with glirel on the GPU; the baselines ran on the CPU only
            base = group["systems"].get("glirel (PyTorch) [GPU]") if on_gpu else ref
            cells = [f"{row[w]['sentences_per_s'] / base[w]['sentences_per_s']:.2f}" if base else "–" for w in ws]
            for b in report.get("baselines", {}).values():
                for w in ws:
                    rate = b["rows"].get(w, {}).get("sentences_per_s")
                    cells.append(f"{row[w]['sentences_per_s'] / rate:.2f}" if rate and not on_gpu else "–")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    rp = report.get("baselines", {}).get("RelationPrompt")
    if rp:
        lines += ["## RelationPrompt's fixed cost (amortised)", "",
                  "Per label set: GPT-2 samples N = 25 sentences per label (measured on one label, × m), and BART-base is "
                  "fine-tuned on the m × 25 examples for 5 epochs (seconds per step measured on a few steps, × steps). "
                  "Sentences/s = test sentences / (fixed cost + test sentences / NG rate), with the test set of the m "
                  "unseen labels (FewRel: 700 sentences per label; Wiki-ZSL: ≈ 835).", ""]
        for w, r in rp["rows"].items():
            lines.append(f"- {wtitle.get(w, w)}: generation {r['generation']['total_s']:.0f} s + fine-tuning "
                         f"{r['finetune']['total_s']:.0f} s ({r['finetune']['per_step_s']:.2f} s/step × "
                         f"{r['finetune']['steps_per_epoch'] * r['finetune']['epochs']} steps) = {r['fixed_s']:.0f} s over "
                         f"{r['test_sentences']} sentences → {fmt(r['sentences_per_s'])} sentences/s")
        lines.append("")
    lines += ["## Agreement (int8 vs fp32)", "", "Identical = |A ∩ B| / |A ∪ B| over (text, head, tail, label) relations at the threshold.", ""]
    for group in report["glirel"]:
        for w in ws:
            a = group["agreement"][w]
            lines.append(f"- {group['title']}, {wtitle.get(w, w)}: {a['int8_identical_pct']:.2f}% of relations identical "
                         f"(fp32 {a['fp32_relations']}, int8 {a['int8_relations']}); fp32 vs glirel {a['fp32_vs_reference_identical_pct']:.2f}%"
                         + (f"; int8 without --optimize: {a['int8_unfused_identical_pct']:.2f}%" if "int8_unfused_identical_pct" in a else ""))
            sc = a.get("scores")
            if sc:
                lines.append(f"  - scores of the first {sc['sentences']} sentences: top-1 label identical for "
                             f"{sc['top1_identical_pct']:.2f}% of {sc['pairs']} pairs; max |Δp| {sc['max_abs_diff']:.3f}; "
                             + "; ".join(f"threshold {k[3:]}: {v['identical_pct']:.2f}% identical (fp32 {v['fp32_relations']}, "
                                         f"int8 {v['int8_relations']})" for k, v in sc.items() if k.startswith("at_")))
        f1 = group["agreement"].get("fewrel_macro_f1")
        if f1 and f1["fp32"] is not None:
            lines.append(f"- {group['title']}, FewRel macro-F1: fp32 {f1['fp32']:.2f}, int8 {f1['int8']:.2f}"
                         + "".join(f", {k} {f1[k]:.2f}" for k in ("int8_unfused",) if f1.get(k) is not None)
                         + f"{'' if f1['trained_weights'] else ' (untrained weights: not meaningful)'}")
    lines.append("")
    lines += ["## Graph optimisation", ""]
    for group in report["glirel"]:
        for v, info in group["artifacts"].items():
            lines.append(f"- {group['title']} {v}: offline fusions {info['fusions'] or 'none'}; "
                         f"ops after onnxruntime's session optimiser: {group.get('ops', {}).get(v, '–')}")
    lines.append("")
    if report.get("threads_sweep"):
        lines += ["## Threads (runtime, FewRel-shaped, default model)", "", "| system | " + " | ".join(
            f"{t} thread(s)" for t in report["thread_counts"]) + " |", "|---|" + "---:|" * len(report["thread_counts"])]
        for name, r in report["threads_sweep"].items():
            lines.append(f"| {name} | " + " | ".join(fmt(r.get(t, r.get(str(t)))) for t in report["thread_counts"]) + " |")
        lines.append("")
    for key, title in (("entities", "Entities per text (fixed 120-word texts, 10 labels)"), ("labels", "Labels (FewRel-shaped)")):
        sweep = report.get("sweeps", {}).get(key)
        if not sweep:
            continue
        names = [k for k in next(iter(sweep.values())) if k != "pairs_per_text"]
        lines += [f"## Sweep: {title}, sentences/s", "", f"| {key} | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
        for x, point in sweep.items():
            label = f"{x} ({point['pairs_per_text']} pairs)" if "pairs_per_text" in point else str(x)
            lines.append(f"| {label} | " + " | ".join(fmt(point.get(n)) for n in names) + " |")
        lines += ["", report["sweeps"]["note"], ""]
    bd = report.get("breakdown")
    if bd:
        lines += [f"## Breakdown at {bd['entities']} entities ({bd['pairs_per_text']} pairs per text, {bd['texts']} texts, "
                  f"{bd['labels']} labels), ms per pass", ""]
        for v in ("fp32-opt", "int8"):
            if v in bd:
                lines.append(f"- {v}: encoder {bd[v]['encoder_ms']} ms; pair builder + scorer {bd[v]['pair_builder_plus_scorer_ms']} ms "
                             f"({bd[v]['ratio_to_encoder_pct']}% of encoder); graph {bd[v]['graph_ms']}; Python {bd[v]['python_ms']}")
        lines.append("")
    lines += ["## Targets", "", "| target | figure | met |", "|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['figure']} | {'yes' if t['met'] else ('no' if t['met'] is False else 'n/a')} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib)"
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    rows = [r for r in table_rows(report)]
    ws = report["workloads"]
    ax = axes[0]
    width = 0.8 / max(len(ws), 1)
    for k, w in enumerate(ws):
        values = [r.get(w) or 0 for r in rows]
        ax.barh([i + k * width for i in range(len(rows))], values, height=width, label=w)
    ax.set_yticks([i + width * (len(ws) - 1) / 2 for i in range(len(rows))])
    ax.set_yticklabels([f"{r['system']} [{r['group']}]" for r in rows], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("sentences/s (log)")
    ax.set_title(f"CPU, {report['threads']} threads")
    ax.legend()
    ax.invert_yaxis()
    for ax, key, xlabel in ((axes[1], "entities", "entities per text"), (axes[2], "labels", "labels")):
        sweep = report.get("sweeps", {}).get(key)
        if not sweep:
            ax.set_visible(False)
            continue
        xs = [int(x) for x in sweep]
        names = [k for k in next(iter(sweep.values())) if k != "pairs_per_text"]
        for name in names:
            ax.plot(xs, [sweep[x].get(name) for x in sweep], marker="o", label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("sentences/s (log)")
        ax.set_yscale("log")
        ax.set_title(f"sweep: {key} ({report['sweeps']['group']})")
        ax.legend(fontsize=7)
    fig.suptitle(f"GLiREL speed ({report['date']}); baselines and DeBERTa-large: random weights of the real size")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


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
    p.add_argument("--lean", action="store_true", help="skip the ablation rows (no --optimize, no bucketing)")
    p.add_argument("--no-trained", action="store_true", help="ignore checkpoints/glirel-minilm-redocred even if present")
    p.add_argument("--tiny", action="store_true", help="tiny shapes and few sentences (smoke test; numbers mean nothing)")
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
    report: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": command.strip(),
        "machine": machine(), "threads": args.threads, "thread_counts": args.thread_counts,
        "load_before": load_average(), "training_processes": training_processes(), "gpu_note": gpu_note(),
        "random_weights_note": "baselines and the DeBERTa-v3-large shape are randomly initialised with the real shapes (speed only)",
        "workloads": args.workloads, "batch_size": args.batch_size, "labels": args.labels,
    }
    args.gpu = report["gpu_note"] is None
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
    reused_note = None if prior is None else {"from": args.reuse_from, "date": prior["date"], "load_before": prior.get("load_before"),
                                              "training_processes": prior.get("training_processes")}
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
            interesting = ("Attention", "MultiHeadAttention", "SkipLayerNormalization", "EmbedLayerNormalization",
                           "LayerNormalization", "BiasGelu", "FastGelu", "Gelu", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
                           "DynamicQuantizeLinear", "MatMulInteger", "FusedMatMul", "MatMul", "Softmax", "LSTM")
            group["ops"][v] = {k: hist[k] for k in interesting if k in hist}
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
