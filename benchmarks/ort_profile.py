"""Where the time goes inside a GLiREL graph: encoder vs. the rest, from onnxruntime's profiler.

Nodes of the session-optimised graph are classified by what they depend on:

- ``encoder``: computable from ``input_ids``/``attention_mask`` alone (the transformer);
- ``pairs_scorer``: depends on ``span_index`` or ``pair_index`` (span/pair representations,
  label × pair scoring);
- ``head_other``: the rest (first-subtoken pooling, BiLSTM, label FFN).

The names of the session-optimised nodes are those the profiler reports, so the
classification survives onnxruntime's fusions.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional

from glirel_export.quantize import classify_nodes


def _session(model_path: Path, threads: Optional[int], profile_prefix: Optional[str] = None, optimized_path: Optional[str] = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


def op_histogram(model_path: Path, threads: Optional[int] = 1) -> dict[str, int]:
    """Op types of the graph after onnxruntime's session-level optimisation (which fusions applied)."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        optimized = os.path.join(tmp, "optimized.onnx")
        _session(model_path, threads, optimized_path=optimized)
        model = onnx.load(optimized, load_external_data=False)
        return dict(Counter(n.op_type for n in model.graph.node).most_common())


def graph_breakdown(model_path: Path, inputs_list: list[dict[str, Any]], threads: Optional[int], runs: int = 2) -> dict[str, Any]:
    """Per-class node time (ms, summed over `runs` runs of every input dict, first run discarded)."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        optimized = os.path.join(tmp, "optimized.onnx")
        _session(model_path, threads, optimized_path=optimized)
        classes = classify_nodes(onnx.load(optimized, load_external_data=False).graph)
        session = _session(model_path, threads, profile_prefix=os.path.join(tmp, "profile"))
        for inputs in inputs_list:  # warm-up, then profiled runs
            session.run(None, inputs)
        for _ in range(runs):
            for inputs in inputs_list:
                session.run(None, inputs)
        profile_file = session.end_profiling()
        events = json.loads(Path(profile_file).read_text())
    # drop the warm-up runs: keep the last runs * len(inputs_list) model_run events' windows
    model_runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    keep = model_runs[-runs * len(inputs_list):]
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in keep]
    totals: dict[str, float] = defaultdict(float)
    inside_subgraphs = 0.0
    by_op: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        if not any(a <= e["ts"] <= b for a, b in windows):
            continue
        node = e["name"][: -len("_kernel_time")]
        if node not in classes:  # a node inside a Loop's body: its time is already in the Loop's own event
            inside_subgraphs += e["dur"] / 1000.0
            continue
        cls = classes[node]
        totals[cls] += e["dur"] / 1000.0
        by_op[cls][e.get("args", {}).get("op_name", "?")] += e["dur"] / 1000.0
    run_ms = sum(e["dur"] for e in keep) / 1000.0
    return {
        "runs": runs * len(inputs_list),
        "model_run_ms": run_ms,
        "node_ms": dict(totals),
        "inside_subgraphs_ms": inside_subgraphs,
        "top_ops_ms": {cls: dict(sorted(ops.items(), key=lambda kv: -kv[1])[:6]) for cls, ops in by_op.items()},
        "ops_ms": {cls: dict(ops) for cls, ops in by_op.items()},
    }
