"""int8 recipes against fp32 on the default model: F1, top-1 agreement and speed, paired on the same sentences.

Reproduces the "tried and not adopted" table in `glirel_export/quantize.py`. Every
recipe is quantised from the same `--optimize` fp32 export of the default
checkpoint (the speed harness's cache), then scored on the speed workload's first
512 FewRel-shaped sentences (m = 10) and timed on 256 of them:

- ``current``: `glirel_export.quantize` (encoder only, FFN output projections and head fp32);
- ``ffn-int8``: the FFN output projections quantised too;
- ``smooth-A``: ``ffn-int8`` after SmoothQuant-style smoothing of those projections'
  inputs, with migration strength A: a per-channel ``Mul(1/s)`` before each MatMul and
  s folded into its weight rows, s_j = max|X_j|^A / max|W_j|^(1−A), max|X_j| over 128
  calibration sentences (another seed than the scored ones);
- ``reduce-range``: ``current`` with 7-bit weights (AVX2 without VNNI can saturate u8×s8 in int16);
- ``uint8-weights``: ``current`` with uint8 weights.

Usage (from the repository root; about 3 minutes for all recipes on 2 cores):

    python -m benchmarks.int8_recipes
    python -m benchmarks.int8_recipes --recipes current smooth-0.5
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads as W  # noqa: E402
from benchmarks.models import build_artifact  # noqa: E402
from benchmarks.speed import fewrel_f1, score_agreement  # noqa: E402

RECIPES = ["current", "ffn-int8", "smooth-0.5", "smooth-0.8", "smooth-0.2", "reduce-range", "uint8-weights"]


def ffn_output_max(artifact: Path, matmuls: list, workload: W.Workload, threads: int) -> dict[str, np.ndarray]:
    """Per input channel, max |X| of each FFN output MatMul's input over the workload's real subwords."""
    import onnx
    from onnx import helper

    from glirel_runtime import GLiREL
    from glirel_runtime.validation import check_item

    model = onnx.load(str(artifact / "model.onnx"))
    for node in matmuls:
        model.graph.output.append(helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(artifact, tmp, dirs_exist_ok=True)
        onnx.save(model, str(Path(tmp) / "model.onnx"))
        runtime = GLiREL(tmp, providers="cpu", threads=threads)
        items = [check_item(t, n) for t, n in zip(workload.texts(), workload.ner())]
        encoded = runtime.features.encode(workload.labels, [i.words for i in items], [i.spans for i in items])
        names = [o.name for o in runtime.session.get_outputs()]
        largest: dict[str, np.ndarray] = {}
        for start in range(0, len(encoded), 32):
            inputs = runtime.features.pad(encoded[start:start + 32])
            outputs = dict(zip(names, runtime.session.run(None, inputs)))
            real = inputs["attention_mask"].astype(bool)  # [B, S]
            for node in matmuls:
                channel_max = np.abs(outputs[node.input[0]][real]).max(0)  # [4D]
                largest[node.input[0]] = np.maximum(largest.get(node.input[0], channel_max), channel_max)
    return largest


def smoothed_graph(artifact: Path, matmuls: list, input_max: dict[str, np.ndarray], strength: float):
    """The fp32 graph with each FFN output MatMul's input divided per channel by s and its weight rows multiplied by s."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(artifact / "model.onnx"))
    weights = {t.name: t for t in model.graph.initializer}
    nodes = list(model.graph.node)
    for original in matmuls:
        node = next(n for n in nodes if n.name == original.name)
        weight = numpy_helper.to_array(weights[node.input[1]])  # [4D, D]
        scale = (np.maximum(input_max[node.input[0]], 1e-5) ** strength
                 / np.maximum(np.abs(weight).max(1), 1e-5) ** (1 - strength))  # [4D]
        weights[node.input[1]].CopyFrom(numpy_helper.from_array((weight * scale[:, None]).astype(np.float32), node.input[1]))
        inverse = numpy_helper.from_array((1.0 / scale).astype(np.float32), node.name + "_smooth_inverse")
        model.graph.initializer.append(inverse)
        smoothed = node.input[0] + "_smoothed_for_" + node.name
        model.graph.node.insert(list(model.graph.node).index(node),
                                helper.make_node("Mul", [node.input[0], inverse.name], [smoothed], name=node.name + "_smooth"))
        node.input[0] = smoothed
    return model


def quantize(source: Path, target: Path, exclude: list[str], **options) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    settings = {"weight_type": QuantType.QInt8, "per_channel": True, **options}
    quantize_dynamic(str(source), str(target), op_types_to_quantize=["MatMul", "Gemm", "Attention"], nodes_to_exclude=exclude,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}, **settings)


def build_recipe(name: str, artifact: Path, target: Path, calibration: W.Workload, threads: int) -> None:
    """Write the `name` recipe's int8 artifact to `target` (a copy of `artifact` with another model.onnx)."""
    import onnx
    from onnxruntime.quantization import QuantType

    from glirel_export.quantize import int8_exclusions

    graph = onnx.load(str(artifact / "model.onnx")).graph
    excluded = int8_exclusions(graph)
    ffn_output = [n for n in graph.node if n.name in set(excluded["ffn_output"])]
    shutil.copytree(artifact, target, dirs_exist_ok=True)
    source = artifact / "model.onnx"
    if name.startswith("smooth-"):
        smoothed = smoothed_graph(artifact, ffn_output, ffn_output_max(artifact, ffn_output, calibration, threads),
                                  float(name.split("-", 1)[1]))
        source = target / "smoothed.onnx"
        onnx.save(smoothed, str(source))
    options = {"reduce-range": {"reduce_range": True}, "uint8-weights": {"weight_type": QuantType.QUInt8}}.get(name, {})
    keep_ffn_output = name in ("current", "reduce-range", "uint8-weights")
    quantize(source, target / "model.onnx", excluded["head"] + (excluded["ffn_output"] if keep_ffn_output else []), **options)
    (target / "smoothed.onnx").unlink(missing_ok=True)


def measure(artifact: Path, scored: W.Workload, timed_sentences: int, threads: int) -> tuple[list, float]:
    """(pair scores of `scored`, median sentences/s of 3 passes over its first `timed_sentences`)."""
    from glirel_runtime import GLiREL

    model = GLiREL(artifact, providers="cpu", threads=threads)
    scores = model.score_pairs(scored.texts(), scored.labels, scored.ner())
    texts, ner = scored.texts()[:timed_sentences], scored.ner()[:timed_sentences]
    model.batch_predict_relations(texts, scored.labels, ner=ner)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        model.batch_predict_relations(texts, scored.labels, ner=ner)
        seconds.append(time.perf_counter() - started)
    return scores, timed_sentences / sorted(seconds)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="*", default=RECIPES, choices=RECIPES)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cache-dir", default="/tmp/glirel-speed-cache")
    parser.add_argument("--sentences", type=int, default=512, help="scored FewRel-shaped sentences")
    parser.add_argument("--timed-sentences", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    if not (data_dir / "fewrel" / "val_wiki.json").is_file():
        raise SystemExit(f"no FewRel data at {data_dir / 'fewrel' / 'val_wiki.json'}: F1 needs the real sentences (--data-dir)")
    artifact, info = build_artifact("minilm", "fp32-opt", Path(args.cache_dir), use_trained=True, log=print)
    print(f"checkpoint: {info['checkpoint_note']}")
    scored = W.fewrel_workload(data_dir, args.sentences, m=10)
    calibration = W.fewrel_workload(data_dir, 128, m=10, seed=7)
    reference, rate = measure(artifact, scored, args.timed_sentences, args.threads)
    print(f"{'recipe':<16}{'F1':>7}{'top-1 same':>12}{'sentences/s':>13}")
    print(f"{'fp32':<16}{fewrel_f1(reference, scored):>7.2f}{'':>12}{rate:>13.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.recipes:
            target = Path(tmp) / name
            build_recipe(name, artifact, target, calibration, args.threads)
            scores, rate = measure(target, scored, args.timed_sentences, args.threads)
            agreement = score_agreement(reference, scores)
            print(f"{name:<16}{fewrel_f1(scores, scored):>7.2f}{agreement['top1_identical_pct']:>11.1f}%{rate:>13.1f}", flush=True)
            shutil.rmtree(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
