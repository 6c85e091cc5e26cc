"""Label sets as users have them: prompt groups, per-label thresholds, descriptions, symmetric relations,
the artifact's calibrated default threshold, and hundreds of labels through every entry point."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from glirel_runtime import GLiREL
from glirel_runtime.integrations.cli import main as cli_main
from glirel_runtime.integrations.serve import RequestError, parse_request
from glirel_runtime.validation import check_labels

LABELS = ["place of birth", "spouse", "founded by", "located in", "employer"]
TOKENS = ["Marie", "Curie", "was", "born", "in", "Warsaw", "and", "married", "Pierre", "Curie", "."]
NER = [[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"], [8, 9, "PER", "Pierre Curie"]]


@pytest.fixture(scope="module")
def model(runtime) -> GLiREL:
    return runtime


def cells(relations):
    return {(tuple(r["head_pos"]), tuple(r["tail_pos"]), r["label"]): r["score"] for r in relations}


def test_prompt_groups_score_each_group_as_its_own_prompt(model):
    grouped = GLiREL(model.artifact_dir, providers="cpu", labels_per_prompt=2)
    assert grouped.label_groups(check_labels(LABELS)) == [[0, 1], [2, 3], [4]]
    got = cells(grouped.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0))
    assert len(got) == 6 * len(LABELS)
    want = {}
    for group in (LABELS[0:2], LABELS[2:4], LABELS[4:]):  # each group alone, in one prompt
        want.update(cells(model.predict_relations(TOKENS, group, ner=NER, threshold=0.0)))
    assert got.keys() == want.keys()
    assert [got[k] for k in sorted(got)] == pytest.approx([want[k] for k in sorted(want)], abs=1e-6)
    one_prompt = cells(model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0))
    assert max(abs(one_prompt[k] - got[k]) for k in got) > 1e-4  # the prompt changes the scores: groups are real


def test_top_k_and_constraints_apply_after_the_merge(model):
    grouped = GLiREL(model.artifact_dir, providers="cpu", labels_per_prompt=1)
    everything = grouped.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0)
    best = grouped.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0, top_k=1)
    assert len(best) == 6  # one label per pair across all groups, not one per group
    for relation in best:
        same_pair = [r["score"] for r in everything if (r["head_pos"], r["tail_pos"]) == (relation["head_pos"], relation["tail_pos"])]
        assert relation["score"] == max(same_pair)
    constrained = {"glirel_labels": {label: ({"allowed_head": ["PER"], "allowed_tail": ["LOC"]} if label == "place of birth" else {})
                                     for label in LABELS}}
    for relation in grouped.predict_relations(TOKENS, constrained, ner=NER, threshold=0.0):
        if relation["label"] == "place of birth":
            assert relation["head_text"] in (["Marie", "Curie"], ["Pierre", "Curie"]) and relation["tail_text"] == ["Warsaw"]


def test_per_label_thresholds(model):
    everything = model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0)
    scores = sorted(r["score"] for r in everything if r["label"] == "spouse")
    cut = (scores[2] + scores[3]) / 2  # between two distinct scores of this fixed text: keeps the top 3
    got = model.predict_relations(TOKENS, LABELS, ner=NER, threshold={"spouse": cut, "*": 1.0})
    assert [r["label"] for r in got] == ["spouse"] * 3 and all(r["score"] > cut for r in got)
    labelled = {"glirel_labels": {label: ({"threshold": cut} if label == "spouse" else {}) for label in LABELS}}
    assert model.predict_relations(TOKENS, labelled, ner=NER, threshold={"*": 1.0}) == got  # the label's own value
    assert model.predict_relations(TOKENS, labelled, ner=NER, threshold=0.0) == everything  # the call's number wins
    with pytest.raises(ValueError, match="not in the label set: \\['spuose'\\]"):
        model.predict_relations(TOKENS, LABELS, ner=NER, threshold={"spuose": 0.5})
    with pytest.raises(ValueError, match="threshold of label 'spouse' must be in \\[0, 1\\]"):
        model.predict_relations(TOKENS, LABELS, ner=NER, threshold={"spouse": 1.5})


def test_descriptions_are_the_prompt_and_names_the_output(model):
    described = {"glirel_labels": {"spouse": {"description": "married to"}, "founded by": {}}}
    got = model.predict_relations(TOKENS, described, ner=NER, threshold=0.0)
    as_text = model.predict_relations(TOKENS, ["married to", "founded by"], ner=NER, threshold=0.0)
    assert {r["label"] for r in got} == {"spouse", "founded by"}
    assert [r["score"] for r in got] == [r["score"] for r in as_text]  # the description is what the model read
    assert [r["label"] for r in got] == [{"married to": "spouse"}.get(r["label"], r["label"]) for r in as_text]
    with pytest.raises(ValueError, match="would both read 'spouse'"):
        model.predict_relations(TOKENS, {"glirel_labels": {"spouse": {}, "partner": {"description": "spouse"}}}, ner=NER)
    with pytest.raises(ValueError, match="unknown keys \\['descripton'\\]"):
        model.predict_relations(TOKENS, {"glirel_labels": {"spouse": {"descripton": "x"}}}, ner=NER)


def test_symmetric_labels_return_one_direction(model):
    both = [r for r in model.predict_relations(TOKENS, ["spouse"], ner=NER, threshold=0.0)]
    symmetric = model.predict_relations(TOKENS, {"glirel_labels": {"spouse": {"symmetric": True}}}, ner=NER, threshold=0.0)
    assert len(both) == 6 and len(symmetric) == 3  # 3 unordered pairs
    by_pair = {}
    for r in both:
        by_pair.setdefault(frozenset([tuple(r["head_pos"]), tuple(r["tail_pos"])]), []).append(r)
    for r in symmetric:
        pair = by_pair[frozenset([tuple(r["head_pos"]), tuple(r["tail_pos"])])]
        assert r["score"] == max(x["score"] for x in pair)
    with pytest.raises(TypeError, match="symmetric of label 'spouse' must be true or false"):
        model.predict_relations(TOKENS, {"glirel_labels": {"spouse": {"symmetric": "yes"}}}, ner=NER)


def test_the_artifacts_calibrated_threshold_is_the_default(model, artifact, tmp_path):
    scores = sorted(r["score"] for r in model.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0))
    middle = round((scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2, 6)
    copy = tmp_path / "calibrated"
    shutil.copytree(artifact, copy)
    data = json.loads((copy / "glirel_artifact.json").read_text())
    data["default_threshold"] = middle
    (copy / "glirel_artifact.json").write_text(json.dumps(data))
    calibrated = GLiREL(copy, providers="cpu")
    default = calibrated.predict_relations(TOKENS, LABELS, ner=NER)
    assert default == calibrated.predict_relations(TOKENS, LABELS, ner=NER, threshold=middle)
    assert 0 < len(default) < len(scores)
    assert len(calibrated.predict_relations(TOKENS, LABELS, ner=NER, threshold=0.0)) == len(scores)  # explicit wins
    document = calibrated.predict_document(TOKENS, LABELS, ner=NER)
    assert cells(document["relations"]) == cells(default)


def test_five_hundred_labels_everywhere(model, tmp_path, capsys):
    labels = [f"relation number {i} between the two" for i in range(500)]
    relations = model.predict_relations(TOKENS, labels, ner=NER, threshold=0.0, top_k=2)
    assert len(relations) == 12 and {r["label"] for r in relations} <= set(labels)
    document = model.predict_document(TOKENS * 3, labels, ner=NER + [[n[0] + 22, n[1] + 22, n[2], n[3]] for n in NER],
                                      threshold=0.0, top_k=1)
    assert len(document["relations"]) == 30  # 6 entities → 30 ordered pairs, one label each

    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"tokenized_text": TOKENS, "ner": NER}) + "\n")
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    (tmp_path / "thresholds.json").write_text(json.dumps({labels[0]: 0.0, "*": 1.0}))
    code = cli_main(["predict", "--model", str(model.artifact_dir), "--input", str(rows), "--output", str(tmp_path / "out.jsonl"),
                     "--labels-file", str(tmp_path / "labels.json"), "--thresholds", str(tmp_path / "thresholds.json"),
                     "--quiet", "--providers", "cpu"])
    assert code == 0
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(out) == 1 and {r["label"] for r in out[0]["predicted_relations"]} == {labels[0]} and len(out[0]["predicted_relations"]) == 6

    request = parse_request(json.dumps({"tokens": TOKENS, "entities": NER, "labels": labels,
                                        "threshold": {labels[1]: 0.0, "*": 1.0}}).encode())
    assert request["labels"] == labels
    with pytest.raises(RequestError, match="threshold must be in"):
        parse_request(json.dumps({"tokens": TOKENS, "entities": NER, "labels": labels, "threshold": 7}).encode())


def test_prompt_groups_follow_the_encoder_limit(model):
    """Without labels_per_prompt, a label set whose prompt would crowd out the text is split, each
    group within the prompt share of the encoder's subwords."""
    from glirel_runtime.model import MAX_PROMPT_SHARE
    from glirel_runtime.pipeline import prompt_subwords

    spec = check_labels([f"relation number {i} between the two" for i in range(500)])
    groups = model.label_groups(spec)
    assert len(groups) > 1 and sorted(c for g in groups for c in g) == list(range(500))
    limit = model.config.max_subwords * MAX_PROMPT_SHARE
    assert all(prompt_subwords(model.features, [spec.prompts[c] for c in g]) <= limit for g in groups)
    assert model.label_groups(check_labels(LABELS)) == [list(range(len(LABELS)))]
    np.testing.assert_array_equal(np.concatenate(groups), np.arange(500))
