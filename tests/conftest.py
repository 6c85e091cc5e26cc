"""Shared fixtures: tiny offline encoders, glirel checkpoints per config variant, exported artifacts.

Everything is built on the spot; nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import build_encoder, build_glirel_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GLIREL_ONNX_SHARED_DATA") or REPO.parent / "shared" / "data")

# name → (encoder kind, glirel config overrides). Each is a config variant the exporter supports.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "deberta-dot": ("deberta", {}),
    "deberta-dot_thresh": ("deberta", {"scorer": "dot_thresh"}),
    "deberta-dot_norm": ("deberta", {"scorer": "dot_norm"}),
    "deberta-concat_proj": ("deberta", {"scorer": "concat_proj"}),
    "deberta-markerv2": ("deberta", {"span_marker_mode": "markerv2"}),
    "deberta-label": ("deberta", {"label_embed_strategy": "label"}),
    "deberta-both": ("deberta", {"label_embed_strategy": "both"}),
    "deberta-refine": ("deberta", {"hidden_size": 64, "refine_prompt": True, "refine_relation": True}),
    "deberta-coref": ("deberta", {"coref_classifier": True}),
    "deberta-projection": ("deberta", {"hidden_size": 48}),
    "deberta-markers": ("deberta", {"add_entity_markers": True}),
    "deberta-window": ("deberta", {"max_entity_pair_distance": 4}),
    "bert-dot": ("bert", {}),
    "mpnet-dot_thresh": ("mpnet", {"scorer": "dot_thresh", "span_marker_mode": "markerv2"}),
}


@dataclass
class Variant:
    name: str
    checkpoint: Path
    artifact: Path
    overrides: dict[str, Any]

    def reference(self):
        """A freshly loaded glirel model (the oracle), as users load it."""
        from glirel import GLiREL as ReferenceGLiREL

        model = ReferenceGLiREL._from_pretrained(
            model_id=str(self.checkpoint), revision=None, cache_dir=None, force_download=False, proxies=None,
            resume_download=False, local_files_only=True, token=None,
        )
        model.eval()
        return model

    def runtime(self, **kwargs):
        from glirel_runtime import GLiREL

        return GLiREL.from_pretrained(self.artifact, providers="cpu", **kwargs)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or $GLIREL_ONNX_SHARED_DATA; its absence fails the test (one line, no traceback), never skips it."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}: set GLIREL_ONNX_SHARED_DATA to the shared data folder "
                    f"(or put shared/data beside the checkout)", pytrace=False)
    return SHARED_DATA


@pytest.fixture(scope="session")
def encoders(tmp_path_factory) -> dict[str, Path]:
    cache: dict[str, Path] = {}

    class Encoders(dict):
        def __missing__(self, kind: str) -> Path:
            path = build_encoder(tmp_path_factory.mktemp(f"encoder-{kind}"), kind)
            self[kind] = path
            return path

    return Encoders(cache)


@pytest.fixture(scope="session")
def variants(tmp_path_factory, encoders):
    """variants[name] → a `Variant` with a glirel-saved checkpoint and its exported artifact (built lazily)."""
    from glirel_export import export_checkpoint

    class Variants(dict):
        def __missing__(self, name: str) -> Variant:
            kind, overrides = VARIANTS[name]
            root = tmp_path_factory.mktemp(name)
            build_glirel_checkpoint(root / "checkpoint", encoders[kind], seed=len(name), **overrides)
            export_checkpoint(root / "checkpoint", root / "artifact")
            variant = Variant(name, root / "checkpoint", root / "artifact", overrides)
            self[name] = variant
            return variant

    return Variants()


def read_fewrel_examples(shared: Path, per_relation: int = 2, relations: int = 6) -> list[tuple[list[str], list[list]]]:
    """FewRel val_wiki sentences with their head and tail entity as glirel ner spans."""
    data = json.loads((shared / "fewrel" / "val_wiki.json").read_text())
    examples = []
    for relation in sorted(data)[:relations]:
        for item in data[relation][:per_relation]:
            spans = []
            for role, entity in (("H", item["h"]), ("T", item["t"])):
                positions = entity[2][0]
                spans.append([positions[0], positions[-1], role, entity[0]])
            if (spans[0][0], spans[0][1]) != (spans[1][0], spans[1][1]):
                examples.append((item["tokens"], spans))
    return examples


def read_redocred_examples(shared: Path, documents: int = 4) -> list[tuple[list[str], list[list]]]:
    """Re-DocRED sentences with every entity mention inside them (several entities each)."""
    data = json.loads((shared / "redocred" / "dev_revised.json").read_text())
    examples = []
    for document in data[:documents]:
        for sent_id, sentence in enumerate(document["sents"][:3]):
            spans, seen = [], set()
            for entity in document["vertexSet"]:
                for mention in entity:
                    if mention["sent_id"] == sent_id and (mention["pos"][0], mention["pos"][1] - 1) not in seen:
                        seen.add((mention["pos"][0], mention["pos"][1] - 1))
                        spans.append([mention["pos"][0], mention["pos"][1] - 1, mention["type"], mention["name"]])
            if len(spans) >= 2:
                examples.append((sentence, spans))
    return examples


@pytest.fixture(scope="session")
def artifact(variants) -> Path:
    """The artifact the integration tests serve (tiny BERT, dot scorer)."""
    return variants["bert-dot"].artifact


@pytest.fixture(scope="session")
def runtime(artifact):
    """The in-process runtime on `artifact`, the reference the integrations must equal."""
    from glirel_runtime import GLiREL

    return GLiREL(artifact, providers="cpu")


TORCH_BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
"""


def run_without_torch(script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter where importing torch or transformers raises."""
    return subprocess.run([sys.executable, "-c", TORCH_BLOCKER + script], capture_output=True, text=True, timeout=timeout)
