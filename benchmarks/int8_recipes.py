"""int8 recipes against fp32 on one model: FewRel macro-F1, agreement with fp32, and speed side by side.

Every recipe (`glirel_export.quantize.RECIPES`, plus ``smooth-A``) is quantised from the
same fp32 artifact, then scored on the speed workload's first ``--sentences``
FewRel-shaped sentences (m = 10) and timed on ``--timed-sentences`` of them, each
variant in its own process, round-robin (`benchmarks.systems`):

- ``default``: what ``glirel-export --quantize int8`` writes (encoder minus FFN output projections, dynamic);
- ``ffn-int8`` / ``head-int8`` / ``all-int8``: the FFN output projections / the head / everything quantised too;
- ``static*``: calibrated activation ranges (QDQ), on 128 other sentences;
- ``reduce-range`` / ``uint8-weights``: weight formats for AVX2 CPUs without VNNI;
- ``smooth-A``: ``ffn-int8`` after SmoothQuant-style smoothing of the FFN output projections'
  inputs, migration strength A: a per-channel ``Mul(1/s)`` before each MatMul and s folded
  into its weight rows, s_j = max|X_j|^A / max|W_j|^(1−A), max|X_j| over the calibration sentences.

Usage (from the repository root; a few minutes on 2 cores):

    python -m benchmarks.int8_recipes                                  # the default model's encoder, speed cache
    python -m benchmarks.int8_recipes --artifact FP32_ARTIFACT --keep /tmp/recipes --recipes default ffn-int8 static-all
    python -m benchmarks.int8_recipes --openvino --recipes default static static-all   # the same recipes on OpenVINO too
    python benchmarks/zero_shot.py --model /tmp/recipes/static-all --m 10 --tasks fewrel   # the full F1 protocol

``--artifact`` takes an fp32 artifact (``glirel-export CKPT OUT --optimize --pair-head dense``: the recipes
quantise the dense all-pairs scorer, then loop it as the export does); ``--keep`` keeps
each recipe's artifact for `benchmarks/zero_shot.py`. The F1 printed here is one label set of
the speed workload: use zero_shot.py's five seeds to decide.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads as W  # noqa: E402
from benchmarks.agreement import fewrel_f1, score_agreement  # noqa: E402
from benchmarks.machine import announce_machine  # noqa: E402
from benchmarks.models import build_artifact  # noqa: E402
from benchmarks.systems import SystemProcess, SystemSpec, round_robin  # noqa: E402
from glirel_export.quantize import RECIPES as QUANTIZE_RECIPES  # noqa: E402
from glirel_export.quantize import Int8Recipe  # noqa: E402

SMOOTHING = ["smooth-0.5", "smooth-0.8"]
RECIPES = list(QUANTIZE_RECIPES) + SMOOTHING


def graph_inputs(artifact: Path, workload: W.Workload, batch_size: int = 32) -> list[dict[str, np.ndarray]]:
    """The padded graph inputs of the workload's sentences, `batch_size` per batch (as the runtime batches them)."""
    from glirel_runtime import GLiREL
    from glirel_runtime.validation import check_item

    runtime = GLiREL(artifact, providers="cpu")
    items = [check_item(t, n) for t, n in zip(workload.texts(), workload.ner())]
    encoded = sorted(runtime.features.encode(workload.labels, [i.words for i in items], [i.spans for i in items]),
                     key=lambda e: e.input_ids.shape[0])
    return [runtime.features.pad(encoded[k:k + batch_size]) for k in range(0, len(encoded), batch_size)]


def ffn_output_max(artifact: Path, matmuls: list, calibration: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per input channel, max |X| of each FFN output MatMul's input over the calibration batches' real subwords."""
    import onnx
    from onnx import helper

    from glirel_runtime.providers import create_session

    model = onnx.load(str(artifact / "model.onnx"))
    for node in matmuls:
        model.graph.output.append(helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model, str(Path(tmp) / "model.onnx"))
        session = create_session(Path(tmp) / "model.onnx", "cpu")
        wanted = [node.input[0] for node in matmuls]
        largest: dict[str, np.ndarray] = {}
        for inputs in calibration:
            outputs = dict(zip(wanted, session.run(wanted, inputs)))
            real = inputs["attention_mask"].astype(bool)  # [B, S]
            for name in wanted:
                channel_max = np.abs(outputs[name][real]).max(0)  # [4D]
                largest[name] = np.maximum(largest.get(name, channel_max), channel_max)
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


def build_recipe(name: str, artifact: Path, target: Path, calibration: list[dict[str, np.ndarray]]) -> str:
    """Write the `name` recipe's int8 artifact to `target` (a copy of `artifact` with another model.onnx); its description."""
    import onnx

    from glirel_export.pair_head import block_pair_head_file
    from glirel_export.quantize import int8_exclusions, quantize_int8

    shutil.copytree(artifact, target, dirs_exist_ok=True)
    source = artifact / "model.onnx"
    recipe = QUANTIZE_RECIPES.get(name)
    if name.startswith("smooth-"):
        graph = onnx.load(str(source)).graph
        ffn_output = [n for n in graph.node if n.name in set(int8_exclusions(graph)["ffn_output"])]
        strength = float(name.split("-", 1)[1])
        smoothed = smoothed_graph(artifact, ffn_output, ffn_output_max(artifact, ffn_output, calibration), strength)
        source = target / "smoothed.onnx"
        onnx.save(smoothed, str(source))
        recipe = Int8Recipe(ffn_output=True)
    quantize_int8(source, target / "model.onnx", recipe, calibration)
    block_pair_head_file(target / "model.onnx")  # as glirel-export --quantize int8 does
    (target / "smoothed.onnx").unlink(missing_ok=True)
    return recipe.describe() + (f", smoothed (A = {name.split('-', 1)[1]})" if name.startswith("smooth-") else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="*", default=RECIPES, choices=RECIPES)
    parser.add_argument("--artifact", default=None, help="fp32 artifact exported with --optimize --pair-head dense (default: the speed cache's MiniLM)")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cache-dir", default="/tmp/glirel-speed-cache")
    parser.add_argument("--sentences", type=int, default=512, help="scored FewRel-shaped sentences")
    parser.add_argument("--timed-sentences", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", default=None, help="keep each recipe's artifact under this folder")
    parser.add_argument("--openvino", action="store_true", help="also run fp32 (bf16) and every recipe OpenVINO can "
                                                                 "compile on OpenVINO (the static QDQ recipes, for instance)")
    parser.add_argument("--openvino-precision", default="f32", choices=["f32", "bf16"],
                        help="OpenVINO's precision for what the recipes leave in floating point")
    args = parser.parse_args(argv)
    announce_machine()
    data_dir = Path(args.data_dir)
    if not (data_dir / "fewrel" / "val_wiki.json").is_file():
        raise SystemExit(f"no FewRel data at {data_dir / 'fewrel' / 'val_wiki.json'}: F1 needs the real sentences (--data-dir)")
    if args.artifact:
        artifact = blocked = Path(args.artifact)
        print(f"model: {artifact}")
    else:  # the recipes quantise the dense graph; the fp32 row is the blocked graph users run
        artifact, info = build_artifact("minilm", "fp32-opt-dense", Path(args.cache_dir), use_trained=True, log=print)
        blocked, _ = build_artifact("minilm", "fp32-opt", Path(args.cache_dir), use_trained=True, log=print)
        print(f"model: {info['checkpoint_note']}")
    scored = W.fewrel_workload(data_dir, args.sentences, m=10)
    calibration = graph_inputs(artifact, W.fewrel_workload(data_dir, 128, m=10, seed=7))
    from benchmarks.systems import runtime_model

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="int8-recipes-"))
    try:
        built = {"fp32": blocked}
        for name in args.recipes:
            built[name] = folder / name
            print(f"built {name}: {build_recipe(name, artifact, folder / name, calibration)}", flush=True)
        variants = {name: (path, {}) for name, path in built.items()}  # row → (artifact, Runtime options)
        if args.openvino:
            variants["fp32 [OpenVINO bf16]"] = (blocked, {"providers": "openvino", "precision": "bf16"})
            variants.update({f"{name} [OpenVINO {args.openvino_precision}]": (path, {"providers": "openvino",
                                                                                     "precision": args.openvino_precision})
                             for name, path in built.items() if name != "fp32"})
        scores = {}
        for name, (path, options) in list(variants.items()):
            try:
                model = runtime_model(path, args.threads, options.get("providers", "cpu"), options.get("precision", "auto"))
            except RuntimeError as error:  # OpenVINO cannot compile this recipe's graph
                print(f"{name}: left out ({error})", flush=True)
                del variants[name]
                continue
            scores[name] = model.score_pairs(scored.texts(), scored.labels, scored.ner())
        texts, ner = scored.texts()[:args.timed_sentences], scored.ner()[:args.timed_sentences]
        systems = [SystemProcess(name, SystemSpec("runtime", str(path), args.threads, options))
                   for name, (path, options) in variants.items()]
        try:
            timings = round_robin(systems, (texts, scored.labels, ner), {"batch_size": 32}, args.repeats)
        finally:
            for system in systems:
                system.close()
        rate = {name: len(texts) / t["median_s"] for name, t in timings.items()}
        print(f"\n{len(scored.sentences)} FewRel-shaped sentences scored (m = 10), {len(texts)} timed, {args.threads} threads, "
              f"each variant in its own process, round-robin, median of {args.repeats}")
        print(f"{'recipe':<28}{'F1':>7}{'top-1 same':>12}{'max |Δp|':>10}{'sentences/s':>13}{'× fp32':>8}")
        for name in variants:
            agreement = score_agreement(scores["fp32"], scores[name])
            print(f"{name:<28}{fewrel_f1(scores[name], scored):>7.2f}{agreement['top1_identical_pct']:>11.1f}%"
                  f"{agreement['max_abs_diff']:>10.3f}{rate[name]:>13.1f}{rate[name] / rate['fp32']:>8.2f}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
