"""The all-pairs scorer as a loop over head entities, so that its [batch, E, 4D] block stays in cache.

When every ordered entity pair is scored, the exported graph computes

    logits[b, i·E + j, l] = relu(head[b, i] + tail[b, j]) · folded[b, :, l]     # + offset, outside

as three passes over a dense [B, E·E, 4D] tensor (Add, Relu, MatMul): at 50 entities and a batch of
26 that tensor is ~400 MB, far beyond the caches, and memory traffic dominates. `block_pair_head`
rewrites those three nodes into an ONNX ``Loop`` over the head entities whose body holds one head's
[B, E, 4D] block (Add, Relu, MatMul): the same arithmetic on a block that fits the cache. The result
is the same to float rounding and is verified against PyTorch with every export.

    head [B, E, 4D] ─┐                          Loop i < E:  r = relu(head[:, i:i+1] + tail)   [B, E, 4D]
    tail [B, E, 4D] ─┼─ Add → Relu → MatMul  ⇒               y_i = r @ folded              [B, E, L]
    folded [B, 4D, L]┘                           stack y_i → [E, B, E, L] → [B, E·E, L]

Example:
    >>> import onnx  # doctest: +SKIP
    >>> model = onnx.load("artifact/model.onnx")  # doctest: +SKIP
    >>> block_pair_head(model)  # True when the dense all-pairs scorer was found and rewritten  # doctest: +SKIP
    True
"""
from __future__ import annotations

from typing import Any, Optional

from glirel_runtime.artifact import BLOCKED_PAIR_HEAD_NODE

PAIR_HEAD_CHOICES = ("blocked", "dense")
LOOP_OUTPUT = "pair_head_blocked_scores"  # the Loop's stacked output, [E, B, E, L]


def _constant_ints(graph: Any, name: str) -> Optional[list[int]]:
    """The int64 values of an initializer or a Constant node's output, else None."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init).reshape(-1).tolist()
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t).reshape(-1).tolist()
    return None


def _unsqueezed_on(graph: Any, producers: dict[str, Any], name: str, axis: int) -> Optional[str]:
    """The input of the Unsqueeze that produced `name` along `axis`, else None."""
    node = producers.get(name)
    if node is None or node.op_type != "Unsqueeze" or len(node.input) != 2:
        return None
    return node.input[0] if _constant_ints(graph, node.input[1]) == [axis] else None


def find_dense_pair_head(graph: Any) -> Optional[dict[str, Any]]:
    """The Add(Unsqueeze(head, 2), Unsqueeze(tail, 1)) → Relu → Reshape → MatMul chain of the all-pairs
    scorer (`PairBuilder.all_pairs_hidden` then `Scorer.forward_folded`), or None when absent."""
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for relu in graph.node:
        add = producers.get(relu.input[0]) if relu.op_type == "Relu" else None
        if add is None or add.op_type != "Add":
            continue
        head = _unsqueezed_on(graph, producers, add.input[0], 2)
        tail = _unsqueezed_on(graph, producers, add.input[1], 1)
        if head is None or tail is None or len(consumers.get(add.output[0], [])) != 1:
            continue
        reshapes = [n for n in consumers.get(relu.output[0], []) if n.op_type == "Reshape" and n.input[0] == relu.output[0]]
        if len(reshapes) != 1:
            continue
        matmuls = consumers.get(reshapes[0].output[0], [])
        if len(matmuls) != 1 or matmuls[0].op_type != "MatMul" or matmuls[0].input[0] != reshapes[0].output[0]:
            continue
        return {"head": head, "tail": tail, "folded": matmuls[0].input[1], "output": matmuls[0].output[0],
                "remove": [add, relu, reshapes[0], matmuls[0]]}
    return None


def _remove_dead_nodes(graph: Any) -> None:
    """Drop nodes none of whose outputs is read (by a node, a subgraph, or the graph's outputs), then the
    initializers nothing reads."""
    def read_names(g: Any) -> set[str]:
        names = {name for node in g.node for name in node.input}
        for node in g.node:
            for attr in node.attribute:
                if attr.g.node:
                    names |= read_names(attr.g)
        return names

    while True:
        needed = read_names(graph) | {o.name for o in graph.output}
        dead = [node for node in graph.node if not any(o in needed for o in node.output if o)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    unread = [init for init in graph.initializer if init.name not in needed]  # else onnxruntime warns at load
    for init in unread:
        graph.initializer.remove(init)


def block_pair_head(model: Any) -> bool:
    """Rewrite the dense all-pairs scorer of `model` (an `onnx.ModelProto`, edited in place) into a Loop
    over head entities; returns False, leaving the model as it was, when the graph has no such scorer
    (a pair window, or a scorer that does not fold the pair projection) or is statically quantised
    (`is_qdq_graph`)."""
    from onnx import TensorProto, helper, shape_inference

    graph = model.graph
    found = find_dense_pair_head(graph)
    if found is None or is_qdq_graph(graph):
        return False
    inferred = shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    dtype = types.get(found["head"], TensorProto.FLOAT)

    prefix = BLOCKED_PAIR_HEAD_NODE + "/"
    body = helper.make_graph(
        nodes=[
            helper.make_node("Reshape", ["iteration", prefix + "one"], [prefix + "i"]),
            helper.make_node("Gather", [found["head"], prefix + "i"], [prefix + "head_i"], axis=1),  # [B, 1, 4D]
            helper.make_node("Add", [prefix + "head_i", found["tail"]], [prefix + "block"]),  # [B, E, 4D]
            helper.make_node("Relu", [prefix + "block"], [prefix + "hidden"]),
            helper.make_node("MatMul", [prefix + "hidden", found["folded"]], [prefix + "scores_i"]),  # [B, E, L]
            helper.make_node("Identity", ["condition"], ["condition_out"]),
        ],
        name="pair_head_blocked_body",
        inputs=[helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
                helper.make_tensor_value_info("condition", TensorProto.BOOL, [])],
        outputs=[helper.make_tensor_value_info("condition_out", TensorProto.BOOL, []),
                 helper.make_tensor_value_info(prefix + "scores_i", dtype, ["batch", "tails", "labels"])],
        initializer=[helper.make_tensor(prefix + "one", TensorProto.INT64, [1], [1])],
    )
    nodes = [
        helper.make_node("Shape", [found["head"]], [prefix + "entities_1d"], start=1, end=2),
        helper.make_node("Squeeze", [prefix + "entities_1d"], [prefix + "entities"]),
        helper.make_node("Loop", [prefix + "entities", ""], [LOOP_OUTPUT], body=body, name=BLOCKED_PAIR_HEAD_NODE),
        helper.make_node("Transpose", [LOOP_OUTPUT], [prefix + "grid"], perm=[1, 0, 2, 3]),  # [B, E, E, L]
        helper.make_node("Shape", [prefix + "grid"], [prefix + "batch"], start=0, end=1),
        helper.make_node("Shape", [prefix + "grid"], [prefix + "labels"], start=3, end=4),
        helper.make_node("Concat", [prefix + "batch", prefix + "minus_one", prefix + "labels"], [prefix + "shape"], axis=0),
        helper.make_node("Reshape", [prefix + "grid", prefix + "shape"], [found["output"]]),  # [B, E·E, L]
    ]
    graph.initializer.append(helper.make_tensor(prefix + "minus_one", TensorProto.INT64, [1], [-1]))
    position = list(graph.node).index(found["remove"][-1])  # the MatMul: head, tail and folded exist by then
    for offset, node in enumerate(nodes):
        graph.node.insert(position + offset, node)
    for node in found["remove"]:
        graph.node.remove(node)
    _remove_dead_nodes(graph)
    return True


def is_qdq_graph(graph: Any) -> bool:
    """Whether `graph` holds QuantizeLinear / DequantizeLinear nodes (a static int8 recipe). Such a graph keeps its
    dense scorer: onnxruntime 1.32's QDQ graph transformers abort the process (a C++ assertion, not an
    exception) while loading a QDQ graph whose head quantisation feeds the Loop."""
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in graph.node)


def has_blocked_pair_head(graph: Any) -> bool:
    """Whether `graph` (an `onnx.GraphProto`) already scores all pairs in the blocked Loop."""
    return any(node.op_type == "Loop" and node.name == BLOCKED_PAIR_HEAD_NODE for node in graph.node)


def block_pair_head_file(path: Any) -> bool:
    """`block_pair_head` on the ONNX file at `path`, rewritten in place when the scorer was found.

    Example:
        >>> block_pair_head_file("artifact/model.onnx")  # doctest: +SKIP
        True
    """
    import onnx

    model = onnx.load(str(path))
    if not block_pair_head(model):
        return False
    onnx.save(model, str(path))
    return True
