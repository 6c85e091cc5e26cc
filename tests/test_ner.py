"""Raw text in: spaCy's entities aligned to the runtime's words, their types feeding the label constraints."""
from __future__ import annotations

import sys

import pytest
import spacy

from glirel_runtime import GLiREL
from glirel_runtime import ner as ner_module
from glirel_runtime.integrations.cli import main
from glirel_runtime.ner import RELATION_LABELS, EntityFinder, align_entities, find_entities, load_pipeline
from glirel_runtime.resolve import default_model_dir
from glirel_runtime.validation import InputError
from glirel_runtime.words import split_words

TEXT = "Apple was founded by Steve Jobs in Cupertino."


def ruler_pipeline(patterns):
    """A real spaCy pipeline whose entities are fixed by patterns (no statistical model)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(patterns)
    return nlp


def covered_text(text, entity):
    words = split_words(text)
    start, end = entity[0], entity[1]
    return text[words.char_spans[start][0]:words.char_spans[end][1]]


def test_align_entities_expands_to_whole_words_and_drops_repeats():
    text = "Acme-Globex merged; O'Neil left."
    spans = split_words(text).char_spans  # Acme-Globex | merged | ; | O | ' | Neil | left | .
    entities = align_entities(spans, [(0, 4, "ORG"), (5, 11, "ORG"), (20, 26, "PERSON"), (40, 45, "ORG")], text)
    # Acme and Globex fall in one runtime word: one span; O'Neil covers three words; offsets past the text touch none
    assert entities == [[0, 0, "ORG", "Acme-Globex"], [3, 5, "PERSON", "O'Neil"]]


def test_finder_spans_index_the_runtime_words_of_a_string():
    finder = EntityFinder(ruler_pipeline([{"label": "ORG", "pattern": "Globex"},
                                          {"label": "PERSON", "pattern": [{"LOWER": "hank"}, {"LOWER": "scorpio"}]}]))
    text = "Hank Scorpio's firm, Globex-Corp, hired Homer."
    found = finder(text)
    assert [e[2] for e in found] == ["PERSON", "ORG"]
    for entity in found:
        assert entity[3] == covered_text(text, entity)
    assert [e[3] for e in found] == ["Hank Scorpio", "Globex-Corp"]


def test_finder_on_a_token_list_indexes_those_tokens_and_filters_types():
    tokens = ["In", "1989", ",", "Hank", "Scorpio", "founded", "Globex", "."]
    patterns = [{"label": "ORG", "pattern": "Globex"}, {"label": "DATE", "pattern": "1989"},
                {"label": "PERSON", "pattern": [{"LOWER": "hank"}, {"LOWER": "scorpio"}]}]
    assert EntityFinder(ruler_pipeline(patterns))(tokens) == [[1, 1, "DATE", "1989"], [3, 4, "PERSON", "Hank Scorpio"],
                                                             [6, 6, "ORG", "Globex"]]
    assert EntityFinder(ruler_pipeline(patterns), types={"ORG"})(tokens) == [[6, 6, "ORG", "Globex"]]


def test_find_batch_keeps_order_and_names_a_bad_text():
    finder = EntityFinder(ruler_pipeline([{"label": "ORG", "pattern": "Globex"}]))
    assert finder.find_batch(["Globex won .", "nothing here", ["at", "Globex"]]) == [
        [[0, 0, "ORG", "Globex"]], [], [[1, 1, "ORG", "Globex"]]]
    with pytest.raises(ValueError, match="text 1: text is empty"):
        finder.find_batch(["Globex", "  "])
    with pytest.raises(TypeError, match="text 0"):
        finder.find_batch([42])
    found = finder.find_batch(["Globex", "  ", 42, "at Globex"], on_error="return")
    assert found[0] == [[0, 0, "ORG", "Globex"]] and found[3] == [[1, 1, "ORG", "Globex"]]
    assert isinstance(found[1], ValueError) and isinstance(found[2], TypeError)


def test_one_bad_raw_text_leaves_the_others_alone():
    model = GLiREL.from_pretrained()
    labels = ["founded by", "place of birth", "headquartered in"]
    good = [TEXT, "Marie Curie was born in Warsaw and worked in Paris."]
    alone = model.batch_predict_relations(good, labels, threshold=0.0)
    mixed = model.batch_predict_relations([good[0], "   ", 7, good[1]], labels, threshold=0.0, on_error="return")
    assert mixed[0] == alone[0] and mixed[3] == alone[1] and alone[0]
    assert isinstance(mixed[1], InputError) and "empty" in str(mixed[1])
    assert isinstance(mixed[2], InputError) and 2 in mixed[2].errors
    with pytest.raises(InputError, match="item 1"):
        model.batch_predict_relations([good[0], "   "], labels)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(TypeError, match="types"):
        EntityFinder(ruler_pipeline([]), types="ORG")
    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(ValueError, match="no 'ner' component"):
        load_pipeline(str(tmp_path / "blank"))


def test_missing_spacy_or_pipeline_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ner_module, "PIPELINES", ("no_such_pipeline_package",))
    with pytest.raises(ImportError, match=r'glirel-onnx\[ner\]'):
        load_pipeline()
    monkeypatch.setitem(sys.modules, "spacy", None)  # import spacy now raises ImportError
    with pytest.raises(ImportError, match=r'needs spaCy: pip install "glirel-onnx\[ner\]"'):
        load_pipeline()


def test_english_pipeline_finds_people_organisations_and_places():
    found = find_entities(TEXT)
    assert [[0, 0, "ORG", "Apple"], [4, 5, "PERSON", "Steve Jobs"]] == found[:2]
    assert found[2][2] in ("GPE", "LOC") and found[2][3] == "Cupertino"
    text = "Marie Curie's lab at the University of Paris hired Paul Langevin in 1903."
    for entity in find_entities(text):
        assert entity[3] == covered_text(text, entity)


def test_entity_types_feed_the_label_constraints():
    model = GLiREL(default_model_dir(), providers="cpu")
    entities = find_entities(TEXT)
    types = {e[3]: e[2] for e in entities}
    relations = model.predict_relations(TEXT, RELATION_LABELS, ner=entities, threshold=0.0)
    assert relations, "no pair was scored"
    rules = RELATION_LABELS["glirel_labels"]
    for relation in relations:
        head, tail = types[" ".join(relation["head_text"])], types[" ".join(relation["tail_text"])]
        assert head in rules[relation["label"]]["allowed_head"] and tail in rules[relation["label"]]["allowed_tail"], relation
    # "founded by" is possible only from the organisation to the person
    assert {(" ".join(r["head_text"]), " ".join(r["tail_text"])) for r in relations if r["label"] == "founded by"} == {
        ("Apple", "Steve Jobs")}


def test_cli_extract_with_raw_text(capsys):
    assert main(["extract", "--text", TEXT, "--providers", "cpu", "--threshold", "0.0", "--top-k", "1"]) == 0
    out = capsys.readouterr().out
    assert "entities: Apple (ORG), Steve Jobs (PERSON), Cupertino" in out
    assert "Apple --[" in out and "--> Steve Jobs" in out


def test_cli_raw_text_without_spacy_says_what_to_do(monkeypatch):
    def no_spacy(text):
        raise ImportError('finding entities in raw text needs spaCy: pip install "glirel-onnx[ner]"')

    monkeypatch.setattr(ner_module, "find_entities", no_spacy)
    with pytest.raises(SystemExit) as exit_:
        main(["extract", "--text", TEXT, "--providers", "cpu"])
    assert 'glirel-onnx[ner]' in str(exit_.value.code) and "--entities" in str(exit_.value.code)
