"""int8 quantisation of an exported GLiREL graph (onnxruntime.quantization).

The default recipe (what ``glirel-export --quantize int8`` writes): weights int8 **per
output channel**, activations dynamic uint8, for every MatMul of the encoder (FFN output
projections and, in an unfused graph, the attention products included) and the head's weight
MatMuls (label FFN, span and pair FFNs). The BiLSTM, the element-wise nodes and the all-pairs
scorer stay fp32; the scorer is then looped over head entities (`pair_head.py`). On the
default model (FewRel val_wiki, m = 10 unseen relations, 100 sentences per relation, 5 seeds,
`benchmarks/zero_shot.py --tasks fewrel --m 10`; the std over seeds is about 6 points): fp32 47.81,
fp16 47.82, int8 with the default recipe 47.57. On the previous default weights, m = 5 / 10 / 15:

========================================  =========  ==========  ==========
recipe                                    m = 5      m = 10      m = 15
========================================  =========  ==========  ==========
fp16 (fp32 within 0.2 at m = 10)          58.35      45.70       37.41
int8, default recipe                      57.90      45.81       37.43
========================================  =========  ==========  ==========

On an Intel Xeon with AMX-INT8 (2 threads, 128 FewRel-shaped sentences, round-robin against the
plain fp32 graph in `python -m benchmarks.speed`): 279 vs 130 sentences/s (3.16× `glirel`), top-1
label identical for 92.9% of pairs; on the ``--optimize`` graph 235 sentences/s. ``encoder-only``
(an earlier default: encoder MatMuls except the FFN output projections, whose inputs come straight
out of GELU) gave 171 vs 114 against the ``--optimize`` fp32 graph in an earlier run.
`python -m benchmarks.int8_recipes` ranks the same way (``all-int8``, which also quantises the
all-pairs scorer, 2.09× fp32 vs 1.44× for ``encoder-only``, on the ``--optimize`` graph). Static
(QDQ) recipes keep the dense all-pairs scorer (`pair_head.is_qdq_graph`); on the plain graph of the
default model they ran at 1.28× fp32 (``static``, top-1 label identical for 91.9% of pairs, FewRel F1
50.50 vs 50.89) and 1.65× (``static-all``, 75.4%, F1 43.92), so the dynamic default stays.

`Int8Recipe` chooses the scope: the FFN output projections (``ffn_output``), the head
(``head``), the attention products of an unfused graph (``attention``), and static
quantisation (``mode="static"``: activation ranges calibrated on sample inputs, QDQ format,
no per-call quantisation of activations). Compare recipes on F1, agreement with fp32 and
speed with ``python -m benchmarks.int8_recipes``.

AVX2 without VNNI computes u8 × s8 products through int16 (``vpmaddubsw``), which can
saturate; ``reduce_range=True`` (7-bit weights) avoids it, at some accuracy, for graphs
that will run on such CPUs. SmoothQuant-style smoothing of the FFN outputs' inputs did not
bring the ``ffn_output`` recipe's agreement back (``benchmarks.int8_recipes``'s
``smooth-*`` rows).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .pair_head import find_dense_pair_head, has_blocked_pair_head

ENCODER_INPUTS = {"input_ids", "attention_mask"}
PAIR_INPUTS = {"span_index", "pair_index"}


def classify_nodes(graph) -> dict[str, str]:
    """Node name → "encoder" / "pairs_scorer" / "head_other", by which graph inputs the node depends on.

    - ``encoder``: computable from ``input_ids``/``attention_mask`` alone (the transformer);
    - ``pairs_scorer``: depends on ``span_index`` or ``pair_index`` (span/pair vectors, scoring);
    - ``head_other``: the rest (first-subtoken pooling, BiLSTM, label FFN).

    Works on any topologically sorted ONNX graph, fused or not.

    Example:
        >>> classes = classify_nodes(onnx.load("model.onnx").graph)  # doctest: +SKIP
        >>> sorted(set(classes.values()))  # doctest: +SKIP
        ['encoder', 'head_other', 'pairs_scorer']
    """
    depends: dict[str, set[str]] = {i.name: {i.name} for i in graph.input}
    initializers = {t.name for t in graph.initializer}
    classes = {}
    for node in graph.node:
        deps: set[str] = set()
        for name in node.input:
            if name and name not in initializers:
                deps |= depends.get(name, set())
        for name in node.output:
            depends[name] = deps
        if deps and deps <= ENCODER_INPUTS:
            classes[node.name] = "encoder"
        elif deps & PAIR_INPUTS:
            classes[node.name] = "pairs_scorer"
        else:
            classes[node.name] = "head_other"
    return classes


GELU_OPS = {"Gelu", "BiasGelu", "FastGelu", "QuickGelu", "Erf"}
GELU_ARITHMETIC = {"Mul", "Add", "Div"}  # what an exported erf-GELU is decomposed into


def reads_gelu_output(node, producers: dict, depth: int = 4) -> bool:
    """Whether `node`'s first input is a GELU's output (fused, or decomposed into Erf + arithmetic)."""
    frontier = [node.input[0]]
    for _ in range(depth):
        upstream = []
        for name in frontier:
            producer = producers.get(name)
            if producer is None:
                continue
            if producer.op_type in GELU_OPS:
                return True
            if producer.op_type in GELU_ARITHMETIC:
                upstream.extend(producer.input)
        frontier = upstream
    return False


def int8_exclusions(graph) -> dict[str, list[str]]:
    """Nodes kept fp32 by the recipe: the head, and the encoder's MatMuls that read a GELU output."""
    classes = classify_nodes(graph)
    producers = {output: node for node in graph.node for output in node.output}
    head = sorted(name for name, cls in classes.items() if cls != "encoder")
    after_gelu = sorted(n.name for n in graph.node
                        if n.op_type == "MatMul" and classes.get(n.name) == "encoder" and reads_gelu_output(n, producers))
    return {"head": head, "ffn_output": after_gelu}


@dataclass(frozen=True)
class Int8Recipe:
    """What to quantise, and how.

    * ``mode``: "dynamic" (activation ranges computed per call: no calibration) or "static"
      (ranges calibrated once on sample inputs, QDQ format);
    * ``ffn_output``: quantise the FFN output projections too (inputs from GELU);
    * ``head``: quantise the head's MatMuls (label FFN, pair builder and scorer);
    * ``attention``: quantise activation × activation MatMuls (the attention products of an
      unfused graph; a fused ``Attention`` node quantises its projections either way);
    * ``per_channel``, ``reduce_range``, ``weight_type`` ("int8" / "uint8"): weight format;
    * ``calibration``: "minmax", "percentile" or "entropy" (static only).

    Example:
        >>> Int8Recipe().describe()
        'dynamic; weights int8 per channel; encoder MatMuls except FFN output projections; head fp32'
        >>> DEFAULT_RECIPE.describe()
        'dynamic; weights int8 per channel; encoder MatMuls with FFN output projections, attention products; head int8'
        >>> RECIPES["static-all"].describe()
        'static (minmax calibration); weights int8 per channel; encoder MatMuls with FFN output projections, attention products; head int8'
    """

    mode: str = "dynamic"
    ffn_output: bool = False
    head: bool = False
    attention: bool = False
    per_channel: bool = True
    reduce_range: bool = False
    weight_type: str = "int8"
    calibration: str = "minmax"

    def __post_init__(self) -> None:
        for name, value, allowed in (("mode", self.mode, ("dynamic", "static")), ("weight_type", self.weight_type, ("int8", "uint8")),
                                     ("calibration", self.calibration, ("minmax", "percentile", "entropy"))):
            if value not in allowed:
                raise ValueError(f"Int8Recipe.{name} must be one of {allowed}, got {value!r}")

    def describe(self) -> str:
        mode = self.mode if self.mode == "dynamic" else f"static ({self.calibration} calibration)"
        weights = f"weights {self.weight_type} {'per channel' if self.per_channel else 'per tensor'}" + (", 7-bit" if self.reduce_range else "")
        scope = "encoder MatMuls " + ("with" if self.ffn_output else "except") + " FFN output projections"
        if self.attention:
            scope += ", attention products"
        return f"{mode}; {weights}; {scope}; head {'int8' if self.head else 'fp32'}"


DEFAULT_RECIPE = Int8Recipe(ffn_output=True, head=True, attention=True)
RECIPES: dict[str, Int8Recipe] = {
    "default": DEFAULT_RECIPE,
    "encoder-only": Int8Recipe(),
    "ffn-int8": Int8Recipe(ffn_output=True),
    "head-int8": Int8Recipe(head=True),
    "all-int8": Int8Recipe(ffn_output=True, head=True, attention=True),
    "reduce-range": Int8Recipe(reduce_range=True),
    "uint8-weights": Int8Recipe(weight_type="uint8"),
    "static": Int8Recipe(mode="static"),
    "static-ffn": Int8Recipe(mode="static", ffn_output=True),
    "static-all": Int8Recipe(mode="static", ffn_output=True, head=True, attention=True),
    "static-all-percentile": Int8Recipe(mode="static", ffn_output=True, head=True, attention=True, calibration="percentile"),
}
"""Named recipes (the names `benchmarks.int8_recipes` takes)."""


class _Inputs:
    """onnxruntime's CalibrationDataReader over a list of graph-input dicts."""

    def __init__(self, batches: Iterable[dict[str, np.ndarray]]):
        self._batches = iter(list(batches))

    def get_next(self) -> Optional[dict[str, np.ndarray]]:
        return next(self._batches, None)


def quantize_int8(source: Path, target: Path, recipe: Int8Recipe = DEFAULT_RECIPE,
                  calibration_inputs: Optional[Sequence[dict[str, np.ndarray]]] = None) -> dict[str, object]:
    """Write an int8 copy of the ONNX graph `source` to `target` following `recipe`; return what was done.

    `calibration_inputs`: graph-input dicts (e.g. `FeatureBuilder.pad` of sample sentences),
    required by static recipes.

    Example:
        >>> quantize_int8(Path("fp32/model.onnx"), Path("int8/model.onnx"))["ffn_output_matmuls_kept_fp32"]  # doctest: +SKIP
        6
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    graph = onnx.load(str(source), load_external_data=False).graph
    if has_blocked_pair_head(graph):
        raise ValueError(f"{source}: the all-pairs scorer is a Loop (blocked); quantise the dense graph "
                         "(glirel-export --pair-head dense) and block the result with pair_head.block_pair_head_file; "
                         "glirel-export --quantize int8 does both")
    excluded = int8_exclusions(graph)
    classes = classify_nodes(graph)
    exclude = [] if recipe.head else list(excluded["head"])
    if not recipe.ffn_output:
        exclude += excluded["ffn_output"]
    if recipe.head:  # the head's element-wise and LSTM nodes stay fp32; only its MatMuls are quantised
        exclude += [name for name, cls in classes.items() if cls != "encoder" and name not in _matmul_names(graph)]
    exclude += _vector_weight_matmuls(graph)
    all_pairs = find_dense_pair_head(graph)
    if all_pairs is not None:  # the all-pairs scorer stays fp32, to be looped (pair_head.py)
        exclude.append(all_pairs["remove"][-1].name)
    if not recipe.attention:
        exclude += _activation_products(graph)
    weight_type = QuantType.QInt8 if recipe.weight_type == "int8" else QuantType.QUInt8
    # DefaultTensorType: the transformer optimizer's com.microsoft ops carry no type information
    # the quantiser can infer. MatMulConstBOnly: weights only, unless the attention products are wanted.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": not recipe.attention}
    if recipe.mode == "dynamic":
        # `Attention` exists only in --optimize graphs (→ QAttention)
        quantize_dynamic(str(source), str(target), weight_type=weight_type, per_channel=recipe.per_channel,
                         reduce_range=recipe.reduce_range, op_types_to_quantize=["MatMul", "Gemm", "Attention"],
                         nodes_to_exclude=exclude, extra_options=extra)
    else:
        if not calibration_inputs:
            raise ValueError("a static int8 recipe needs calibration_inputs (graph inputs of sample sentences)")
        method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                  "entropy": CalibrationMethod.Entropy}[recipe.calibration]
        quantize_static(str(source), str(target), _Inputs(calibration_inputs), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["MatMul", "Gemm"], per_channel=recipe.per_channel, reduce_range=recipe.reduce_range,
                        activation_type=QuantType.QUInt8, weight_type=weight_type, nodes_to_exclude=exclude,
                        calibrate_method=method, extra_options={**extra, "ActivationSymmetric": False, "WeightSymmetric": True})
    return {"recipe": recipe.describe(), "weights": f"{recipe.weight_type}, per {'output channel' if recipe.per_channel else 'tensor'}",
            "activations": "dynamic uint8" if recipe.mode == "dynamic" else f"static uint8 ({recipe.calibration})",
            "scope": ("encoder MatMuls" + ("" if recipe.ffn_output else " except FFN output projections")
                      + ("; head MatMuls int8" if recipe.head else "; head kept fp32")),
            "head_nodes_kept_fp32": 0 if recipe.head else len(excluded["head"]),
            "ffn_output_matmuls_kept_fp32": 0 if recipe.ffn_output else len(excluded["ffn_output"])}


def _matmul_names(graph) -> set[str]:
    return {n.name for n in graph.node if n.op_type in ("MatMul", "Gemm")}


def _vector_weight_matmuls(graph) -> list[str]:
    """MatMuls by a constant vector (e.g. the scorer's bias term): no output channels to quantise per channel."""
    shapes = {t.name: len(t.dims) for t in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1 and shapes.get(n.input[1], 2) != 2]


def _activation_products(graph) -> list[str]:
    """MatMuls of two activations (attention scores and context in an unfused graph, the scorer's pair × label product)."""
    constants = {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and not any(i in constants for i in n.input)]
