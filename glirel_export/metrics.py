"""Evaluation metrics shared by the trainer and the benchmarks (numpy only, torch-free).

* `macro_prf`: the zero-shot classification figure of the GLiREL paper (and glirel's
  evaluator): precision, recall and F1 computed per class, then averaged over the classes
  (a class never predicted has precision 0).
* `micro_prf`: the extraction figure: true positives, predictions and gold facts counted
  over every (pair, label) cell, then P/R/F1 once.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def macro_prf(gold: Sequence[int], pred: Sequence[int], num_classes: int) -> tuple[float, float, float]:
    """Mean over classes of per-class precision, recall and F1 (0 where undefined), as fractions.

    Example:
        >>> [round(x, 3) for x in macro_prf([0, 0, 1, 1], [0, 1, 1, 1], 2)]
        [0.833, 0.75, 0.733]
    """
    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    ps, rs, fs = [], [], []
    for c in range(num_classes):
        tp = int(((gold_a == c) & (pred_a == c)).sum())
        predicted, actual = int((pred_a == c).sum()), int((gold_a == c).sum())
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        ps.append(p)
        rs.append(r)
        fs.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(ps)), float(np.mean(rs)), float(np.mean(fs))


def micro_prf(probabilities: np.ndarray, gold: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """Micro precision, recall and F1 of the cells whose probability is above `threshold` (as the runtime decides).

    Example:
        >>> probs = np.array([[0.9, 0.2], [0.6, 0.7]]); gold = np.array([[True, False], [False, True]])
        >>> [round(x, 3) for x in micro_prf(probs, gold, 0.5)]
        [0.667, 1.0, 0.8]
    """
    pred = probabilities > threshold
    tp = int((pred & gold).sum())
    p = tp / max(1, int(pred.sum()))
    r = tp / max(1, int(gold.sum()))
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_threshold(probabilities: np.ndarray, gold: np.ndarray,
                   grid: Sequence[float] = tuple(np.round(np.arange(0.05, 0.96, 0.01), 2))) -> float:
    """The threshold of `grid` with the highest micro F1 (the lowest one on ties).

    Example:
        >>> best_threshold(np.array([0.9, 0.4, 0.3]), np.array([True, True, False]), grid=[0.2, 0.35, 0.5])
        0.35
    """
    scores = [micro_prf(probabilities, gold, float(t))[2] for t in grid]
    return float(grid[int(np.argmax(scores))])
