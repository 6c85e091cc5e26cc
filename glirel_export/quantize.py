"""int8 dynamic quantisation of an exported GLiREL graph (onnxruntime.quantization).

Recipe (measured on the default MiniLM model, 512 FewRel val_wiki sentences, m = 10;
see docs/speed.md): weights int8 **per output channel**, encoder only. The head
(first-subtoken pooling, BiLSTM, label FFN, pair builder, scorer) stays fp32: it is
a few percent of the time, and quantising it, or quantising per tensor, costs
accuracy:

=============================  ==========  ==================  ==============
recipe                         macro-F1    top-1 label = fp32  max |Δp|
=============================  ==========  ==================  ==============
fp32                           38.34       100%                0
per tensor, whole graph        33.64       78.6%               0.27
per channel, encoder only      38.44       88.7%               0.14
=============================  ==========  ==================  ==============
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


def quantize_int8(source: Path, target: Path) -> dict[str, object]:
    """Write an int8 copy of the ONNX graph `source` to `target`; return what was done.

    Example:
        >>> quantize_int8(Path("fp32/model.onnx"), Path("int8/model.onnx"))["per_channel"]  # doctest: +SKIP
        True
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    classes = classify_nodes(onnx.load(str(source), load_external_data=False).graph)
    heads = sorted(name for name, cls in classes.items() if cls != "encoder")
    # DefaultTensorType: the transformer optimizer's com.microsoft ops carry no type information
    # quantize_dynamic can infer. `Attention` exists only in --optimize graphs (→ QAttention).
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm", "Attention"], nodes_to_exclude=heads,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"weights": "int8, per output channel", "activations": "dynamic uint8", "scope": "encoder only; head kept fp32",
            "head_nodes_kept_fp32": len(heads)}
