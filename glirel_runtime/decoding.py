"""Decode stage: pair probabilities → glirel-style relation dicts (constraints, thresholds, top-k, symmetry).

`decode_relations` is the whole stage for one text; `constraint_mask`, `select`,
`keep_one_direction` and `relation_dicts` are its steps.

Differences from glirel, on purpose:
- Head/tail type constraints mask (pair, label) cells *before* top-k. glirel
  applies them after decoding (spaCy wrapper), so with ``top_k=1`` a pair whose best
  label is disallowed loses its allowed second-best label too.
- ``head_text``/``tail_text`` are always the entity's words. glirel slices the raw
  string by word indices when given a string, which returns characters.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from .validation import LabelSpec, TextItem

if TYPE_CHECKING:
    from .pipeline import PairScores

Relation = dict[str, Any]


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


def select(probabilities: np.ndarray, threshold: Union[float, np.ndarray], top_k: int,
           allowed: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pick (pair, label) cells above `threshold` (a number, or [L] one per label), at most
    `top_k` per pair, in glirel's order.

    glirel's order: pair-major then label order; with ``top_k > 0``, by score descending.

    Example:
        >>> p = np.array([[0.9, 0.7], [0.2, 0.6]])
        >>> [a.tolist() for a in select(p, 0.5, -1, None)]
        [[0, 0, 1], [0, 1, 1]]
        >>> [a.tolist() for a in select(p, 0.5, 1, None)]
        [[0, 1], [0, 1]]
    """
    hits = probabilities > np.asarray(threshold, dtype=probabilities.dtype)  # [P, L] (threshold broadcasts over labels)
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


def keep_one_direction(spec: LabelSpec, heads: np.ndarray, tails: np.ndarray, labels: np.ndarray,
                       scores: np.ndarray) -> np.ndarray:
    """[N] bool over selected cells: for a symmetric label found in both directions of an entity
    pair, keep only the higher-scoring direction (head before tail in the text on a tie).

    Example:
        >>> spec = LabelSpec(["spouse"], symmetric={"spouse"})
        >>> keep_one_direction(spec, np.array([0, 1]), np.array([1, 0]), np.array([0, 0]), np.array([0.6, 0.8])).tolist()
        [False, True]
    """
    keep = np.ones(len(heads), dtype=bool)
    if not spec.symmetric or not len(heads):
        return keep
    symmetric_columns = {spec.labels.index(label) for label in spec.symmetric}
    best: dict[tuple[int, int, int], int] = {}
    for n, (h, t, label, score) in enumerate(zip(heads.tolist(), tails.tolist(), labels.tolist(), scores.tolist())):
        if label not in symmetric_columns:
            continue
        key = (min(h, t), max(h, t), label)
        if key in best:
            other = best[key]
            if score > scores[other] or (score == scores[other] and h < heads[other]):
                keep[other], best[key] = False, n
            else:
                keep[n] = False
        else:
            best[key] = n
    return keep


def decode_relations(item: TextItem, scores: "PairScores", spec: LabelSpec, thresholds: Union[float, np.ndarray],
                     top_k: int = -1) -> list[Relation]:
    """One text's pair probabilities → its relations, in glirel's order.

    Steps: type constraints mask cells, cells above their label's threshold are kept (at
    most `top_k` per pair), a symmetric label keeps one direction per entity pair.

    Example:
        >>> from glirel_runtime.pipeline import PairScores
        >>> item = TextItem(["Ada", "met", "Bob"], None, [(0, 0), (2, 2)], ["PER", "PER"])
        >>> scores = PairScores(np.array([0, 1]), np.array([1, 0]), np.array([[0.9], [0.2]], np.float32))
        >>> [(r["head_text"], r["label"]) for r in decode_relations(item, scores, LabelSpec(["knows"]), 0.5)]
        [(['Ada'], 'knows')]
    """
    allowed = constraint_mask(spec, item, scores.heads, scores.tails)
    pairs, labels = select(scores.probabilities, thresholds, top_k, allowed)
    heads, tails, values = scores.heads[pairs], scores.tails[pairs], scores.probabilities[pairs, labels]
    keep = keep_one_direction(spec, heads, tails, labels, values)
    return relation_dicts(item, spec, heads[keep], tails[keep], labels[keep], values[keep])
