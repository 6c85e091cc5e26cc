"""The paper's baselines (TMC-BERT, RelationPrompt NG, RelationPrompt with its fixed cost) on the speed workloads.

Weights are randomly initialised with the real shapes (`benchmarks.baselines`): speed only.
RelationPrompt NG is also timed round-robin beside the runtime's fp32 / int8, in their own processes.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

from benchmarks import workloads as W
from benchmarks.experiments import log
from benchmarks.experiments.glirel_systems import running_systems
from benchmarks.machine import load_average
from benchmarks.models import MODEL_TITLES, build_artifact
from benchmarks.systems import SystemSpec, round_robin

FEWREL_TEST_SENTENCES_PER_LABEL = 700  # FewRel: 700 sentences per relation
WIKIZSL_TEST_SENTENCES_PER_LABEL = 835  # Wiki-ZSL: 94,383 sentences / 113 relations


def timed(fn: Callable[[], Any], sentences: int, repeats: int, warmup: Optional[Callable[[], Any]] = None) -> dict[str, Any]:
    """Run `warmup` (or `fn`) once, then `fn` `repeats` times; median sentences/s."""
    (warmup or fn)()
    times, loads = [], []
    for _ in range(repeats):
        loads.append(load_average()[0])
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {"sentences": sentences, "repeats": repeats, "seconds": times, "median_s": median,
            "sentences_per_s": sentences / median, "load_avg_1min": loads}


def side_by_side_ng(args, workloads: dict[str, W.Workload], n: int, kind: str) -> dict[str, Any]:
    """RelationPrompt NG and the runtime fp32 / int8 of `kind`, each in its own process, round-robin."""
    cache = Path(args.cache_dir)
    specs = [("RelationPrompt NG", SystemSpec("relationprompt-ng", threads=args.threads, options={"tiny": args.tiny}))]
    specs += [(name, SystemSpec("runtime", str(build_artifact(kind, v, cache, not args.no_trained, log)[0]), args.threads))
              for name, v in (("runtime fp32", "fp32"), ("runtime int8", "int8"))]
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
