"""Converters and splits on the real shared data (../shared/data must exist: its absence fails)."""
from __future__ import annotations

import json

import pytest

from glirel_export.datasets import (
    fewrel_to_glirel, fewrel_val_wiki_relations, label_name, load_fewrel, load_redocred, redocred_to_glirel,
    relation_counts, training_instances, webnlg_to_glirel, wikidata_names, wikizsl_holdout_relations,
)


@pytest.fixture(scope="module")
def names(shared_data):
    return wikidata_names(shared_data)


@pytest.fixture(scope="module")
def split(shared_data):
    return training_instances(shared_data)


def _check_instance(instance):
    words = instance["tokenized_text"]
    spans = {(s, e) for s, e, *_ in instance["ner"]}
    assert len(spans) == len(instance["ner"]), "duplicate entity spans"
    for start, end, _type, text in instance["ner"]:
        assert 0 <= start <= end < len(words)
        assert text == " ".join(words[start:end + 1])
    for rel in instance["relations"]:
        for side in ("head", "tail"):
            s, e = rel[side]["position"]
            assert (s, e) in spans, "a relation argument is not one of the entities"
            assert rel[side]["mention"] == " ".join(words[s:e + 1])
        assert rel["relation_text"] and not rel["relation_text"].startswith("P")


def test_fewrel_val_wiki_conversion(shared_data, names):
    raw = load_fewrel(shared_data / "fewrel" / "val_wiki.json")
    instances = fewrel_to_glirel(raw, names)
    assert len(instances) == sum(len(v) for v in raw.values()) == 11200
    pid2name = json.loads((shared_data / "fewrel" / "pid2name.json").read_text())
    for instance in instances[::97]:
        _check_instance(instance)
        rel = instance["relations"][0]
        assert rel["relation_text"] == pid2name[rel["relation_id"]][0]
    first = raw["P177"][0]
    converted = next(i for i in instances if i["relations"][0]["relation_id"] == "P177")
    assert converted["relations"][0]["head"]["position"] == [min(first["h"][2][0]), max(first["h"][2][0])]
    assert converted["relations"][0]["relation_text"] == "crosses"


def test_redocred_sentence_windows(shared_data, names):
    docs = load_redocred(shared_data / "redocred" / "dev_revised.json")[:30]
    instances = redocred_to_glirel(docs, names)
    assert instances and all(len(i["ner"]) >= 2 for i in instances)
    for instance in instances:
        _check_instance(instance)
        assert instance["tokenized_text"] == docs[instance["doc"]]["sents"][instance["sents"][0]]
    # every intra-sentence triple of document 0 is present, on every mention pair inside the sentence
    doc = docs[0]
    expected = set()
    for label in doc["labels"]:
        for hm in doc["vertexSet"][label["h"]]:
            for tm in doc["vertexSet"][label["t"]]:
                if hm["sent_id"] == tm["sent_id"]:
                    expected.add((hm["sent_id"], hm["pos"][0], hm["pos"][1] - 1, tm["pos"][0], tm["pos"][1] - 1, label["r"]))
    got = {(i["sents"][0], *r["head"]["position"], *r["tail"]["position"], r["relation_id"])
           for i in instances if i["doc"] == 0 for r in i["relations"]}
    assert expected and expected == got
    two = redocred_to_glirel(docs[:5], names, window=2)
    assert all(len(i["sents"]) == 2 for i in two)
    with pytest.raises(ValueError, match="window"):
        redocred_to_glirel(docs, names, window=0)


def test_no_fewrel_or_heldout_relation_in_training(shared_data, split):
    instances, description = split
    fewrel = set(fewrel_val_wiki_relations(shared_data))
    assert len(fewrel) == 16
    holdout = set(description["wikizsl_holdout"])
    trained = set(relation_counts(instances))
    assert trained == set(description["train"])
    assert not trained & fewrel, "a FewRel val_wiki relation leaked into training"
    assert not trained & holdout, "a held-out relation leaked into training"
    # the FewRel relations that Re-DocRED has (by Wikidata id) were really removed
    redocred_all = set(json.loads((shared_data / "redocred" / "rel2id.json").read_text()))
    assert len(fewrel & redocred_all) >= 5
    fewrel_names = {label_name(r, wikidata_names(shared_data)) for r in fewrel | holdout}
    assert not fewrel_names & {r["relation_text"] for i in instances for r in i["relations"]}
    assert all(i["relations"] for i in instances)


def test_wikizsl_holdout(shared_data):
    holdout = wikizsl_holdout_relations(shared_data)
    assert 10 <= len(holdout) <= 15 and len(set(holdout)) == len(holdout)
    wiki = json.loads((shared_data / "glirel" / "pid2name_wiki.json").read_text())
    assert set(holdout) <= set(wiki)
    assert not set(holdout) & set(fewrel_val_wiki_relations(shared_data))
    assert holdout == wikizsl_holdout_relations(shared_data), "the hold-out must be deterministic"


def test_webnlg_conversion(shared_data):
    instances = webnlg_to_glirel(shared_data / "webnlg" / "test.json")
    assert len(instances) > 500
    for instance in instances[::50]:
        _check_instance(instance)
    assert any(r["relation_text"] == "birth place" for i in instances for r in i["relations"])


def test_missing_data_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        training_instances(tmp_path)
