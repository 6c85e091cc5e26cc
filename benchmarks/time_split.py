"""Share of the encoder in end-to-end time, for `glirel` (PyTorch) and the runtime, same sentences.

Usage (from the repository root):

    python -m benchmarks.time_split                  # both systems, default model, 128 FewRel-shaped sentences
    python -m benchmarks.time_split --system runtime # one system (each run is its own process)
    python -m benchmarks.time_split > time_split.jsonl   # then: python -m benchmarks.speed --time-split time_split.jsonl

- `glirel`: wall time of `batch_predict_relations` (32 per call, input order, as
  `benchmarks.systems.Reference`) and the time inside the encoder's `forward`.
- runtime: wall time of `batch_predict_relations` (as `benchmarks.systems.Runtime`), the
  time inside `InferenceSession.run`, and the encoder nodes' share of the graph's node
  time from onnxruntime's profiler on the same padded batches
  (`benchmarks.ort_profile.graph_breakdown`); encoder time = graph time × that share.

Each system runs in its own process (see `benchmarks/systems.py` for why).

Compute ceiling: each process also counts the encoder's floating-point work on
the padded batches it actually ran (GEMMs and attention, from the encoder's
`config.json`), divides it by its encoder time, and measures the machine's fp32
GEMM rate with its own library at the FFN's shape (`torch.matmul` for `glirel`,
an onnxruntime MatMul for the runtime). With both systems, the summary line
bounds the runtime's fp32 speed-up over `glirel`: the runtime's time with its
non-encoder part unchanged and its encoder at the best GEMM rate measured; the
int8 bound does the same with onnxruntime's int8 GEMM rate (the encoder's
element-wise and attention work counted as if it were int8 GEMM too, which
flatters the bound).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads as W  # noqa: E402
from benchmarks.machine import high_load_warning, machine_info  # noqa: E402
from benchmarks.models import build_artifact, build_checkpoint, build_encoder  # noqa: E402

GEMM_OPS = ("MatMul", "FusedMatMul", "Gemm", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")
"""onnxruntime ops (after its session optimiser) that are matrix products."""


def _timed_method(owner, name: str, shapes: list | None = None) -> list[float]:
    """Replace `owner.name` by a wrapper adding its seconds to the returned one-element list
    (and, with `shapes`, appending the shape of its `input_ids` argument)."""
    method, spent = getattr(owner, name), [0.0]

    def timed(*a, **k):
        if shapes is not None:
            shapes.append(tuple(k["input_ids"].shape if "input_ids" in k else a[0].shape))
        started = time.perf_counter()
        out = method(*a, **k)
        spent[0] += time.perf_counter() - started
        return out

    setattr(owner, name, timed)
    return spent


def encoder_gflop(encoder_config: dict, batch_shapes: list[tuple[int, int]]) -> float:
    """Floating-point work (GFLOP) of a BERT-style encoder on padded batches of shape [batch, subwords].

    Per layer and sequence of S subwords: Q, K, V, output and the two FFN GEMMs,
    2·S·(4h² + 2h·i), plus the attention products, 4·S²·h (embeddings and
    element-wise ops left out).

    Example:
        >>> round(encoder_gflop({"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6}, [(32, 70)]), 1)
        49.0
    """
    h, i, layers = encoder_config["hidden_size"], encoder_config["intermediate_size"], encoder_config["num_hidden_layers"]
    flop = sum(batch * layers * (2 * length * (4 * h * h + 2 * h * i) + 4 * length * length * h) for batch, length in batch_shapes)
    return flop / 1e9


def gemm_rate(library: str, rows: int, inner: int, columns: int, threads: int, repeats: int = 20) -> float:
    """Best GFLOP/s (GOP/s for int8) of one [rows, inner] × [inner, columns] product.

    `library`: "torch" (fp32), "onnxruntime" (fp32 MatMul) or "onnxruntime-int8"
    (DynamicQuantizeMatMul with per-channel int8 weights, the op `--quantize int8`
    graphs run, input quantisation included).
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, inner), dtype=np.float32)
    b = rng.standard_normal((inner, columns), dtype=np.float32)
    if library == "torch":
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        run = lambda: torch.matmul(ta, tb)  # noqa: E731
    else:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        if library == "onnxruntime-int8":
            weights = [numpy_helper.from_array(rng.integers(-127, 128, (inner, columns), dtype=np.int8), "b"),
                       numpy_helper.from_array(np.full(columns, 0.01, np.float32), "scale"),
                       numpy_helper.from_array(np.zeros(columns, np.int8), "zero_point")]
            node = helper.make_node("DynamicQuantizeMatMul", ["a", "b", "scale", "zero_point"], ["c"], domain="com.microsoft")
        else:
            weights, node = [numpy_helper.from_array(b, "b")], helper.make_node("MatMul", ["a", "b"], ["c"])
        graph = helper.make_graph(
            [node], "gemm", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [rows, inner])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [rows, columns])], weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
        run = lambda: session.run(None, {"a": a})  # noqa: E731
    run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return 2 * rows * inner * columns / best / 1e9


def _ceiling_fields(encoder_config: dict, shapes: list[tuple[int, int]], encoder_s: float, library: str, threads: int) -> dict:
    gflop = encoder_gflop(encoder_config, shapes)
    tokens = sum(b * s for b, s in shapes) // max(len(shapes), 1)  # a typical batch's rows
    h, i = encoder_config["hidden_size"], encoder_config["intermediate_size"]
    fields = {"encoder_gflop": gflop, "encoder_gflop_per_s": gflop / encoder_s,
              "gemm_gflop_per_s": gemm_rate(library, tokens, h, i, threads), "gemm_library": library,
              "padded_subwords": sum(b * s for b, s in shapes)}
    if library == "onnxruntime":
        fields["int8_gemm_gop_per_s"] = gemm_rate("onnxruntime-int8", tokens, h, i, threads)
    return fields


def _median_split(call, inside: list[float], repeats: int) -> tuple[float, float]:
    """(wall seconds, seconds counted in `inside`) of the median-time call, after a warm-up on the same inputs."""
    call()
    runs = []
    for _ in range(repeats):
        inside[0] = 0.0
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started, inside[0]))
    runs.sort()
    return runs[len(runs) // 2]


def glirel_split(args, workload: W.Workload) -> dict:
    from benchmarks.systems import Reference

    checkpoint, _ = build_checkpoint("minilm", Path(args.cache_dir), use_trained=not args.no_trained)
    reference = Reference(checkpoint, args.threads)
    encoder = reference.model.token_rep_layer.bert_layer.model
    shapes: list[tuple[int, int]] = []
    inside = _timed_method(encoder, "forward", shapes)
    texts, ner = workload.texts(), workload.ner()
    total, encoder_s = _median_split(lambda: reference.predict(texts, workload.labels, ner, batch_size=args.batch_size),
                                     inside, args.repeats)
    shapes = shapes[: len(shapes) // (args.repeats + 1)]  # every call ran the same batches
    return {"system": "glirel (PyTorch)", "total_s": total, "encoder_s": encoder_s, "encoder_pct": 100.0 * encoder_s / total,
            **_ceiling_fields(encoder.config.to_dict(), shapes, encoder_s, "torch", args.threads)}


def runtime_split(args, workload: W.Workload) -> dict:
    from benchmarks.ort_profile import graph_breakdown
    from benchmarks.systems import Runtime
    from glirel_runtime.validation import check_item, check_labels

    artifact, _ = build_artifact("minilm", "fp32", Path(args.cache_dir), not args.no_trained, log=lambda *a: None)
    runtime = Runtime(artifact, args.threads)
    engine = getattr(runtime.model, "engine", None)  # the graph call: the engine's run, or the session's before engines
    inside = _timed_method(engine if engine is not None else runtime.model.session, "run")
    texts, ner = workload.texts(), workload.ner()
    total, graph_s = _median_split(lambda: runtime.predict(texts, workload.labels, ner, batch_size=args.batch_size),
                                   inside, args.repeats)
    # the same batches the runtime runs: sorted by length, `batch_size` per batch
    model = runtime.model
    spec = check_labels(workload.labels)
    items = [check_item(t, n) for t, n in zip(texts, ner)]
    encoded = sorted(model.features.encode(spec.labels, [i.words for i in items], [i.spans for i in items]),
                     key=lambda e: e.input_ids.shape[0])
    batches = [model.features.pad(encoded[i:i + args.batch_size]) for i in range(0, len(encoded), args.batch_size)]
    profile = graph_breakdown(artifact / "model.onnx", batches, args.threads, runs=2)
    node_ms = profile["node_ms"]
    seconds_per_node_ms = graph_s / sum(node_ms.values())  # the profile's node times scaled to the timed calls
    encoder = node_ms.get("encoder", 0.0) * seconds_per_node_ms
    # the encoder's matrix products alone (weights and attention): what is left if every other op cost nothing
    encoder_gemm = sum(ms for op, ms in profile["ops_ms"].get("encoder", {}).items() if op in GEMM_OPS) * seconds_per_node_ms
    encoder_config = json.loads((build_encoder("minilm", Path(args.cache_dir)) / "config.json").read_text())  # the artifact's encoder
    return {"system": "runtime fp32", "total_s": total, "graph_s": graph_s, "encoder_s": encoder,
            "encoder_pct": 100.0 * encoder / total, "encoder_gemm_s": encoder_gemm,
            "padding_pct": 100.0 * (1 - sum(e.input_ids.shape[0] for e in encoded) / sum(b["input_ids"].size for b in batches)),
            **_ceiling_fields(encoder_config, [b["input_ids"].shape for b in batches], encoder, "onnxruntime", args.threads)}


def speedup_bound(glirel: dict, runtime: dict) -> dict:
    """The runtime's best possible fp32 speed-up over `glirel` if its encoder ran at the best GEMM rate measured,
    and how much of that bound the measured speed-up reaches; with the runtime's `encoder_gemm_s`, also the
    speed-up if only its encoder's matrix products took time (`gemm_only_speedup`), which no tuning of the
    other ops can beat."""
    peak = max(glirel["gemm_gflop_per_s"], runtime["gemm_gflop_per_s"])
    rest_s = runtime["total_s"] - runtime["encoder_s"]  # tokenisation, pair head, decoding: kept as measured
    measured = glirel["total_s"] / runtime["total_s"]
    bound = glirel["total_s"] / (rest_s + runtime["encoder_gflop"] / peak)
    out = {"measured_speedup": measured, "gemm_peak_gflop_per_s": peak, "speedup_bound": bound,
           "measured_share_of_bound_pct": 100.0 * measured / bound,
           "int8_gemm_gop_per_s": runtime["int8_gemm_gop_per_s"],
           "int8_speedup_bound": glirel["total_s"] / (rest_s + runtime["encoder_gflop"] / runtime["int8_gemm_gop_per_s"]),
           "glirel_encoder_pct_of_peak": 100.0 * glirel["encoder_gflop_per_s"] / peak,
           "runtime_encoder_pct_of_peak": 100.0 * runtime["encoder_gflop_per_s"] / peak}
    if runtime.get("encoder_gemm_s"):
        # every non-GEMM encoder op (softmax, layer norm, GELU, adds, transposes) at zero time, the GEMMs as measured
        gemm_only = glirel["total_s"] / (rest_s + runtime["encoder_gemm_s"])
        out.update({"gemm_only_speedup": gemm_only, "gemm_only_share_of_bound_pct": 100.0 * gemm_only / bound,
                    "encoder_gemm_nodes_gflop_per_s": runtime["encoder_gflop"] / runtime["encoder_gemm_s"]})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["both", "glirel", "runtime"], default="both")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cache-dir", default="/tmp/glirel-speed-cache")
    parser.add_argument("--sentences", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-trained", action="store_true", help="ignore checkpoints/glirel-minilm-fewrel")
    args = parser.parse_args(argv)
    if args.system == "both":  # one process per system
        passed = list(argv if argv is not None else sys.argv[1:])
        results = {}
        for system in ("glirel", "runtime"):
            done = subprocess.run([sys.executable, "-m", "benchmarks.time_split", *passed, "--system", system],
                                  check=True, cwd=REPO, stdout=subprocess.PIPE, text=True)
            print(done.stdout, end="")
            results[system] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps({"summary": {**speedup_bound(results["glirel"], results["runtime"]), "machine": machine_info()}}))
        return 0
    warning = high_load_warning()
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    data_dir = Path(args.data_dir)
    if not (data_dir / "fewrel" / "val_wiki.json").is_file():
        print(f"no FewRel data under {data_dir}: generated workload", file=sys.stderr)
        data_dir = None
    workload = W.fewrel_workload(data_dir, args.sentences, m=10)
    split = glirel_split(args, workload) if args.system == "glirel" else runtime_split(args, workload)
    print(json.dumps({**split, "sentences": args.sentences, "threads": args.threads, "workload": workload.source,
                      "machine": machine_info()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
