"""Encoder vs. pair builder + scorer at many entities: graph time from onnxruntime's profiler, Python time measured."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from benchmarks import workloads as W
from benchmarks.experiments import log
from benchmarks.models import build_artifact


def run_breakdown(args, kind: str, data_dir: Optional[Path]) -> dict[str, Any]:
    """At 50 entities (2,450 pairs): encoder vs. pair builder + scorer, graph and Python side."""
    from benchmarks.ort_profile import graph_breakdown
    from glirel_runtime import GLiREL
    from glirel_runtime.decoding import decode_relations
    from glirel_runtime.pairs import build_pairs
    from glirel_runtime.validation import check_item, check_labels

    cache = Path(args.cache_dir)
    entities = max(args.sweep_entities)
    wl = W.entity_sweep_workload(data_dir, entities, args.sweep_sentences, m=10)
    out: dict[str, Any] = {"entities": entities, "pairs_per_text": entities * (entities - 1), "texts": len(wl.sentences), "labels": 10}
    for variant in ("fp32-dense", "fp32", "int8"):
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
                decode_relations(item, sc, spec, args.threshold)
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
    return out
