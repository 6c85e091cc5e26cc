"""int8 dynamic quantisation of an exported GLiREL graph (onnxruntime.quantization).

Recipe: weights int8 **per output channel**, activations dynamic uint8, for the
encoder's MatMuls **except the FFN output projections** (their inputs come
straight out of GELU, whose long tail uint8 cannot hold). The head (first-subtoken
pooling, BiLSTM, label FFN, pair builder, scorer) stays fp32: it is a few percent
of the time. Measured on the default MiniLM model, FewRel val_wiki, m unseen
relations, 100 sentences per relation, 5 seeds (`benchmarks/zero_shot.py`; the std over
seeds is 5–7 points, so single-point differences are within noise):

========================================  ============  ============
recipe                                    F1, m = 5     F1, m = 10
========================================  ============  ============
fp32                                      58.13         40.95
per tensor, every MatMul (before)         53.53         38.98
per channel, encoder                      57.26         38.50
per channel, encoder minus FFN outputs    56.71         40.46
========================================  ============  ============

Reproduce a row with `glirel-export CKPT OUT --optimize --quantize int8` (or without
`--quantize` for fp32) then `python benchmarks/zero_shot.py --model OUT --m 5 10 --tasks fewrel
--per-relation 100`. The two middle rows are earlier versions of this recipe: per tensor is
what `glirel_export/export.py` did at commit 9929696, per channel on the whole encoder is this
module at commit 523aa48.

Tried and not adopted (2026-11-26, `python -m benchmarks.int8_recipes`: the speed workload's
512 FewRel-shaped sentences, m = 10; sentences/s on 2 cores move ±15% between runs; against
fp32: F1 38.34, 85–92 sentences/s): this recipe gives F1 38.24, the same top-1 label for 91.3%
of pairs, 115–119 sentences/s. Quantising the FFN output projections too gives 38.44, 88.7%,
131–136 sentences/s. SmoothQuant-style smoothing of those projections' inputs
(a per-channel 1/s before the MatMul, s folded into the weights, s from 128 calibration
sentences) did not win the agreement back: α = 0.5 gave 83.6%, 0.8 gave 88.2%, 0.2 broke
the model (13.2%). AVX2 without VNNI can saturate u8×s8 products in int16, but neither
`reduce_range=True` (F1 38.07, 91.7%) nor uint8 weights (38.62, 90.7%, 5–22% slower in two runs) changed the
agreement: the disagreements come from activation rounding against narrow label margins.
"""
from __future__ import annotations

from pathlib import Path

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


def quantize_int8(source: Path, target: Path) -> dict[str, object]:
    """Write an int8 copy of the ONNX graph `source` to `target`; return what was done.

    Example:
        >>> quantize_int8(Path("fp32/model.onnx"), Path("int8/model.onnx"))["ffn_output_matmuls_kept_fp32"]  # doctest: +SKIP
        6
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = int8_exclusions(onnx.load(str(source), load_external_data=False).graph)
    # DefaultTensorType: the transformer optimizer's com.microsoft ops carry no type information
    # quantize_dynamic can infer. `Attention` exists only in --optimize graphs (→ QAttention).
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm", "Attention"],
                     nodes_to_exclude=excluded["head"] + excluded["ffn_output"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"weights": "int8, per output channel", "activations": "dynamic uint8",
            "scope": "encoder MatMuls except FFN output projections; head kept fp32",
            "head_nodes_kept_fp32": len(excluded["head"]), "ffn_output_matmuls_kept_fp32": len(excluded["ffn_output"])}
