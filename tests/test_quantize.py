"""int8 recipes (glirel_export.quantize): each quantises what it says and nothing else, and the result runs."""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

from glirel_export import ExportOptions, export_checkpoint
from glirel_export.quantize import RECIPES, Int8Recipe, classify_nodes, int8_exclusions, quantize_int8

LABELS = ["founded by", "located in", "spouse"]
TEXTS = [("Apple was founded by Steve Jobs in Cupertino .".split(), [[0, 0, "ORG", "Apple"], [4, 5, "PER", "Steve Jobs"],
                                                                      [7, 7, "LOC", "Cupertino"]]),
         ("Ada Lovelace was born in London .".split(), [[0, 1, "PER", "Ada Lovelace"], [5, 5, "LOC", "London"]])]


def quantized_matmuls(source_graph, quantized_graph) -> set[str]:
    """Names of `source_graph`'s MatMuls that run in int8 in `quantized_graph` (dynamic: replaced; static: fed by QDQ)."""
    producers = {output: node for node in quantized_graph.node for output in node.output}
    still_float = {n.name for n in quantized_graph.node if n.op_type == "MatMul"
                   and not any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in n.input)}
    return {n.name for n in source_graph.node if n.op_type == "MatMul"} - still_float


@pytest.fixture(scope="module")
def fp32(variants, tmp_path_factory):
    """The bert-dot checkpoint exported with a dense all-pairs scorer (what the recipes quantise)."""
    variant = variants["bert-dot"]
    dense = tmp_path_factory.mktemp("dense") / "artifact"
    export_checkpoint(variant.checkpoint, dense, ExportOptions(pair_head="dense"))
    graph = onnx.load(str(dense / "model.onnx")).graph
    runtime = variant.runtime()
    encoded = runtime.features.encode(LABELS, [w for w, _ in TEXTS], [[(s, e) for s, e, *_ in n] for _, n in TEXTS])
    return variant, dense, graph, [runtime.features.pad(encoded)]


def build(fp32, tmp_path, name):
    _, dense, _, calibration = fp32
    target = tmp_path / name
    shutil.copytree(dense, target)
    notes = quantize_int8(dense / "model.onnx", target / "model.onnx", RECIPES[name], calibration)
    return target, notes, onnx.load(str(target / "model.onnx")).graph


def test_a_blocked_graph_is_refused_with_the_way_out(variants, tmp_path):
    with pytest.raises(ValueError, match="pair-head dense"):
        quantize_int8(variants["bert-dot"].artifact / "model.onnx", tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.parametrize("name", ["default", "encoder-only", "ffn-int8", "head-int8", "all-int8", "static", "static-all"])
def test_recipe_scope(fp32, tmp_path, name):
    variant, _, source, _ = fp32
    recipe = RECIPES[name]
    target, notes, graph = build(fp32, tmp_path, name)
    classes = classify_nodes(source)
    excluded = int8_exclusions(source)
    done = quantized_matmuls(source, graph)
    encoder = {n.name for n in source.node if n.op_type == "MatMul" and classes[n.name] == "encoder"}
    head = {n.name for n in source.node if n.op_type == "MatMul" and classes[n.name] != "encoder"}
    ffn_output = set(excluded["ffn_output"])
    assert ffn_output and head, "the tiny graph lacks the nodes this test is about"
    if recipe.ffn_output:
        assert ffn_output <= done
    else:
        assert not ffn_output & done
    if recipe.head:
        assert head & done, "no head MatMul was quantised"
    else:
        assert not head & done, f"head MatMuls quantised: {sorted(head & done)}"
    weight_matmuls = {n.name for n in source.node if n.op_type == "MatMul" and classes[n.name] == "encoder"
                      and any(i in {t.name for t in source.initializer} for i in n.input)}
    assert (weight_matmuls - ffn_output) <= done, "encoder weight MatMuls left fp32"
    activation_products = encoder - weight_matmuls
    if activation_products:
        assert bool(activation_products & done) == recipe.attention
    assert not any(n.op_type == "DynamicQuantizeLSTM" for n in graph.node), "the BiLSTM stays fp32"
    if recipe.mode == "static":
        assert any(n.op_type == "QuantizeLinear" for n in graph.node)
        assert not any(n.op_type == "DynamicQuantizeLinear" for n in graph.node)
    assert notes["recipe"] == recipe.describe()

    from glirel_runtime import GLiREL

    scores = GLiREL(target, providers="cpu", threads=1).score_pairs([t for t, _ in TEXTS], LABELS, [n for _, n in TEXTS])
    reference = variant.runtime(threads=1).score_pairs([t for t, _ in TEXTS], LABELS, [n for _, n in TEXTS])
    for got, expected in zip(scores, reference):
        assert got.probabilities.shape == expected.probabilities.shape
        assert np.isfinite(got.probabilities).all()
        np.testing.assert_array_equal(got.heads, expected.heads)


def test_the_all_pairs_scorer_stays_fp32_and_is_looped_after(fp32, tmp_path):
    """Even with the head and the activation products in int8, the all-pairs scorer's MatMul stays fp32,
    so that the export can loop it over head entities afterwards."""
    from glirel_export.pair_head import block_pair_head_file, find_dense_pair_head

    _, _, source, _ = fp32
    target, _, graph = build(fp32, tmp_path, "default")
    scorer = find_dense_pair_head(source)["remove"][-1].name
    assert scorer not in quantized_matmuls(source, graph)
    assert block_pair_head_file(target / "model.onnx")


@pytest.mark.parametrize("name", ["default", "static", "static-all"])
def test_looping_after_quantisation_gives_a_graph_onnxruntime_loads(fp32, tmp_path, name):
    """Dynamic recipes are looped; static (QDQ) ones keep the dense scorer, since onnxruntime aborts the whole
    process loading a QDQ graph whose head feeds the loop. Loaded in a child process, so an abort fails the test."""
    import subprocess
    import sys

    from glirel_export.pair_head import block_pair_head_file

    target, _, _ = build(fp32, tmp_path, name)
    assert block_pair_head_file(target / "model.onnx") == (RECIPES[name].mode == "dynamic")
    load = ("import onnxruntime as ort, sys; "
            "ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider']); print('loaded')")
    child = subprocess.run([sys.executable, "-c", load, str(target / "model.onnx")], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0 and "loaded" in child.stdout, child.stderr[-500:]


def test_static_recipe_needs_calibration(fp32, tmp_path):
    _, dense, _, _ = fp32
    with pytest.raises(ValueError, match="calibration_inputs"):
        quantize_int8(dense / "model.onnx", tmp_path / "model.onnx", RECIPES["static"])


def test_recipe_fields_are_checked():
    with pytest.raises(ValueError, match="mode"):
        Int8Recipe(mode="smooth")
    with pytest.raises(ValueError, match="weight_type"):
        Int8Recipe(weight_type="int4")
    assert Int8Recipe() == RECIPES["encoder-only"]
    assert RECIPES["default"] == Int8Recipe(ffn_output=True, head=True, attention=True)
