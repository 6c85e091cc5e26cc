"""Share of the encoder in end-to-end time, for `glirel` (PyTorch) and the runtime, same sentences.

Usage (from the repository root):

    python -m benchmarks.time_split                  # both systems, default model, 128 FewRel-shaped sentences
    python -m benchmarks.time_split --system runtime # one system (each run is its own process)

- `glirel`: wall time of `batch_predict_relations` (32 per call, input order, as
  `benchmarks.systems.Reference`) and the time inside the encoder's `forward`.
- runtime: wall time of `batch_predict_relations` (as `benchmarks.systems.Runtime`), the
  time inside `InferenceSession.run`, and the encoder nodes' share of the graph's node
  time from onnxruntime's profiler on the same padded batches
  (`benchmarks.ort_profile.graph_breakdown`); encoder time = graph time × that share.

Each system runs in its own process (see `benchmarks/systems.py` for why).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads as W  # noqa: E402
from benchmarks.models import build_artifact, build_checkpoint  # noqa: E402


def _timed_method(owner, name: str) -> list[float]:
    """Replace `owner.name` by a wrapper adding its seconds to the returned one-element list."""
    method, spent = getattr(owner, name), [0.0]

    def timed(*a, **k):
        started = time.perf_counter()
        out = method(*a, **k)
        spent[0] += time.perf_counter() - started
        return out

    setattr(owner, name, timed)
    return spent


def _median_seconds(call, repeats: int) -> float:
    call()  # warm-up on the same inputs
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def glirel_split(args, workload: W.Workload) -> dict:
    from benchmarks.systems import Reference

    checkpoint, _ = build_checkpoint("minilm", Path(args.cache_dir), use_trained=not args.no_trained)
    reference = Reference(checkpoint, args.threads)
    inside = _timed_method(reference.model.token_rep_layer.bert_layer.model, "forward")
    texts, ner = workload.texts(), workload.ner()
    total = _median_seconds(lambda: reference.predict(texts, workload.labels, ner, batch_size=args.batch_size), args.repeats)
    inside[0] = 0.0
    reference.predict(texts, workload.labels, ner, batch_size=args.batch_size)
    return {"system": "glirel (PyTorch)", "total_s": total, "encoder_s": inside[0], "encoder_pct": 100.0 * inside[0] / total}


def runtime_split(args, workload: W.Workload) -> dict:
    from benchmarks.ort_profile import graph_breakdown
    from benchmarks.systems import Runtime
    from glirel_runtime.validation import check_item, check_labels

    artifact, _ = build_artifact("minilm", "fp32-opt", Path(args.cache_dir), not args.no_trained, log=lambda *a: None)
    runtime = Runtime(artifact, args.threads)
    inside = _timed_method(runtime.model.session, "run")
    texts, ner = workload.texts(), workload.ner()
    total = _median_seconds(lambda: runtime.predict(texts, workload.labels, ner, batch_size=args.batch_size), args.repeats)
    inside[0] = 0.0
    runtime.predict(texts, workload.labels, ner, batch_size=args.batch_size)
    graph_s = inside[0]
    # the same batches the runtime runs: sorted by length, `batch_size` per batch
    model = runtime.model
    spec = check_labels(workload.labels)
    items = [check_item(t, n) for t, n in zip(texts, ner)]
    encoded = sorted(model.features.encode(spec.labels, [i.words for i in items], [i.spans for i in items]),
                     key=lambda e: e.input_ids.shape[0])
    batches = [model.features.pad(encoded[i:i + args.batch_size]) for i in range(0, len(encoded), args.batch_size)]
    node_ms = graph_breakdown(artifact / "model.onnx", batches, args.threads, runs=2)["node_ms"]
    encoder = graph_s * node_ms.get("encoder", 0.0) / sum(node_ms.values())
    return {"system": "runtime fp32", "total_s": total, "graph_s": graph_s, "encoder_s": encoder,
            "encoder_pct": 100.0 * encoder / total,
            "padding_pct": 100.0 * (1 - sum(e.input_ids.shape[0] for e in encoded) / sum(b["input_ids"].size for b in batches))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["both", "glirel", "runtime"], default="both")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cache-dir", default="/tmp/glirel-speed-cache")
    parser.add_argument("--sentences", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-trained", action="store_true", help="ignore checkpoints/glirel-minilm-redocred")
    args = parser.parse_args(argv)
    if args.system == "both":  # one process per system
        passed = list(argv if argv is not None else sys.argv[1:])
        for system in ("glirel", "runtime"):
            subprocess.run([sys.executable, "-m", "benchmarks.time_split", *passed, "--system", system], check=True, cwd=REPO)
        return 0
    data_dir = Path(args.data_dir)
    if not (data_dir / "fewrel" / "val_wiki.json").is_file():
        print(f"no FewRel data under {data_dir}: generated workload", file=sys.stderr)
        data_dir = None
    workload = W.fewrel_workload(data_dir, args.sentences, m=10)
    split = glirel_split(args, workload) if args.system == "glirel" else runtime_split(args, workload)
    print(json.dumps({**split, "sentences": args.sentences, "threads": args.threads, "workload": workload.source}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
