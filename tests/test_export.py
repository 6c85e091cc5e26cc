"""glirel-export: the artifact it writes, its verification, and what it refuses."""
from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest
import torch

from glirel_export import CheckpointError, ExportOptions, ExportVerificationError, UnsupportedCheckpointError, export_checkpoint
from glirel_runtime.artifact import CONFIG_FILE, FORMAT_VERSION, GRAPH_INPUTS, MODEL_FILE, TOKENIZER_FILE, ArtifactConfig
from tiny_models import build_glirel_checkpoint


@pytest.fixture()
def checkpoint(tmp_path, encoders):
    build_glirel_checkpoint(tmp_path / "checkpoint", encoders["deberta"])
    return tmp_path / "checkpoint"


def _assert_nothing_written(out_dir):
    assert not out_dir.exists()
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(".glirel-export-")], "staging directory left behind"


def test_artifact_layout_and_contract(variants):
    artifact = variants["deberta-dot"].artifact
    assert {p.name for p in artifact.iterdir()} == {CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE}
    config = ArtifactConfig.load(artifact)
    assert config.format_version == FORMAT_VERSION and config.precision == "fp32"
    assert config.verification["passed"] and config.verification["max_abs_diff"] <= 1e-4
    assert {c["labels"] for c in config.verification["cases"]} >= {1, 25}
    graph = onnx.load(str(artifact / MODEL_FILE))
    inputs = {i.name: i for i in graph.graph.input}
    assert list(inputs) == list(GRAPH_INPUTS)
    for name, (dtype, axes) in GRAPH_INPUTS.items():
        dims = inputs[name].type.tensor_type.shape.dim
        assert inputs[name].type.tensor_type.elem_type == onnx.TensorProto.INT64
        for dim, axis in zip(dims, axes):
            assert (dim.dim_value == 2) if axis == "2" else bool(dim.dim_param), f"{name} axis {axis} is not dynamic"
    tokenizer = json.loads((artifact / TOKENIZER_FILE).read_text())
    added = {t["content"] for t in tokenizer["added_tokens"]}
    assert {"[REL]", "[SEP]", "[E]", "[/E]", "[FLERT]"} <= added


def test_corrupted_weight_is_refused(checkpoint, tmp_path):
    state = torch.load(checkpoint / "pytorch_model.bin", weights_only=True)
    state["prompt_rep_layer.0.weight"][0, 0] = float("nan")
    torch.save(state, checkpoint / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="prompt_rep_layer.0.weight.*NaN"):
        export_checkpoint(checkpoint, tmp_path / "out")
    _assert_nothing_written(tmp_path / "out")


def test_unknown_and_missing_keys_are_named(checkpoint, tmp_path):
    state = torch.load(checkpoint / "pytorch_model.bin", weights_only=True)
    state["scorer.mystery.weight"] = torch.zeros(2)
    del state["prompt_rep_layer.3.bias"]
    torch.save(state, checkpoint / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as error:
        export_checkpoint(checkpoint, tmp_path / "out")
    assert "scorer.mystery.weight" in str(error.value) and "prompt_rep_layer.3.bias" in str(error.value)
    _assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("key,value", [("subtoken_pooling", "mean"), ("scorer", "bilinear"), ("span_marker_mode", "markerv0")])
def test_unsupported_options_are_refused(checkpoint, tmp_path, key, value):
    config = json.loads((checkpoint / "glirel_config.json").read_text())
    config[key] = value
    (checkpoint / "glirel_config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedCheckpointError, match=f"{key}={value!r}"):
        export_checkpoint(checkpoint, tmp_path / "out")
    _assert_nothing_written(tmp_path / "out")


def test_pickled_objects_are_not_unpickled(checkpoint, tmp_path):
    torch.save({"weights": ArithmeticError("not a tensor")}, checkpoint / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="tensor-only"):
        export_checkpoint(checkpoint, tmp_path / "out")
    _assert_nothing_written(tmp_path / "out")


def test_tokenizer_mismatch_is_refused(checkpoint, tmp_path, encoders):
    config = json.loads((checkpoint / "glirel_config.json").read_text())
    config["model_name"] = str(encoders["bert"])
    (checkpoint / "glirel_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError):
        export_checkpoint(checkpoint, tmp_path / "out")
    _assert_nothing_written(tmp_path / "out")


def test_failed_verification_writes_nothing(checkpoint, tmp_path, monkeypatch):
    import glirel_export.export as export_module

    monkeypatch.setattr(export_module, "FP32_TOLERANCE", 0.0)
    with pytest.raises(ExportVerificationError, match="differs from PyTorch"):
        export_checkpoint(checkpoint, tmp_path / "out")
    _assert_nothing_written(tmp_path / "out")


def test_existing_output_needs_overwrite(checkpoint, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        export_checkpoint(checkpoint, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").exists()


def test_safetensors_checkpoint_exports_the_same_graph(checkpoint, tmp_path, variants):
    from safetensors.torch import save_file

    state = torch.load(checkpoint / "pytorch_model.bin", weights_only=True)
    (checkpoint / "pytorch_model.bin").unlink()
    save_file({k: v.contiguous() for k, v in state.items()}, str(checkpoint / "model.safetensors"))
    config = export_checkpoint(checkpoint, tmp_path / "out")
    assert config.verification["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("options", [ExportOptions(quantize="int8"), ExportOptions(fp16=True), ExportOptions(optimize=True),
                                     ExportOptions(optimize=True, quantize="int8")],
                         ids=["int8", "fp16", "optimize", "optimize-int8"])
def test_reduced_precision_and_optimized_exports(checkpoint, tmp_path, options):
    from glirel_runtime import GLiREL

    config = export_checkpoint(checkpoint, tmp_path / "out", options)
    report = config.verification
    assert config.precision == options.precision
    assert 0.9 <= report["decision_agreement"] <= 1.0 and report["max_abs_diff"] < 0.05
    if options.optimize:
        assert report["fusions"], "the transformer optimizer fused nothing"
    if options.precision == "fp32":
        assert report["max_abs_diff"] <= 1e-4
    if options.precision == "int8":  # the default recipe: encoder (FFN outputs included) and head MatMuls int8
        from glirel_export.quantize import classify_nodes

        graph = onnx.load(str(tmp_path / "out" / "model.onnx")).graph
        classes = classify_nodes(graph)
        quantized = [n for n in graph.node if n.op_type in ("DynamicQuantizeLinear", "MatMulInteger", "QAttention", "DynamicQuantizeMatMul")]
        assert quantized, "nothing was quantised"
        assert {classes[n.name] for n in quantized} > {"encoder"}, "only the encoder was quantised"
        per_channel_scales = [t for t in graph.initializer if t.name.endswith("_scale") and len(t.dims) == 1 and t.dims[0] > 1]
        assert per_channel_scales, "weights were not quantised per channel"
        assert report["quantization"]["head_nodes_kept_fp32"] == 0
        assert report["quantization"]["ffn_output_matmuls_kept_fp32"] == 0
        assert report["pair_head"] == "blocked"  # the all-pairs scorer stayed fp32 and was looped
    model = GLiREL(tmp_path / "out", providers="cpu")
    relations = model.predict_relations(["Ada", "met", "Byron", "in", "London"], ["spouse", "located in"],
                                        ner=[[0, 0, "PER", "Ada"], [2, 2, "PER", "Byron"], [4, 4, "LOC", "London"]], threshold=0.0)
    assert len(relations) == 12


def test_dynamo_exporter_matches(checkpoint, tmp_path):
    config = export_checkpoint(checkpoint, tmp_path / "out", ExportOptions(exporter="dynamo"))
    assert config.verification["max_abs_diff"] <= 1e-4


def test_cli_exports_and_refuses(checkpoint, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "glirel_export.cli", str(checkpoint), str(tmp_path / "out")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "max |Δp|" in ok.stdout and (tmp_path / "out" / MODEL_FILE).exists()
    # the tracer's warnings are summarised in one line, not dumped
    assert "Warning:" not in ok.stderr, ok.stderr
    assert "TracerWarning" in ok.stdout and len([l for l in ok.stdout.splitlines() if "export warnings" in l]) == 1
    noted = ArtifactConfig.load(tmp_path / "out").verification["export_warnings"]
    assert noted["by_category"]["TracerWarning"] >= 1 and noted["count"] == sum(noted["by_category"].values())
    config = json.loads((checkpoint / "glirel_config.json").read_text())
    config["subtoken_pooling"] = "last"
    (checkpoint / "glirel_config.json").write_text(json.dumps(config))
    refused = subprocess.run([sys.executable, "-m", "glirel_export.cli", str(checkpoint), str(tmp_path / "out2")], capture_output=True, text=True)
    assert refused.returncode == 1 and "subtoken_pooling='last'" in refused.stderr
    assert not (tmp_path / "out2").exists()
