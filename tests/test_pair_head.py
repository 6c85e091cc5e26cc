"""The all-pairs scorer exported as a Loop over head entities (`glirel_export.pair_head`): the same
scores as one dense pass, kept only where it applies, and turned back into a dense pass by OpenVINO."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from glirel_export import ExportOptions, export_checkpoint
from glirel_export.pair_head import block_pair_head, find_dense_pair_head
from glirel_runtime import GLiREL
from glirel_runtime.artifact import BLOCKED_PAIR_HEAD_NODE, ArtifactConfig
from glirel_runtime.engines import OnnxRuntimeEngine, OpenVINOEngine
from glirel_runtime.providers import create_session

LABELS = ["founded by", "located in", "spouse", "place of birth", "member of"]
WORDS = ("Ada Lovelace was born in London and married William King , who met Charles Babbage in Paris "
         "before Apple , Google and Microsoft were founded in Cupertino , Menlo Park and Albuquerque .").split()


def many_entity_batches(runtime: GLiREL) -> list[dict[str, np.ndarray]]:
    """A padded batch of texts with 16, 9 and 2 entities (the Loop's trip count follows the widest)."""
    spans = [(i, i) for i in range(0, len(WORDS), 2)]
    texts = [(WORDS, spans[:16]), (WORDS[:20], spans[:9]), (WORDS[:6], spans[:2])]
    encoded = runtime.features.encode(LABELS, [w for w, _ in texts], [s for _, s in texts])
    return [runtime.features.pad(encoded), runtime.features.pad(encoded[2:])]


def loop_nodes(artifact) -> list[str]:
    return [n.name for n in onnx.load(str(artifact / "model.onnx"), load_external_data=False).graph.node if n.op_type == "Loop"]


@pytest.fixture(scope="module")
def dense_artifact(variants, tmp_path_factory):
    target = tmp_path_factory.mktemp("dense") / "artifact"
    export_checkpoint(variants["bert-dot"].checkpoint, target, ExportOptions(pair_head="dense"))
    return target


@pytest.mark.parametrize("name", ["bert-dot", "deberta-dot_thresh", "deberta-both", "deberta-markerv2"])
def test_all_pairs_scorers_are_exported_blocked(variants, name):
    artifact = variants[name].artifact
    assert loop_nodes(artifact) == [BLOCKED_PAIR_HEAD_NODE]
    assert ArtifactConfig.load(artifact).verification["pair_head"] == "blocked"


@pytest.mark.parametrize("name", ["deberta-window", "deberta-concat_proj", "deberta-refine", "deberta-coref"])
def test_scorers_without_a_dense_grid_stay_as_they_are(variants, name):
    """A pair window gathers its pairs; concat_proj, refine layers and the coref head need the pair vectors."""
    artifact = variants[name].artifact
    assert loop_nodes(artifact) == []
    assert ArtifactConfig.load(artifact).verification["pair_head"] == "dense"


def test_blocked_equals_dense(variants, dense_artifact):
    assert loop_nodes(dense_artifact) == []
    blocked = OnnxRuntimeEngine(create_session(variants["bert-dot"].artifact / "model.onnx", "cpu", threads=1))
    dense = OnnxRuntimeEngine(create_session(dense_artifact / "model.onnx", "cpu", threads=1))
    for inputs in many_entity_batches(variants["bert-dot"].runtime()):
        expected, got = dense.run(inputs)["logits"], blocked.run(inputs)["logits"]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_openvino_runs_a_blocked_graph_as_one_dense_pass(variants, dense_artifact):
    model_path = variants["bert-dot"].artifact / "model.onnx"
    engine = OpenVINOEngine(model_path, threads=1, precision="f32")
    assert engine.dense_pair_head
    assert not any(op.get_type_name() == "Loop" for op in engine.compiled.get_runtime_model().get_ordered_ops())
    assert not OpenVINOEngine(dense_artifact / "model.onnx", threads=1, precision="f32").dense_pair_head
    reference = OnnxRuntimeEngine(create_session(model_path, "cpu", threads=1))
    for inputs in many_entity_batches(variants["bert-dot"].runtime()):
        np.testing.assert_allclose(engine.run(inputs)["logits"], reference.run(inputs)["logits"], rtol=0, atol=1e-4)


def test_rewrite_applies_once(variants):
    model = onnx.load(str(variants["deberta-dot"].artifact / "model.onnx"))
    assert find_dense_pair_head(model.graph) is None  # already blocked by the export
    before = model.SerializeToString()
    assert not block_pair_head(model)
    assert model.SerializeToString() == before


def test_unknown_pair_head_is_refused_before_anything_is_written(variants, tmp_path):
    with pytest.raises(ValueError, match="pair_head"):
        export_checkpoint(variants["bert-dot"].checkpoint, tmp_path / "out", ExportOptions(pair_head="sparse"))
    assert not (tmp_path / "out").exists()


def test_the_rewrite_leaves_nothing_unread(variants):
    """Nodes and initializers that only fed the dense pass are gone (onnxruntime would warn about each at load)."""
    graph = onnx.load(str(variants["bert-dot"].artifact / "model.onnx")).graph
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for node in graph.node:
        for attr in node.attribute:
            read |= {name for body_node in attr.g.node for name in body_node.input}
    assert all(init.name in read for init in graph.initializer)
    assert all(any(output in read for output in node.output) for node in graph.node)
