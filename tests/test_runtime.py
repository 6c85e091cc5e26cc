"""glirel_runtime: API behaviour, bad input, batching, threads, providers, torch-freedom, CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import run_without_torch

from glirel_runtime import GLiREL, InputError
from glirel_runtime.artifact import CONFIG_FILE
from glirel_runtime.words import split_words

LABELS = ["place of birth", "spouse", "founded by", "located in"]
TOKENS = ["Marie", "Curie", "was", "born", "in", "Warsaw", "and", "married", "Pierre", "Curie", "."]
NER = [[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"], [8, 9, "PER", "Pierre Curie"]]


@pytest.fixture(scope="module")
def model(variants) -> GLiREL:
    return variants["deberta-dot"].runtime()


# ----------------------------------------------------------------------------- inputs


def test_raw_string_is_split_like_glirel_with_character_offsets(model):
    from test_words import glirel_split

    text = "Marie Curie was born in Warsaw, and married Pierre Curie."
    words = split_words(text).words
    assert words == glirel_split(text) and words[6] == ","
    ner = [[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"], [9, 10, "PER", "Pierre Curie"]]
    from_string = model.predict_relations(text, LABELS, ner=ner, threshold=0.0)
    from_words = model.predict_relations(words, LABELS, ner=ner, threshold=0.0)
    assert [r["score"] for r in from_string] == [r["score"] for r in from_words]
    for relation in from_string:
        start, end = relation["head_char_pos"]
        assert text[start:end] == " ".join(relation["head_text"])
        assert text[slice(*relation["tail_char_pos"])] == " ".join(relation["tail_text"])
    assert "head_char_pos" not in from_words[0]


def test_fewer_than_two_entities_gives_no_relations(model):
    assert model.predict_relations(TOKENS, LABELS, ner=[]) == []
    assert model.predict_relations(TOKENS, LABELS, ner=[NER[0]]) == []
    results = model.batch_predict_relations([TOKENS, TOKENS], LABELS, ner=[[NER[0]], NER], threshold=0.0)
    assert results[0] == [] and len(results[1]) == 6 * len(LABELS)


@pytest.mark.parametrize("text,ner,match", [
    ("", NER, "text is empty"),
    ("   ", NER, "text is empty"),
    ([], NER, "token list is empty"),
    (TOKENS, [[0, 11, "PER", "x"], [0, 0, "PER", "x"]], r"outside the text's 11 words"),
    (TOKENS, [[-1, 0, "PER", "x"], [2, 2, "X", "x"]], "outside"),
    (TOKENS, [[3, 1, "PER", "x"], [5, 5, "LOC", "x"]], "start 3 > end 1"),
    (TOKENS, [[0, 1, "PER", "a"], [0, 1, "PER", "b"]], "repeats the span of entity 0"),
])
def test_bad_items_raise_value_errors_naming_the_problem(model, text, ner, match):
    with pytest.raises(ValueError, match=match):
        model.predict_relations(text, LABELS, ner=ner)


def test_stream_rows_without_entities_are_refused(model):
    """Streamed rows never run a recogniser behind the caller's back: a row without `ner` is refused."""
    results = list(model.predict_stream([{"tokenized_text": TOKENS}, (TOKENS, NER)], LABELS, on_error="return"))
    assert isinstance(results[0], InputError) and "ner is missing" in str(results[0])
    assert isinstance(results[1], list) and results[1] == model.predict_relations(TOKENS, LABELS, ner=NER)


def test_character_offsets_are_detected(model):
    text = "Marie Curie was born in Warsaw."
    # character offsets of "Marie Curie" (0..10) and "Warsaw" (24..29): past the 7 words
    with pytest.raises(ValueError, match="looks like character offsets"):
        model.predict_relations(text, LABELS, ner=[[0, 10, "PER", "Marie Curie"], [24, 29, "LOC", "Warsaw"]])
    # in range of the words, but the mention text gives it away
    with pytest.raises(ValueError, match="not character offsets"):
        model.predict_relations("Paris is big and Rome is old too, they say", LABELS, ner=[[0, 4, "LOC", "Paris"], [6, 6, "X", "is"]])


@pytest.mark.parametrize("text,ner,error", [
    (42, NER, TypeError), ([1, 2], NER, TypeError), (TOKENS, [[0.5, 1, "X"], [2, 2, "X"]], TypeError), (TOKENS, "0 1 PER", TypeError),
])
def test_wrong_types_raise_type_errors(model, text, ner, error):
    with pytest.raises(error):
        model.predict_relations(text, LABELS, ner=ner)


@pytest.mark.parametrize("labels,error,match", [
    ([], ValueError, "labels is empty"), (["spouse", "spouse"], ValueError, "given twice"), (["spouse", ""], ValueError, "is empty"),
    (["spouse", 3], TypeError, "not a string"), ("spouse", TypeError, "list of strings"),
])
def test_bad_labels(model, labels, error, match):
    with pytest.raises(error, match=match):
        model.predict_relations(TOKENS, labels, ner=NER)


@pytest.mark.parametrize("threshold,error", [(float("nan"), ValueError), (-0.1, ValueError), (1.5, ValueError), ("0.5", TypeError), (True, TypeError)])
def test_bad_thresholds(model, threshold, error):
    with pytest.raises(error, match="threshold"):
        model.predict_relations(TOKENS, LABELS, ner=NER, threshold=threshold)


def test_texts_and_ner_of_different_lengths(model):
    with pytest.raises(ValueError, match="texts has 2 items but ner has 1"):
        model.batch_predict_relations([TOKENS, TOKENS], LABELS, ner=[NER])


def test_batch_names_every_bad_item_and_runs_nothing(model, monkeypatch):
    calls = []
    monkeypatch.setattr(model.session, "run", lambda *a, **k: calls.append(1))
    with pytest.raises(InputError) as error:
        model.batch_predict_relations([TOKENS, "", TOKENS, TOKENS], LABELS, ner=[NER, NER, [[0, 99, "X", "x"], [1, 1, "X", "y"]], NER])
    assert set(error.value.errors) == {1, 2}
    assert "item 1: text is empty" in str(error.value) and "item 2: entity 0" in str(error.value)
    assert calls == []


def test_one_bad_item_does_not_lose_the_others(model):
    good = model.batch_predict_relations([TOKENS, TOKENS], LABELS, ner=[NER, NER[:2]], threshold=0.0)
    mixed = model.batch_predict_relations([TOKENS, "", TOKENS], LABELS, ner=[NER, NER, NER[:2]], threshold=0.0, on_error="return")
    assert isinstance(mixed[1], InputError) and 1 in mixed[1].errors
    assert mixed[0] == good[0] and mixed[2] == good[1]


def test_limits_are_enforced_not_truncated(variants, encoders, tmp_path):
    model = variants["bert-dot"].runtime(max_pairs=20)
    with pytest.raises(ValueError, match=r"6 entities give 30 pairs, over max_pairs=20"):
        model.predict_relations([f"w{i}" for i in range(12)], LABELS, ner=[[i, i, "X", ""] for i in range(0, 12, 2)])
    too_many_words = [f"w{i}" for i in range(model.config.max_words + 5)]
    with pytest.raises(ValueError, match=f"text has {len(too_many_words)} words; this model accepts at most"):
        model.predict_relations(too_many_words, LABELS, ner=[[0, 0, "X", ""], [1, 1, "X", ""]])
    long_words = ["Marie Curie was born in Warsaw"] * 120  # 6 subwords each → over 512 subwords
    with pytest.raises(ValueError, match="subwords; the encoder accepts 512"):
        model.predict_relations(long_words, LABELS, ner=[[0, 0, "X", ""], [1, 1, "X", ""]])
    with pytest.raises(ValueError, match="alone takes .* prompt subwords"):
        model.predict_relations(TOKENS, ["relation " * 300], ner=NER)


# ----------------------------------------------------------------------------- outputs


def test_top_k_and_threshold(model):
    everything = model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0)
    assert len(everything) == 6 * len(LABELS)
    best = model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0, top_k=1)
    assert len(best) == 6
    for relation in best:
        same_pair = [r for r in everything if r["head_pos"] == relation["head_pos"] and r["tail_pos"] == relation["tail_pos"]]
        assert relation["score"] == max(r["score"] for r in same_pair)
    middle = float(np.median([r["score"] for r in everything]))
    above = model.predict_relations(TOKENS, LABELS, ner=NER, threshold=middle)
    assert 0 < len(above) == sum(r["score"] > middle for r in everything)
    assert all(r["score"] > middle for r in above)


def test_constraints_are_applied_before_top_k(model):
    """glirel filters types after top-1, losing a pair's allowed runner-up; we mask first."""
    everything = model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0)
    pair = [r for r in everything if r["head_pos"] == [0, 2] and r["tail_pos"] == [5, 6]]
    ranked = sorted(pair, key=lambda r: -r["score"])
    top, runner_up = ranked[0]["label"], ranked[1]["label"]
    constraints = {"glirel_labels": {label: {"allowed_head": ["PER"], "allowed_tail": ["LOC"]} for label in LABELS}}
    constraints["glirel_labels"][top] = {"allowed_head": ["ORG"]}  # the best label is not allowed for a PER head
    result = model.predict_relations(TOKENS, constraints, ner=NER, threshold=0.0, top_k=1)
    kept = [r for r in result if r["head_pos"] == [0, 2] and r["tail_pos"] == [5, 6]]
    assert [r["label"] for r in kept] == [runner_up]
    # every label but the top one needs a PER head and a LOC tail, and the top one an ORG head (there is none):
    # exactly the two PER→LOC pairs keep a relation, each its best label other than the top one
    kept_pairs = {(tuple(r["head_pos"]), tuple(r["tail_pos"])): r["label"] for r in result}
    assert set(kept_pairs) == {((0, 2), (5, 6)), ((8, 10), (5, 6))} and len(result) == 2
    pierre = sorted((r for r in everything if r["head_pos"] == [8, 10] and r["tail_pos"] == [5, 6] and r["label"] != top),
                    key=lambda r: -r["score"])
    assert kept_pairs[(8, 10), (5, 6)] == pierre[0]["label"]


def test_streaming_keeps_input_order_with_small_chunks(model):
    rows = [{"tokenized_text": TOKENS[: 6 + i % 5], "ner": NER[:2]} for i in range(23)]
    expected = model.batch_predict_relations([r["tokenized_text"] for r in rows], LABELS, ner=[r["ner"] for r in rows], threshold=0.2)
    streamed = list(model.predict_stream((r for r in rows), LABELS, threshold=0.2, batch_size=3, chunk_size=5))
    assert streamed == expected


def test_batches_do_not_change_results(model):
    texts = [TOKENS, TOKENS[:6], ["Berlin", "and", "Tokyo", "are", "capitals", "of", "their", "countries", "."] * 4]
    ner = [NER, NER[:2], [[0, 0, "LOC", ""], [2, 2, "LOC", ""], [27, 27, "LOC", ""]]]
    together = model.batch_predict_relations(texts, LABELS, ner=ner, threshold=0.0, batch_size=3)
    alone = [model.predict_relations(t, LABELS, ner=n, threshold=0.0) for t, n in zip(texts, ner)]
    for a, b in zip(together, alone):
        assert [r["label"] for r in a] == [r["label"] for r in b]
        assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) < 1e-5


def test_threads_share_one_model(model):
    inputs = [(TOKENS[: 6 + i % 5], NER[:2], LABELS[: 1 + i % 4]) for i in range(24)]
    sequential = [model.predict_relations(t, l, ner=n, threshold=0.0) for t, n, l in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda args: model.predict_relations(args[0], args[2], ner=args[1], threshold=0.0), inputs))
    assert parallel == sequential


# ----------------------------------------------------------------------------- loading and providers


def test_providers(variants):
    from glirel_runtime.providers import resolve_providers

    assert resolve_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="none of the providers"):
        resolve_providers(["NoSuchExecutionProvider"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = GLiREL(variants["deberta-dot"].artifact, providers=["NoSuchExecutionProvider", "CPUExecutionProvider"], threads=1)
    assert any("NoSuchExecutionProvider" in str(w.message) for w in caught)
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="threads"):
        GLiREL(variants["deberta-dot"].artifact, providers="cpu", threads=0)


def test_loading_errors(variants, tmp_path):
    with pytest.raises(ValueError, match="PyTorch glirel checkpoint; export it first"):
        GLiREL.from_pretrained(variants["deberta-dot"].checkpoint)
    with pytest.raises(FileNotFoundError):
        GLiREL.from_pretrained(tmp_path / "missing")
    copy = tmp_path / "artifact"
    import shutil

    shutil.copytree(variants["deberta-dot"].artifact, copy)
    config = json.loads((copy / CONFIG_FILE).read_text())
    config["format_version"] = 99
    (copy / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format_version 99 is not supported"):
        GLiREL.from_pretrained(copy)


def test_loading_from_the_hub_cache(variants, tmp_path, monkeypatch):
    """A Hub id resolves through huggingface_hub (here from a populated cache, offline)."""
    import shutil

    repo = tmp_path / "hub" / "models--someone--glirel-artifact"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(variants["deberta-dot"].artifact, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    model = GLiREL.from_pretrained("someone/glirel-artifact", providers="cpu")
    assert model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0) == variants["deberta-dot"].runtime().predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0)


def test_runtime_never_imports_torch_or_transformers(variants):
    script = textwrap.dedent(f"""
        from glirel_runtime import GLiREL
        from glirel_runtime import decoding, engines, features, pairs, pipeline, providers, validation, words
        from glirel_runtime.integrations import cli, triton_client
        model = GLiREL.from_pretrained({str(variants["deberta-dot"].artifact)!r}, providers="cpu")
        relations = model.predict_relations({TOKENS!r}, {LABELS!r}, ner={NER!r}, threshold=0.0)
        assert len(relations) == 24, relations
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")]
        print("torch-free ok")
    """)
    result = run_without_torch(script)
    assert result.returncode == 0, result.stderr
    assert "torch-free ok" in result.stdout


# ----------------------------------------------------------------------------- CLI


def test_cli_predict_jsonl(variants, shared_data, tmp_path):
    source = shared_data / "glirel" / "sample.jsonl"
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()][:5]
    rows.append({"tokenized_text": [], "ner": []})  # an invalid row is reported, not fatal
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "glirel_runtime.integrations.cli", "predict", "--model", str(variants["deberta-dot"].artifact), "--input",
         str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl"), "--threshold", "0.0", "--top-k", "1", "--providers", "cpu"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"{len(rows)} texts" in result.stderr and "1 invalid" in result.stderr
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(out) == len(rows) and "error" in out[-1]
    for row in out[:-1]:
        entities = len({(e[0], e[1]) for e in row["ner"]})
        assert len(row["predicted_relations"]) == (entities * (entities - 1) if entities >= 2 else 0)


def test_cli_extract(variants):
    result = subprocess.run(
        [sys.executable, "-m", "glirel_runtime.integrations.cli", "extract", "--model", str(variants["deberta-dot"].artifact), "--threshold", "0.0",
         "--top-k", "1", "--providers", "cpu"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # the example's type constraints allow 8 of the 12 ordered pairs (PERSON→LOC, PERSON↔PERSON, WORK↔PERSON)
    assert "--[" in result.stdout and "8 relations" in result.stderr


def test_batches_are_bounded_by_padded_pairs(model, monkeypatch):
    monkeypatch.setattr(model, "pair_budget", 40)  # the constructor's pair_budget
    sizes = []
    original = model.features.pad
    monkeypatch.setattr(model.features, "pad", lambda batch: sizes.append((len(batch), max(e.pair_index.shape[0] for e in batch))) or original(batch))
    words = [f"w{i}" for i in range(20)]
    texts = [words] * 6
    ner = [[[i, i, "X", ""] for i in range(0, 2 * k, 2)] for k in (2, 2, 3, 3, 6, 7)]  # 2, 2, 6, 6, 30, 42 pairs
    results = model.batch_predict_relations(texts, LABELS, ner=ner, threshold=0.0, batch_size=32)
    assert [len(r) for r in results] == [p * len(LABELS) for p in (2, 2, 6, 6, 30, 42)]
    assert all(count == 1 or count * widest <= 40 for count, widest in sizes) and len(sizes) >= 3


def test_positional_arguments_follow_glirel(model):
    """glirel's order: text, labels, flat_ner, threshold, ner, ground_truth_relations, top_k."""
    positional = model.predict_relations(TOKENS, LABELS, True, 0.0, NER, None, 1)
    assert positional == model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0, top_k=1)
    with pytest.raises(ValueError, match="ground_truth_relations"):
        model.predict_relations(TOKENS, LABELS, ner=NER, ground_truth_relations=[{"head": {}}])


# ----------------------------------------------------------------------------- GPU-path logic (checked on CPU)


def test_io_binding_gives_the_same_scores(variants):
    artifact = variants["deberta-dot"].artifact
    plain = GLiREL(artifact, providers="cpu", threads=1)
    bound = GLiREL(artifact, providers="cpu", threads=1, io_binding=True)
    assert plain.io_binding is False and bound.io_binding is True  # default: only on CUDA/TensorRT
    texts, ner = [TOKENS, TOKENS[:6]], [NER, NER[:2]]
    for a, b in zip(plain.score_pairs(texts, LABELS, ner), bound.score_pairs(texts, LABELS, ner)):
        assert np.array_equal(a.heads, b.heads) and np.array_equal(a.tails, b.tails)
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-6, rtol=0)
    with pytest.raises(TypeError, match="io_binding"):
        GLiREL(artifact, providers="cpu", io_binding="yes")


def test_tensorrt_profile_covers_every_input():
    from glirel_runtime.artifact import GRAPH_INPUTS, ArtifactConfig
    from glirel_runtime.trt_profile import ShapeLimits, profile_options

    config = ArtifactConfig(max_words=100, max_subwords=None)
    limits = ShapeLimits(batch=16, entities=10).resolve(config)
    assert (limits.subwords, limits.words, limits.pairs) == (512, 100, 90)
    options = profile_options(limits)
    parsed = {kind: dict(item.split(":") for item in options[f"trt_profile_{kind}_shapes"].split(",")) for kind in ("min", "opt", "max")}
    for kind in parsed:
        assert list(parsed[kind]) == list(GRAPH_INPUTS)
    assert parsed["max"]["input_ids"] == "16x512" and parsed["max"]["pair_index"] == "16x90x2" and parsed["max"]["text_lengths"] == "16"
    assert parsed["min"]["label_index"] == "1x1x2"
    for name in GRAPH_INPUTS:  # min <= opt <= max on every axis
        low, mid, high = ([int(d) for d in parsed[kind][name].split("x")] for kind in ("min", "opt", "max"))
        assert all(a <= b <= c for a, b, c in zip(low, mid, high)), name
    with pytest.raises(ValueError, match="entities"):
        ShapeLimits(entities=1)
    with pytest.raises(ValueError, match="ShapeLimits.batch"):
        ShapeLimits(batch=0)
    with pytest.raises(ValueError, match="resolve"):
        profile_options(ShapeLimits())


def test_tensorrt_options_merge_with_the_callers():
    from pathlib import Path

    from glirel_runtime.providers import TENSORRT, _with_defaults

    profile = {"trt_profile_max_shapes": "input_ids:8x64"}
    name, options = _with_defaults(TENSORRT, Path("/cache"), profile)
    assert name == TENSORRT and options["trt_engine_cache_path"] == "/cache" and options["trt_profile_max_shapes"] == "input_ids:8x64"
    _, options = _with_defaults((TENSORRT, {"trt_fp16_enable": False, "trt_profile_max_shapes": "mine"}), Path("/cache"), profile)
    assert options["trt_fp16_enable"] is False and options["trt_profile_max_shapes"] == "mine"
    assert _with_defaults("CPUExecutionProvider", Path("/cache"), profile) == "CPUExecutionProvider"


def test_tensorrt_limits_are_enforced_before_the_engine(variants, monkeypatch):
    """With TensorRT, batches stay inside the engine's profile and oversized items get a clear error."""
    from glirel_runtime import ShapeLimits

    model = GLiREL(variants["deberta-dot"].artifact, providers="cpu", threads=1)
    model.shape_limits = ShapeLimits(batch=2, entities=3, labels=3).resolve(model.config)  # as a TensorRT session sets it
    shapes = []
    original = model.session.run
    monkeypatch.setattr(model.session, "run", lambda names, inputs: shapes.append(inputs["pair_index"].shape) or original(names, inputs))
    texts = [TOKENS] * 5
    ner = [NER] * 4 + [NER + [[10, 10, "X", "."]]]  # the last has 4 entities, over the limit of 3
    results = model.batch_predict_relations(texts, LABELS[:3], ner=ner, threshold=0.0, on_error="return")
    assert [len(r) for r in results[:4]] == [18] * 4
    assert isinstance(results[4], InputError) and "4 entities" in str(results[4]) and "ShapeLimits(entities" in str(results[4])
    assert all(batch <= 2 and pairs <= 6 for batch, pairs, _ in shapes) and len(shapes) == 2
    shapes.clear()  # more labels than the engine's profile: run in prompt groups of at most 3
    grouped = model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0)
    assert len(LABELS) == 4 and len(shapes) == 2  # two prompt groups (3 + 1 labels), one run each
    model.shape_limits = None
    whole = model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0)
    assert [(r["head_pos"], r["tail_pos"], r["label"]) for r in grouped] == [(r["head_pos"], r["tail_pos"], r["label"]) for r in whole]
