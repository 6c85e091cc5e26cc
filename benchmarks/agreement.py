"""How far two variants of the same model agree, and FewRel macro-F1 of pair scores.

Used by `benchmarks.speed` (int8 and OpenVINO bf16 against fp32) and `benchmarks.int8_recipes`.
Macro-F1 is `glirel_export.metrics.macro_prf`, the one figure every benchmark reports.

Example:
    >>> identical_pct({1, 2, 3}, {2, 3, 4})
    50.0
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from glirel_export.metrics import macro_prf


def identical_pct(a: set, b: set) -> float:
    """|A ∩ B| / |A ∪ B| in %, 100 when both are empty.

    Example:
        >>> identical_pct(set(), set())
        100.0
    """
    return 100.0 * len(a & b) / len(a | b) if a | b else 100.0


def relations_above(scores: Sequence[Any], threshold: float) -> set:
    """(text, pair row, label) of every pair score ≥ `threshold` (`scores`: `GLiREL.score_pairs` output)."""
    return {(i, *map(int, k)) for i, x in enumerate(scores) for k in zip(*np.nonzero(x.probabilities >= threshold))}


def score_agreement(reference: Sequence[Any], other: Sequence[Any], thresholds: tuple[float, ...] = (0.3, 0.5)) -> dict[str, Any]:
    """Pair scores of the same sentences from two variants (`GLiREL.score_pairs` output each).

    Returns the share of pairs whose top-1 label is the same (%), the largest |Δp|, and at
    each threshold the relations each side predicts and the share identical (%). Keys name
    the sides ``reference`` / ``other`` (e.g. fp32 / int8).
    """
    if len(reference) != len(other):
        raise ValueError(f"score lists differ in length: {len(reference)} vs {len(other)}")
    same_top1 = np.concatenate([x.probabilities.argmax(-1) == y.probabilities.argmax(-1)
                                for x, y in zip(reference, other) if x.probabilities.size] or [np.zeros(0, bool)])
    out: dict[str, Any] = {"sentences": len(reference), "pairs": int(same_top1.size),
                           "top1_identical_pct": 100.0 * float(same_top1.mean()) if same_top1.size else 100.0,
                           "max_abs_diff": max((float(np.abs(x.probabilities - y.probabilities).max())
                                                for x, y in zip(reference, other) if x.probabilities.size), default=0.0)}
    for t in thresholds:
        fa, fb = relations_above(reference, t), relations_above(other, t)
        out[f"at_{t:g}"] = {"reference_relations": len(fa), "other_relations": len(fb), "identical_pct": identical_pct(fa, fb)}
    return out


def fewrel_f1(scores: Sequence[Any], workload: Any) -> Optional[float]:
    """Macro-F1 (%) of the best label for each sentence's gold (head → tail) pair: FewRel's zero-shot protocol.

    `scores`: `score_pairs` of the workload's first len(scores) sentences; classes are the
    workload's labels (`glirel_export.metrics.macro_prf`). None when the sentences have no
    gold label (generated workloads).
    """
    sentences = workload.sentences[:len(scores)]
    if not sentences or not all(s.gold_label for s in sentences):
        return None
    index = {label: i for i, label in enumerate(workload.labels)}
    gold, predicted = [], []
    for sentence, sc in zip(sentences, scores):
        head, tail = sentence.gold_pairs[0]
        rows = np.nonzero((np.asarray(sc.heads) == head) & (np.asarray(sc.tails) == tail))[0]
        if not rows.size:
            continue
        gold.append(index[sentence.gold_label])
        predicted.append(int(sc.probabilities[rows[0]].argmax()))
    if not gold:
        return None
    return 100.0 * macro_prf(gold, predicted, len(workload.labels))[2]
