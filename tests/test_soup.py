"""Weight averaging (glirel_export.soup): the weighted mean of glirel checkpoints, refused across architectures."""
from __future__ import annotations

import json

import pytest
import torch

from glirel_export.checkpoint import CheckpointError, read_state_dict
from glirel_export.soup import average_checkpoints, main, parse_source
from tests.tiny_models import build_glirel_checkpoint


@pytest.fixture(scope="module")
def two_checkpoints(encoders, tmp_path_factory):
    """Two glirel checkpoints of one architecture with different weights (different seeds)."""
    root = tmp_path_factory.mktemp("soup")
    build_glirel_checkpoint(root / "a", encoders["bert"], seed=1)
    build_glirel_checkpoint(root / "b", encoders["bert"], seed=2)
    return root / "a", root / "b"


def read(directory):
    return read_state_dict(directory / "pytorch_model.bin")


def test_the_soup_is_the_weighted_mean(two_checkpoints, tmp_path):
    a, b = two_checkpoints
    soup = average_checkpoints([(a, 0.25), (b, 0.75)], tmp_path / "soup")
    averaged, first, second = read(tmp_path / "soup"), read(a), read(b)
    assert averaged.keys() == first.keys()
    differing = 0
    for name, tensor in averaged.items():
        assert tensor.dtype == first[name].dtype
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.25 * first[name] + 0.75 * second[name], rtol=1e-6, atol=1e-6)
            differing += int(not torch.equal(first[name], second[name]))
        else:
            assert torch.equal(tensor, first[name])
    assert differing > 0, "the two checkpoints should differ for this test to mean anything"
    config = json.loads((tmp_path / "soup" / "glirel_config.json").read_text())
    assert config["soup"] == soup and [s["weight"] for s in soup["sources"]] == [0.25, 0.75]
    assert [s["checkpoint"] for s in soup["sources"]] == [str(a), str(b)]
    assert "train_config" not in config and "trained_steps" not in config


def test_the_soup_loads_in_glirel_and_in_the_exporter(two_checkpoints, tmp_path):
    from glirel import GLiREL as ReferenceGLiREL

    from glirel_export import load_checkpoint

    a, b = two_checkpoints
    average_checkpoints([(a, 0.5), (b, 0.5)], tmp_path / "soup")
    reference = ReferenceGLiREL._from_pretrained(  # as tests/conftest.py loads the oracle
        model_id=str(tmp_path / "soup"), revision=None, cache_dir=None, force_download=False, proxies=None,
        resume_download=False, local_files_only=True, token=None)
    for name, tensor in read(tmp_path / "soup").items():
        assert torch.equal(reference.state_dict()[name], tensor), name
    assert load_checkpoint(str(tmp_path / "soup")).glirel_config["soup"]["sources"][1]["checkpoint"] == str(b)


def test_other_architectures_and_bad_weights_are_refused(two_checkpoints, encoders, tmp_path):
    a, _ = two_checkpoints
    build_glirel_checkpoint(tmp_path / "other", encoders["bert"], seed=3, label_embed_strategy="label")
    with pytest.raises(CheckpointError, match="label_embed_strategy"):
        average_checkpoints([(a, 0.5), (tmp_path / "other", 0.5)], tmp_path / "soup")
    with pytest.raises(ValueError, match="sum to 1.2"):
        average_checkpoints([(a, 0.6), (a, 0.6)], tmp_path / "soup")
    with pytest.raises(CheckpointError, match="not a glirel checkpoint"):
        average_checkpoints([(a, 0.5), (tmp_path / "missing", 0.5)], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


@pytest.mark.parametrize("text,message", [("ckpt", "DIR:WEIGHT"), ("ckpt:x", "not a number"), ("ckpt:-1", "positive")])
def test_sources_are_parsed_with_clear_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_source(text)


def test_the_command_line_reports_a_bad_source(two_checkpoints, tmp_path, capsys):
    a, _ = two_checkpoints
    with pytest.raises(SystemExit):
        main([str(tmp_path / "soup"), f"{a}:0.5", f"{a}:0.2"])
    assert "sum to 0.7" in capsys.readouterr().err
