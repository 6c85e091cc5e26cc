"""Coreference for documents: mention clusters and cluster-level (entity) relations.

GLiREL (Boylan et al. 2025, appendix A.7) treats coreference as one more
relation label, ``SELF``: a predicted ``SELF`` edge between two mentions says
they name the same entity. Clusters are the connected components of the
``SELF`` graph (union-find; edges are undirected). Alternatively the caller
gives gold clusters.

Mention-level relations are then lifted to cluster pairs. ``aggregation``:

=========  ===========================================================  =============================
mode       entity relation score                                        kept when
=========  ===========================================================  =============================
``max``    highest score of the label over the clusters' mention pairs  any mention pair predicts it
``mean``   sum of the predicting mention pairs' scores divided by the   the mean is above the
           number of *scored* mention pairs between the two clusters    threshold
           (scored but not predicted pairs count as 0)
``count``  number of mention pairs that predict it (``support``)        any mention pair predicts it
=========  ===========================================================  =============================

Every entity relation also carries ``support`` (mention pairs predicting it) and
``scored_pairs`` (mention pairs between the two clusters that the model scored).
``SELF`` relations and relations inside one cluster (head cluster = tail cluster)
are not entity relations. ``max`` is glirel's rule (a relation holds between two
entities when any mention pair states it) and what DocRED evaluation expects.
"""
from __future__ import annotations

import numbers
from typing import Any, Iterable, Optional, Sequence

import numpy as np

DEFAULT_COREFERENCE_LABEL = "SELF"
AGGREGATIONS = ("max", "mean", "count")


def connected_components(num_mentions: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Clusters of mention indices joined by (undirected) edges; every mention is in exactly one.

    Clusters are sorted by their smallest member; members ascending.

    Example:
        >>> connected_components(5, [(0, 2), (2, 4)])
        [[0, 2, 4], [1], [3]]
    """
    parent = list(range(num_mentions))

    def find(u: int) -> int:
        root = u
        while parent[root] != root:
            root = parent[root]
        while parent[u] != root:  # path compression
            parent[u], u = root, parent[u]
        return root

    for u, v in edges:
        ru, rv = find(int(u)), find(int(v))
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)  # the smaller index stays root
    groups: dict[int, list[int]] = {}
    for mention in range(num_mentions):
        groups.setdefault(find(mention), []).append(mention)
    return sorted(groups.values(), key=lambda members: members[0])


def check_clusters(clusters: Any, num_mentions: int) -> list[list[int]]:
    """Validate gold clusters (lists of indices into `ner`); unlisted mentions become singletons.

    The given clusters keep their order and come first (so cluster *i* is the caller's
    entity *i*); singletons follow in mention order.

    Example:
        >>> check_clusters([[2, 0]], 4)
        [[2, 0], [1], [3]]
    """
    if isinstance(clusters, (str, bytes)) or not isinstance(clusters, Sequence):
        raise TypeError(f"clusters must be a list of lists of ner indices, got {type(clusters).__name__}")
    owner: dict[int, int] = {}
    checked: list[list[int]] = []
    for number, cluster in enumerate(clusters):
        if isinstance(cluster, (str, bytes)) or not isinstance(cluster, Sequence):
            raise TypeError(f"cluster {number} must be a list of ner indices, got {cluster!r}")
        if not cluster:
            raise ValueError(f"cluster {number} is empty")
        for mention in cluster:
            if not isinstance(mention, numbers.Integral) or isinstance(mention, bool):
                raise TypeError(f"cluster {number} holds {mention!r}, not an integer index into ner")
            if not 0 <= mention < num_mentions:
                raise ValueError(f"cluster {number} holds mention {mention}, outside ner's {num_mentions} entities")
            if int(mention) in owner:
                raise ValueError(f"mention {mention} is in cluster {owner[int(mention)]} and in cluster {number}")
            owner[int(mention)] = number
        checked.append([int(m) for m in cluster])
    checked += [[m] for m in range(num_mentions) if m not in owner]
    return checked


def cluster_index(clusters: Sequence[Sequence[int]], num_mentions: int) -> np.ndarray:
    """[num_mentions] cluster of each mention.

    Example:
        >>> cluster_index([[0, 2], [1]], 3).tolist()
        [0, 1, 0]
    """
    index = np.full(num_mentions, -1, dtype=np.int64)
    for number, cluster in enumerate(clusters):
        index[list(cluster)] = number
    return index


def aggregate_relations(
    heads: np.ndarray, tails: np.ndarray, labels: np.ndarray, scores: np.ndarray,
    mention_cluster: np.ndarray, scored_heads: np.ndarray, scored_tails: np.ndarray,
    aggregation: str = "max", threshold: float | np.ndarray = 0.5, skip_label: Optional[int] = None,
) -> list[dict[str, Any]]:
    """Lift mention-level predictions to cluster pairs (see the module docstring for the modes).

    `heads`, `tails`, `labels`, `scores` ([R] each) are the mention-level predictions
    (mention indices, label indices); `scored_heads`/`scored_tails` ([S]) every distinct
    mention pair the model scored. `threshold` (``mean`` only): one value, or [L] one per label.
    `skip_label` (the coreference label) is not lifted.
    Returns dicts ``head``, ``tail`` (cluster indices), ``label`` (index), ``score``,
    ``support``, ``scored_pairs``, sorted by (head, tail, label).

    Example:
        >>> rows = aggregate_relations(np.array([0, 1]), np.array([2, 2]), np.array([0, 0]),
        ...                            np.array([0.9, 0.7]), np.array([0, 0, 1]),
        ...                            np.array([0, 1, 2, 2]), np.array([2, 2, 0, 1]), "mean", 0.5)
        >>> [(r["head"], r["tail"], round(r["score"], 2), r["support"], r["scored_pairs"]) for r in rows]
        [(0, 1, 0.8, 2, 2)]
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {list(AGGREGATIONS)}, got {aggregation!r}")
    keep = mention_cluster[heads] != mention_cluster[tails]
    if skip_label is not None:
        keep &= labels != skip_label
    heads, tails, labels, scores = heads[keep], tails[keep], labels[keep], scores[keep]
    head_cluster, tail_cluster = mention_cluster[heads], mention_cluster[tails]  # [R']
    num_clusters = int(mention_cluster.max()) + 1 if mention_cluster.size else 0

    # scored mention pairs per ordered cluster pair
    scored_keys = mention_cluster[scored_heads] * num_clusters + mention_cluster[scored_tails]  # [S]
    pair_keys, pair_counts = np.unique(scored_keys, return_counts=True)

    groups: dict[tuple[int, int, int], list[float]] = {}
    for h, t, label, score in zip(head_cluster.tolist(), tail_cluster.tolist(), labels.tolist(), scores.tolist()):
        groups.setdefault((h, t, label), []).append(score)
    rows = []
    for (h, t, label), values in sorted(groups.items()):
        position = np.searchsorted(pair_keys, h * num_clusters + t)
        scored = int(pair_counts[position]) if position < pair_keys.size and pair_keys[position] == h * num_clusters + t else len(values)
        scored = max(scored, len(values))
        if aggregation == "max":
            score = max(values)
        elif aggregation == "mean":
            score = sum(values) / scored
            if not score > (threshold[label] if np.ndim(threshold) else threshold):  # per-label thresholds: [L]
                continue
        else:
            score = float(len(values))
        rows.append({"head": h, "tail": t, "label": label, "score": float(score),
                     "support": len(values), "scored_pairs": scored})
    return rows
