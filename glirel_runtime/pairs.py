"""The pair builder: which ordered (head, tail) entity pairs get scored.

glirel scores every ordered pair of distinct entities (N² − N). With
`max_entity_pair_distance` set, it keeps a pair when head index < tail index
(always) or when the two entities' start words are at most that many words
apart; the order of pairs is row-major over (head, tail). This module
reproduces that set and order in numpy.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np


def build_pairs(entity_starts: np.ndarray, max_distance: Optional[int] = None) -> np.ndarray:
    """Return `pair_index` [P, 2] (head, tail entity indices) in glirel's order.

    Example:
        >>> build_pairs(np.array([0, 5, 9])).tolist()
        [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
        >>> build_pairs(np.array([0, 5, 90]), max_distance=10).tolist()
        [[0, 1], [0, 2], [1, 0], [1, 2]]
    """
    starts = np.asarray(entity_starts, dtype=np.int64)
    if max_distance is None:
        return all_ordered_pairs(starts.shape[0])
    n = starts.shape[0]
    head, tail = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")  # [N, N] each
    close = np.abs(starts[:, None] - starts[None, :]) <= max_distance
    keep = (head != tail) & ((head < tail) | close)
    return np.stack([head[keep], tail[keep]], axis=1).astype(np.int64)


@lru_cache(maxsize=512)
def all_ordered_pairs(n: int) -> np.ndarray:
    """Every ordered pair of `n` distinct entities [N² − N, 2], row-major; one read-only array per `n`
    (texts with as many entities share it).

    Example:
        >>> all_ordered_pairs(3).tolist()
        [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
    """
    head, tail = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")  # [N, N] each
    keep = head != tail
    pairs = np.stack([head[keep], tail[keep]], axis=1).astype(np.int64)
    pairs.flags.writeable = False
    return pairs
