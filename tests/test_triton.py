"""The Triton model repository: config.pbtxt checked against Triton's protobuf schema, the served
files, and the shipped client (`glirel_runtime.integrations.triton_client.TritonEngine`) run against a
stand-in server that checks and reshapes tensors as the config makes Triton do."""
from __future__ import annotations

import hashlib

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from glirel_export import cli
from glirel_export.triton import main as triton_main
from glirel_export.triton import triton_config, write_triton_repository
from glirel_runtime import GLiREL
from glirel_runtime.artifact import GRAPH_INPUTS, ArtifactConfig
from glirel_runtime.features import FeatureBuilder
from glirel_runtime.integrations.triton_client import TritonEngine
from glirel_runtime.pipeline import decode_scores

ORT_TO_TRITON = {"tensor(int64)": mc.TYPE_INT64, "tensor(float)": mc.TYPE_FP32}


def parse(path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())  # strict: unknown fields/enums fail


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_repository_layout_and_config_schema(artifact, tmp_path):
    model_dir = write_triton_repository(artifact, tmp_path / "repo", max_batch_size=16)
    assert model_dir == tmp_path / "repo" / "glirel"
    for name in ("model.onnx", "tokenizer.json", "glirel_artifact.json"):
        assert sha(model_dir / "1" / name) == sha(artifact / name)
    config = parse(model_dir / "config.pbtxt")
    assert config.name == "glirel" and config.backend == "onnxruntime" and config.max_batch_size == 16
    assert config.version_policy.latest.num_versions == 1

    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    graph_inputs = {i.name: i for i in session.get_inputs()}
    assert [i.name for i in config.input] == list(GRAPH_INPUTS) and set(graph_inputs) == set(GRAPH_INPUTS)
    for tensor in config.input:
        graph = graph_inputs[tensor.name]
        assert tensor.data_type == ORT_TO_TRITON[graph.type]
        expected_dims = [d if isinstance(d, int) else -1 for d in graph.shape[1:]]  # batch axis left out
        if expected_dims:
            assert list(tensor.dims) == expected_dims and not tensor.HasField("reshape"), tensor.name
        else:  # text_lengths: [batch] in the graph, [batch, 1] on the wire
            assert list(tensor.dims) == [1] and tensor.HasField("reshape") and list(tensor.reshape.shape) == []
    graph_outputs = {o.name: o for o in session.get_outputs()}
    assert [o.name for o in config.output] == list(graph_outputs) == ["logits"]
    assert config.output[0].data_type == mc.TYPE_FP32 and list(config.output[0].dims) == [-1, -1]

    assert list(config.dynamic_batching.preferred_batch_size) == [8, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert [(g.kind, g.count) for g in config.instance_group] == [(mc.ModelInstanceGroup.KIND_GPU, 1)]
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accelerators] == ["tensorrt"]
    assert accelerators[0].parameters["precision_mode"] == "FP16"
    assert accelerators[0].parameters["trt_engine_cache_enable"] == "1"


def test_cpu_config_coref_output_and_refusals(artifact, tmp_path):
    inputs = {name: "int64" for name in GRAPH_INPUTS}
    config = text_format.Parse(
        triton_config(inputs, {"logits": "float32", "coref_logits": "float32"}, model_name="re", device="cpu",
                      instance_count=2, max_batch_size=1), mc.ModelConfig())
    assert config.name == "re" and list(config.dynamic_batching.preferred_batch_size) == [1]
    assert [o.name for o in config.output] == ["logits", "coref_logits"] and list(config.output[1].dims) == [-1]
    assert [(g.kind, g.count) for g in config.instance_group] == [(mc.ModelInstanceGroup.KIND_CPU, 2)]
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator
    with pytest.raises(ValueError, match="differ from the artifact contract"):
        triton_config({"input_ids": "int64"}, {"logits": "float32"})
    with pytest.raises(ValueError, match="device"):
        triton_config(inputs, {"logits": "float32"}, device="tpu")

    write_triton_repository(artifact, tmp_path / "repo")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_triton_repository(artifact, tmp_path / "repo")
    write_triton_repository(artifact, tmp_path / "repo", overwrite=True, device="cpu")
    assert parse(tmp_path / "repo" / "glirel" / "config.pbtxt").instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["glirel"]  # no staging leftovers
    with pytest.raises(FileNotFoundError, match="not a glirel-onnx artifact"):
        write_triton_repository(tmp_path, tmp_path / "other")
    assert triton_main([str(artifact), str(tmp_path / "repo2"), "--model-name", "rel", "--device", "cpu"]) == 0
    assert parse(tmp_path / "repo2" / "rel" / "config.pbtxt").name == "rel"
    assert triton_main([str(artifact), str(tmp_path / "repo2"), "--model-name", "rel"]) == 1  # exists


class TritonLikeClient:
    """A stand-in for `tritonclient.grpc.InferenceServerClient` that does what Triton does with a
    request: checks each tensor against config.pbtxt, applies its reshape, runs the served graph."""

    def __init__(self, model_dir):
        self.config = parse(model_dir / "config.pbtxt")
        self.session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        self.requests = 0

    def get_model_metadata(self, model_name):
        assert model_name == self.config.name
        return type("Metadata", (), {"outputs": [type("Output", (), {"name": o.name}) for o in self.config.output]})

    def infer(self, model_name, inputs, outputs=None):
        assert model_name == self.config.name
        self.requests += 1
        sent = {t.name(): np.frombuffer(t._raw_content, dtype=np.int64).reshape(t.shape()) for t in inputs}
        assert all(t.datatype() == "INT64" for t in inputs)
        feed = {}
        for tensor in self.config.input:
            array = sent[tensor.name]
            assert array.shape[0] <= self.config.max_batch_size
            assert len(array.shape[1:]) == len(tensor.dims), tensor.name
            assert all(d == -1 or d == s for d, s in zip(tensor.dims, array.shape[1:])), tensor.name
            feed[tensor.name] = array.reshape((array.shape[0], *tensor.reshape.shape)) if tensor.HasField("reshape") else array
        names = [o.name() for o in outputs]
        results = dict(zip(names, self.session.run(names, feed)))
        return type("Result", (), {"as_numpy": lambda self, name: results[name]})()


def test_triton_engine_gives_the_runtime_results(artifact, tmp_path):
    """The shipped client (GLiREL + TritonEngine on the served version) returns what the runtime returns."""
    model_dir = write_triton_repository(artifact, tmp_path / "repo")
    client = TritonLikeClient(model_dir)
    remote = GLiREL(model_dir / "1", engine=TritonEngine("localhost:8001", "glirel", client=client))
    assert remote.providers == ["triton:localhost:8001/glirel"] and remote.session is None
    runtime = GLiREL(artifact, providers="cpu")

    texts = ["Marie Curie was born in Warsaw and worked in Paris with Pierre Curie .",
             "Berlin is the capital of Germany .".split()]
    ner = [[[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"], [9, 9, "LOC", "Paris"], [11, 12, "PER", "Pierre Curie"]],
           [[0, 0, "LOC", "Berlin"], [5, 5, "LOC", "Germany"]]]
    labels = {"glirel_labels": {"place of birth": {"allowed_head": ["PER"], "allowed_tail": ["LOC"]},
                                "capital of": {}, "spouse": {}}}
    for threshold, top_k in ((0.0, -1), (0.3, 1)):
        want = runtime.batch_predict_relations(texts, labels, ner=ner, threshold=threshold, top_k=top_k)
        assert sum(map(len, want)) > 0
        got = remote.batch_predict_relations(texts, labels, ner=ner, threshold=threshold, top_k=top_k)
        for g, w in zip(got, want):
            assert [{k: v for k, v in r.items() if k != "score"} for r in g] == [{k: v for k, v in r.items() if k != "score"} for r in w]
            assert [r["score"] for r in g] == pytest.approx([r["score"] for r in w], rel=1e-5, abs=1e-6)
    requests = client.requests
    remote.predict_relations(texts[1], ["capital of", "spouse"], ner=ner[1], threshold=0.0)
    assert client.requests == requests + 1  # one padded batch → one request


def test_glirel_export_cli_writes_the_repository(variants, tmp_path):
    checkpoint = variants["bert-dot"].checkpoint
    repo = tmp_path / "repo"
    assert cli.main([str(checkpoint), str(tmp_path / "artifact"), "--triton", str(repo)]) == 0
    config = parse(repo / "glirel" / "config.pbtxt")
    assert [i.name for i in config.input] == list(GRAPH_INPUTS)
    assert sha(repo / "glirel" / "1" / "model.onnx") == sha(tmp_path / "artifact" / "model.onnx")
    # an existing model is refused before anything is exported
    assert cli.main([str(checkpoint), str(tmp_path / "artifact2"), "--triton", str(repo)]) == 1
    assert not (tmp_path / "artifact2").exists()


def test_padding_to_shared_buckets_changes_nothing(artifact, tmp_path):
    """The documented way to let Triton batch separate requests: pad every axis to a bucket size."""
    model_dir = write_triton_repository(artifact, tmp_path / "repo")
    client = TritonLikeClient(model_dir)
    engine = TritonEngine(model_name="glirel", client=client)
    features = FeatureBuilder(model_dir / "1" / "tokenizer.json", ArtifactConfig.load(model_dir / "1"))
    text = "Apple was founded by Steve Jobs in Cupertino , California , in 1976 .".split()
    spans = [(0, 0), (4, 5), (7, 7), (9, 9)]
    labels = ["founded by", "headquartered in", "spouse"]
    encoded = features.encode(labels, [text], [spans])
    inputs = features.pad(encoded)
    plain = decode_scores(engine.run(inputs), encoded, len(labels))[0]
    fills = {"input_ids": 0, "attention_mask": 0, "word_index": -1, "label_index": -1, "span_index": 0, "pair_index": 0}
    padded = dict(inputs)
    for name, fill in fills.items():
        array = inputs[name]
        extra = np.full((array.shape[0], 5) + array.shape[2:], fill, dtype=np.int64)
        padded[name] = np.concatenate([array, extra], axis=1)
    bucketed = decode_scores(engine.run(padded), encoded, len(labels))[0]
    assert plain.probabilities.shape == (12, 3)  # 12 ordered pairs x 3 labels
    np.testing.assert_allclose(bucketed.probabilities, plain.probabilities, rtol=1e-5, atol=1e-6)
