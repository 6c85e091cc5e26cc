"""Export-time verification: the ONNX graph against a freshly loaded PyTorch model.

Cases cover the shapes that break traced graphs: 1 and 25 labels, 2 and 30
entities, short and long texts, and a padded batch of mixed lengths.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from glirel_runtime.features import FeatureBuilder
from glirel_runtime.pipeline import decode_scores

SAMPLE_WORDS = (
    "Marie Curie was born in Warsaw and later worked in Paris with her husband Pierre . "
    "The river flows past Oxford before it reaches London , where the company was founded in 1976 . "
    "Ada Lovelace , daughter of Lord Byron , wrote notes on the Analytical Engine of Charles Babbage . "
    "Zürich , São Paulo and Kraków host universities , museums and a café called Ñuñoa 🙂 ."
).split()
SAMPLE_LABELS = [
    "place of birth", "spouse", "founded by", "headquartered in", "located in", "father", "mother",
    "employer", "member of", "country", "capital of", "child", "sibling", "educated at", "award received",
    "part of", "follows", "followed by", "instance of", "author", "notable work", "field of work",
    "located next to body of water", "country of citizenship", "place of death",
]


@dataclass
class VerificationCase:
    name: str
    labels: list[str]
    word_lists: list[list[str]]
    span_lists: list[list[tuple[int, int]]]


def _text(rng: random.Random, length: int) -> list[str]:
    return [SAMPLE_WORDS[(rng.randrange(len(SAMPLE_WORDS)) + i) % len(SAMPLE_WORDS)] for i in range(length)]


def _spans(rng: random.Random, num_words: int, count: int, max_width: int = 3) -> list[tuple[int, int]]:
    """`count` distinct, non-overlapping spans (so entity markers stay well defined)."""
    starts = sorted(rng.sample(range(0, num_words, max_width + 1), count))
    spans = [(s, min(s + rng.randrange(max_width), num_words - 1)) for s in starts]
    rng.shuffle(spans)
    return spans


def verification_cases(max_words: int, max_subwords: Optional[int], seed: int = 13) -> list[VerificationCase]:
    """The fixed set of export checks, sized to the checkpoint's limits."""
    rng = random.Random(seed)
    long_words = min(max_words, 160 if max_subwords is None else max(40, max_subwords // 3))
    cases = []
    for name, labels, lengths, entities in [
        ("1 label, 2 entities, short text", SAMPLE_LABELS[:1], [9], [2]),
        ("25 labels, 30 entities, long text", SAMPLE_LABELS, [long_words], [30]),
        ("padded batch of mixed lengths", SAMPLE_LABELS[:5], [7, long_words // 2, 16, 3], [2, 12, 5, 2]),
    ]:
        word_lists = [_text(rng, n) for n in lengths]
        span_lists = [_spans(rng, n, min(e, (n + 3) // 4)) for n, e in zip(lengths, entities)]
        cases.append(VerificationCase(name, list(labels), word_lists, span_lists))
    return cases


class _TorchEngine:
    """The PyTorch model as a pipeline engine, so both sides decode through the same runtime stage."""

    def __init__(self, model: torch.nn.Module, device: str, output_names: list[str]):
        self.model, self.device, self.output_names = model, device, output_names

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outputs = self.model(**{k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()})
        return {name: out.float().cpu().numpy() for name, out in zip(self.output_names, outputs)}


def verify_artifact(
    session: Any, model: torch.nn.Module, features: FeatureBuilder, threshold: float, device: str = "cpu"
) -> dict[str, Any]:
    """Run every case through the ONNX graph and the PyTorch model; return the figures.

    The ONNX side runs the runtime's own stages (`FeatureBuilder.encode`/`pad`, the session
    as an engine, `pipeline.decode_scores`), so what is verified is what users run.
    Figures: max absolute difference of probabilities (and coreference probabilities), and
    the share of (pair, label) decisions at `threshold` on which both agree.
    """
    from glirel_runtime.engines import OnnxRuntimeEngine

    config = features.config
    report: dict[str, Any] = {"cases": [], "threshold": threshold}
    worst, agree, total = 0.0, 0, 0
    onnx_engine = OnnxRuntimeEngine(session, io_binding=False)
    torch_engine = _TorchEngine(model, device, onnx_engine.output_names)
    for case in verification_cases(config.max_words, config.max_subwords):
        encoded = features.encode(case.labels, case.word_lists, case.span_lists)
        inputs = features.pad(encoded)
        ours_all = decode_scores(onnx_engine.run(inputs), encoded, len(case.labels))
        reference_all = decode_scores(torch_engine.run(inputs), encoded, len(case.labels))
        case_max = 0.0
        for ours, reference in zip(ours_all, reference_all):
            if ours.probabilities.size:
                case_max = max(case_max, float(np.abs(ours.probabilities - reference.probabilities).max()))
                agree += int(((ours.probabilities > threshold) == (reference.probabilities > threshold)).sum())
                total += ours.probabilities.size
            if ours.coref_probabilities is not None:
                difference = np.abs(ours.coref_probabilities - reference.coref_probabilities)
                case_max = max(case_max, float(difference.max(initial=0.0)))
        worst = max(worst, case_max)
        report["cases"].append({
            "name": case.name, "batch": len(case.word_lists), "labels": len(case.labels),
            "subwords": int(inputs["input_ids"].shape[1]), "pairs": int(inputs["pair_index"].shape[1]),
            "max_abs_diff": case_max,
        })
    report["max_abs_diff"] = worst
    report["decision_agreement"] = agree / total if total else 1.0
    return report
