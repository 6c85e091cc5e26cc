"""The spaCy component on a blank pipeline + entity ruler (no downloaded spaCy model)."""
from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_without_torch
import spacy
from spacy.tokens import Span

import glirel_runtime.integrations.spacy_component  # noqa: F401  registers the factory

TEXTS = [
    "Marie Curie was born in Warsaw and worked in Paris with Pierre Curie .",
    "Apple was founded by Steve Jobs in Cupertino , California , in 1976 .",
    "Ada Lovelace , daughter of Lord Byron , wrote the first program .",
    "Berlin is the capital of Germany .",
    "Nothing to see here .",
]
PATTERNS = [
    {"label": "PER", "pattern": [{"LOWER": "marie"}, {"LOWER": "curie"}]},
    {"label": "PER", "pattern": [{"LOWER": "pierre"}, {"LOWER": "curie"}]},
    {"label": "PER", "pattern": [{"LOWER": "steve"}, {"LOWER": "jobs"}]},
    {"label": "PER", "pattern": [{"LOWER": "ada"}, {"LOWER": "lovelace"}]},
    {"label": "PER", "pattern": [{"LOWER": "lord"}, {"LOWER": "byron"}]},
    {"label": "ORG", "pattern": "Apple"},
    {"label": "LOC", "pattern": "Warsaw"}, {"label": "LOC", "pattern": "Paris"},
    {"label": "LOC", "pattern": "Cupertino"}, {"label": "LOC", "pattern": "California"},
    {"label": "LOC", "pattern": "Berlin"}, {"label": "LOC", "pattern": "Germany"},
    {"label": "DATE", "pattern": "1976"},
]
LABELS = ["place of birth", "founded by", "father", "capital of", "spouse"]
CONSTRAINED = {"glirel_labels": {
    "place of birth": {"allowed_head": ["PER"], "allowed_tail": ["LOC"]},
    "founded by": {"allowed_head": ["ORG"], "allowed_tail": ["PER"]},
    "capital of": {"allowed_head": ["LOC"], "allowed_tail": ["LOC"]},
    "spouse": {},
}}


def make_nlp(artifact, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    nlp.add_pipe("glirel_onnx", config={"model": str(artifact), "providers": "cpu", **config})
    return nlp


def expected(runtime, doc, labels, threshold, top_k):
    tokens = [t.text for t in doc]
    ner = [[e.start, e.end - 1, e.label_, e.text] for e in doc.ents]
    return runtime.predict_relations(tokens, labels, ner=ner, threshold=threshold, top_k=top_k)


def plain(relations):
    return [{k: v for k, v in r.items() if k not in ("head", "tail")} for r in relations]


def test_labels_from_config_match_the_runtime(artifact, runtime):
    nlp = make_nlp(artifact, labels=LABELS, threshold=0.0, top_k=2)
    total = 0
    for text in TEXTS:
        doc = nlp(text)
        want = expected(runtime, doc, LABELS, 0.0, 2)
        assert plain(doc._.relations) == want
        total += len(want)
        for relation in doc._.relations:
            assert isinstance(relation["head"], Span) and isinstance(relation["tail"], Span)
            assert relation["head"] in doc.ents and relation["tail"] in doc.ents
            assert [t.text for t in relation["head"]] == relation["head_text"]
            assert (relation["tail"].start, relation["tail"].end) == tuple(relation["tail_pos"])
    assert total > 0
    assert nlp("Nothing to see here .")._.relations == []


def test_pipe_batches_and_equals_single_docs(artifact, runtime):
    nlp = make_nlp(artifact, labels=LABELS, threshold=0.3, top_k=1, batch_size=2)
    docs = list(nlp.pipe(TEXTS * 3, batch_size=4))
    assert len(docs) == 15
    for doc in docs:
        assert plain(doc._.relations) == expected(runtime, doc, LABELS, 0.3, 1)
    assert [plain(d._.relations) for d in docs[:5]] == [plain(nlp(t)._.relations) for t in TEXTS]


def test_labels_and_constraints_from_doc_context(artifact, runtime):
    nlp = make_nlp(artifact, threshold=0.0, top_k=-1)  # no labels in the config
    contexts = [{"glirel_labels": CONSTRAINED}, {"glirel_labels": ["spouse", "father"]}] * 2
    results = list(nlp.pipe(zip(TEXTS[:4], contexts), as_tuples=True))
    for (doc, context), text in zip(results, TEXTS[:4]):
        assert doc.text == text
        want = expected(runtime, doc, context["glirel_labels"], 0.0, -1)
        assert plain(doc._.relations) == want
    constrained = [r for doc, context in results if context["glirel_labels"] is CONSTRAINED for r in doc._.relations]
    assert constrained, "threshold 0 must keep some allowed relations"
    rules = CONSTRAINED["glirel_labels"]
    for relation in constrained:
        rule = rules[relation["label"]]
        assert relation["head"].label_ in rule.get("allowed_head", [relation["head"].label_])
        assert relation["tail"].label_ in rule.get("allowed_tail", [relation["tail"].label_])
    # the unconstrained run over the same text finds disallowed pairs, so the mask did something
    doc0 = results[0][0]
    unconstrained = expected(runtime, doc0, list(rules), 0.0, -1)
    assert len(unconstrained) > len(doc0._.relations)


def test_doc_extension_overrides_config(artifact, runtime):
    nlp = make_nlp(artifact, labels=["spouse"], threshold=0.0)
    doc = nlp.make_doc(TEXTS[1])
    doc._.glirel_labels = ["founded by", "headquartered in"]
    for name, component in nlp.pipeline:
        doc = component(doc)
    assert {r["label"] for r in doc._.relations} <= {"founded by", "headquartered in"}
    assert plain(doc._.relations) == expected(runtime, doc, ["founded by", "headquartered in"], 0.0, 1)


def test_pipeline_round_trips_through_disk(artifact, tmp_path):
    nlp = make_nlp(artifact, labels=CONSTRAINED, threshold=0.0, top_k=-1)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("glirel_onnx").labels_config == CONSTRAINED
    for text in TEXTS[:2]:
        assert plain(loaded(text)._.relations) == plain(nlp(text)._.relations) != []


def test_missing_labels_and_bad_config_are_clear_errors(artifact):
    nlp = make_nlp(artifact)
    with pytest.raises(ValueError, match="no relation labels"):
        nlp(TEXTS[0])
    with pytest.raises(ValueError, match="threshold"):
        make_nlp(artifact, labels=LABELS, threshold=2.0)
    with pytest.raises(ValueError, match="is empty"):
        make_nlp(artifact, labels=[])
    with pytest.raises(FileNotFoundError):
        make_nlp(artifact.parent / "no-such-artifact", labels=LABELS)


def test_error_handler_protocol(artifact):
    nlp = make_nlp(artifact)  # no labels: every batch fails
    seen = []
    nlp.set_error_handler(lambda name, component, docs, error: seen.append((name, len(docs), type(error))))
    docs = list(nlp.pipe(TEXTS[:3], batch_size=2))
    assert len(docs) == 3
    assert seen == [("glirel_onnx", 2, ValueError), ("glirel_onnx", 1, ValueError)]


def test_factory_entry_point_is_declared():
    """pyproject.toml declares the factory under spaCy's entry-point group."""
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    section = text.split("[project.entry-points.spacy_factories]", 1)
    assert len(section) == 2, "pyproject.toml has no [project.entry-points.spacy_factories] table"
    entries = dict(line.split("=", 1) for line in section[1].split("\n[", 1)[0].splitlines() if "=" in line)
    declared = {k.strip(): v.strip().strip('"') for k, v in entries.items()}["glirel_onnx"]
    module, _, attribute = declared.partition(":")
    assert getattr(importlib.import_module(module), attribute) is glirel_runtime.integrations.spacy_component.make_glirel_component


def test_spacy_finds_the_factory_without_an_import(artifact):
    """Installed (`pip install -e .` after the entry point was declared), spaCy loads the factory itself."""
    script = textwrap.dedent(f"""
        import sys, spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("entity_ruler").add_patterns([{{"label": "PER", "pattern": "Ada"}}, {{"label": "PER", "pattern": "Byron"}}])
        nlp.add_pipe("glirel_onnx", config={{"model": {str(artifact)!r}, "labels": ["spouse"], "threshold": 0.0}})
        assert len(nlp("Ada met Byron .")._.relations) == 2
        print("entry point ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "entry point ok" in result.stdout


def test_component_runs_without_torch(artifact):
    """Our code never needs torch (spaCy's thinc imports it only when it is installed)."""
    script = textwrap.dedent(f"""
        import spacy
        import glirel_runtime.integrations.spacy_component
        nlp = spacy.blank("en")
        nlp.add_pipe("entity_ruler").add_patterns([{{"label": "PER", "pattern": "Ada"}}, {{"label": "PER", "pattern": "Byron"}}])
        nlp.add_pipe("glirel_onnx", config={{"model": {str(artifact)!r}, "labels": ["spouse", "father"], "threshold": 0.0}})
        doc = nlp("Ada met Byron .")
        assert len(doc._.relations) == 2, doc._.relations
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")]
        print("torch-free ok")
    """)
    result = run_without_torch(script)
    assert result.returncode == 0, result.stderr
    assert "torch-free ok" in result.stdout
