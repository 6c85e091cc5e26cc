"""OpenVINO bf16 on one latency stream (the default) against two throughput streams, per workload shape.

`providers=("openvino", {"streams": 2})` runs a call's batches two at a time, each stream on half
the threads, overlapped with tokenizing and decoding. Whether that pays depends on the shape of
the work: short sentences with few entities, or long texts and many entities. This benchmark times
both settings, each in its own process, round-robin, on FewRel-shaped, Wiki-ZSL-shaped and
entity-sweep workloads (fixed 120-word texts), and prints sentences/s and their ratio.

Usage (from the repository root; OpenVINO installed; about two minutes on 2 cores):

    python -m benchmarks.openvino_streams
    python -m benchmarks.openvino_streams --entities 5 50 --repeats 9
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads as W  # noqa: E402
from benchmarks.machine import announce_machine  # noqa: E402
from benchmarks.models import build_artifact  # noqa: E402
from benchmarks.systems import SystemProcess, SystemSpec, round_robin  # noqa: E402


def workloads(data_dir, sentences: int, entities: list[int], entity_texts: int) -> dict[str, W.Workload]:
    """The shapes compared: FewRel-shaped calls of `sentences` and half that, Wiki-ZSL-shaped, and
    `entity_texts` 120-word texts per entity count."""
    out = {f"FewRel-shaped, {sentences} per call": W.fewrel_workload(data_dir, sentences, m=10),
           f"FewRel-shaped, {sentences // 2} per call": W.fewrel_workload(data_dir, sentences // 2, m=10),
           f"Wiki-ZSL-shaped, {sentences} per call": W.wikizsl_workload(data_dir, sentences, m=10)}
    for count in entities:
        out[f"120-word texts, {count} entities, {entity_texts} per call"] = W.entity_sweep_workload(data_dir, count, entity_texts, m=10)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--entities", type=int, nargs="*", default=[3, 8, 15, 20, 50])
    parser.add_argument("--entity-texts", type=int, default=64, help="texts per call for each entity count")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cache-dir", default="/tmp/glirel-speed-cache")
    parser.add_argument("--no-trained", action="store_true", help="ignore checkpoints/glirel-minilm-fewrel")
    args = parser.parse_args(argv)
    from glirel_runtime.engines import openvino_available

    if not openvino_available():
        print('OpenVINO is not installed: pip install "glirel-onnx[openvino]"', file=sys.stderr)
        return 2
    announce_machine()
    data_dir = Path(args.data_dir) if (Path(args.data_dir) / "fewrel" / "val_wiki.json").is_file() else None
    artifact, _ = build_artifact("minilm", "fp32", Path(args.cache_dir), not args.no_trained, log=print)
    options = {"providers": "openvino", "precision": "bf16"}
    specs = {"one stream (default)": SystemSpec("runtime", str(artifact), args.threads, options),
             "two streams": SystemSpec("runtime", str(artifact), args.threads, {**options, "openvino_streams": 2})}
    print(f"runtime OpenVINO bf16, {args.threads} threads, m = 10, batches of 32; sentences/s, median of {args.repeats}")
    print(f"{'workload':>46} | " + " | ".join(f"{name:>20}" for name in specs) + " | two / one")
    systems = [SystemProcess(name, spec) for name, spec in specs.items()]
    try:
        for title, workload in workloads(data_dir, args.sentences, args.entities, args.entity_texts).items():
            inputs = (workload.texts(), workload.labels, workload.ner())
            timings = round_robin(systems, inputs, {"batch_size": 32}, args.repeats)
            rates = [len(workload.sentences) / timings[s.name]["median_s"] for s in systems]
            print(f"{title:>46} | " + " | ".join(f"{rate:>20.1f}" for rate in rates) + f" | {rates[1] / rates[0]:.2f}×",
                  flush=True)
    finally:
        for system in systems:
            system.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
