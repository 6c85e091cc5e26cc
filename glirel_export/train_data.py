"""Training data for `glirel-train`: label sets per instance, padded batches with targets, length buckets.

Example:
    >>> import random
    >>> sample_labels({"relations": [{"relation_text": "spouse"}]}, ["spouse", "father"], 25, random.Random(0), False)
    ['spouse', 'father']
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from glirel_runtime.artifact import ArtifactConfig
from glirel_runtime.features import FeatureBuilder

from .datasets import Instance


def sample_labels(instance: Instance, label_pool: Sequence[str], max_labels: int, rng: random.Random,
                  random_drop: bool = True) -> list[str]:
    """Positive labels + the instance's ``negative_labels`` (labels known not to apply) + sampled
    negatives (≤ `max_labels`), shuffled, then randomly truncated.

    Random truncation drops a positive label as often as users leave the right label out of
    their label set, so the model learns to score every label low when none applies.

    Example:
        >>> inst = {"relations": [{"relation_text": "spouse"}]}
        >>> labels = sample_labels(inst, ["spouse", "father", "employer"], 25, random.Random(0), random_drop=False)
        >>> sorted(labels)
        ['employer', 'father', 'spouse']
    """
    if max_labels < 1:
        raise ValueError(f"max_labels must be positive, got {max_labels}")
    positives = sorted({r["relation_text"] for r in instance["relations"]})
    hard = sorted(set(instance.get("negative_labels", ())) - set(positives))[: max(0, max_labels - len(positives))]
    taken = set(positives) | set(hard)
    pool = [label for label in label_pool if label not in taken]
    negatives = rng.sample(pool, min(len(pool), max(0, max_labels - len(taken))))
    labels = positives + hard + negatives
    rng.shuffle(labels)
    if random_drop and labels:
        labels = labels[: rng.randint(1, len(labels))]
    return labels[:max_labels]


class BatchBuilder:
    """Instances + sampled label sets → padded torch inputs and multi-hot targets."""

    def __init__(self, tokenizer_file: str | Path, max_len: int, pad_token_id: int):
        self.features = FeatureBuilder(tokenizer_file, ArtifactConfig(max_words=max_len, max_subwords=512,
                                                                      pad_token_id=pad_token_id))
        self.max_len = max_len

    def build(self, instances: Sequence[Instance], label_sets: Sequence[Sequence[str]]) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Returns (graph inputs, targets [B, P, L] float, mask [B, P, L] float)."""
        return self.build_with_encodings(instances, label_sets)[:3]

    def build_with_encodings(self, instances: Sequence[Instance], label_sets: Sequence[Sequence[str]]):
        """`build`, plus each row's encoding (its `entity_order` maps pair indices back to `ner`)."""
        encoded, targets = [], []
        for instance, labels in zip(instances, label_sets):
            words = instance["tokenized_text"][: self.max_len]
            spans = [(s, e) for s, e, *_ in instance["ner"] if e < len(words)]
            enc = self.features.encode(list(labels), [words], [spans])[0]
            index = {label: i for i, label in enumerate(labels)}
            gold: dict[tuple[tuple[int, int], tuple[int, int]], set[int]] = {}
            for rel in instance["relations"]:
                if rel["relation_text"] in index:
                    key = (tuple(rel["head"]["position"]), tuple(rel["tail"]["position"]))
                    gold.setdefault(key, set()).add(index[rel["relation_text"]])
            target = np.zeros((enc.pair_index.shape[0], len(labels)), dtype=np.float32)
            order = enc.entity_order
            for p, (h, t) in enumerate(enc.pair_index):
                key = (spans[order[h]], spans[order[t]])
                for label in gold.get(key, ()):
                    target[p, label] = 1.0
            encoded.append(enc)
            targets.append(target)
        inputs = {k: torch.from_numpy(v) for k, v in self.features.pad(encoded).items()}
        max_p = max(t.shape[0] for t in targets)
        max_l = max(t.shape[1] for t in targets)
        target = torch.zeros(len(targets), max_p, max_l)
        mask = torch.zeros(len(targets), max_p, max_l)
        for i, t in enumerate(targets):
            target[i, : t.shape[0], : t.shape[1]] = torch.from_numpy(t)
            mask[i, : t.shape[0], : t.shape[1]] = 1.0
        return inputs, target, mask, encoded


def length_bucketed_order(lengths: Sequence[int], batch_size: int, bucket: int, seed: int) -> list[list[int]]:
    """One epoch's batches: shuffle, sort each window of `bucket` batches by length, cut into batches,
    shuffle the batches. Batches hold sentences of similar length (less padding), in random order.

    Example:
        >>> batches = length_bucketed_order([5, 1, 9, 2, 8, 3], 2, 3, seed=0)
        >>> sorted(i for b in batches for i in b), all(len(b) == 2 for b in batches)
        ([0, 1, 2, 3, 4, 5], True)
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = max(1, bucket) * batch_size
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return [b for b in batches if len(b) == batch_size] or batches
