"""Probabilities → glirel-style relation dicts: constraints, threshold, top-k.

Differences from glirel, on purpose:
- Head/tail type constraints mask (pair, label) cells *before* top-k. glirel
  applies them after decoding (spaCy wrapper), so with ``top_k=1`` a pair whose best
  label is disallowed loses its allowed second-best label too.
- ``head_text``/``tail_text`` are always the entity's words. glirel slices the raw
  string by word indices when given a string, which returns characters.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .validation import LabelSpec, TextItem


def constraint_mask(spec: LabelSpec, item: TextItem, pair_heads: np.ndarray, pair_tails: np.ndarray) -> Optional[np.ndarray]:
    """[P, L] bool: True where the head/tail entity types are allowed for the label; None if unconstrained."""
    if not spec.constrained:
        return None
    types = np.array([t if isinstance(t, str) else "" for t in item.entity_types], dtype=object)
    head_types, tail_types = types[pair_heads], types[pair_tails]  # [P]
    allowed = np.ones((len(pair_heads), len(spec.labels)), dtype=bool)
    for column, label in enumerate(spec.labels):
        if label in spec.allowed_head:
            allowed[:, column] &= np.isin(head_types, list(spec.allowed_head[label]))
        if label in spec.allowed_tail:
            allowed[:, column] &= np.isin(tail_types, list(spec.allowed_tail[label]))
    return allowed


def select(probabilities: np.ndarray, threshold: float, top_k: int, allowed: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pick (pair, label) cells above `threshold`, at most `top_k` per pair, in glirel's order.

    glirel's order: pair-major then label order; with ``top_k > 0``, by score descending.

    Example:
        >>> p = np.array([[0.9, 0.7], [0.2, 0.6]])
        >>> [a.tolist() for a in select(p, 0.5, -1, None)]
        [[0, 0, 1], [0, 1, 1]]
        >>> [a.tolist() for a in select(p, 0.5, 1, None)]
        [[0, 1], [0, 1]]
    """
    hits = probabilities > threshold  # [P, L]
    if allowed is not None:
        hits &= allowed
    pairs, labels = np.nonzero(hits)
    if top_k > 0 and pairs.size:
        order = np.argsort(-probabilities[pairs, labels], kind="stable")
        pairs, labels = pairs[order], labels[order]
        # rank of each hit among the hits of its pair (0 = best)
        by_pair = np.argsort(pairs, kind="stable")
        group_start = np.searchsorted(pairs[by_pair], pairs[by_pair], side="left")
        rank = np.empty_like(pairs)
        rank[by_pair] = np.arange(pairs.size) - group_start
        keep = rank < top_k
        pairs, labels = pairs[keep], labels[keep]
    return pairs, labels


def relation_dicts(
    item: TextItem, spec: LabelSpec, heads: np.ndarray, tails: np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> list[dict[str, Any]]:
    """Build glirel's output dicts (`head_pos`/`tail_pos` end-exclusive), with character offsets for raw strings."""
    relations = []
    for head, tail, label, score in zip(heads.tolist(), tails.tolist(), labels.tolist(), scores.tolist()):
        (hs, he), (ts, te) = item.spans[head], item.spans[tail]
        relation = {
            "head_pos": [hs, he + 1],
            "tail_pos": [ts, te + 1],
            "head_text": item.words[hs:he + 1],
            "tail_text": item.words[ts:te + 1],
            "label": spec.labels[label],
            "score": score,
        }
        if item.char_spans is not None:
            relation["head_char_pos"] = [item.char_spans[hs][0], item.char_spans[he][1]]
            relation["tail_char_pos"] = [item.char_spans[ts][0], item.char_spans[te][1]]
        relations.append(relation)
    return relations
