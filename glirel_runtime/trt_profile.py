"""TensorRT optimisation profile: the range of input shapes one engine is built for.

Without an explicit profile, onnxruntime's TensorRT provider builds an engine
for the first shapes it sees and rebuilds (minutes for a large encoder) each
time a batch falls outside them. With one, a single engine covers every batch
from 1 up to `ShapeLimits`, is tuned for the `opt` sizes, and is cached on
disk. The runtime keeps every batch inside the limits (`GLiREL` splits batches
and refuses single texts beyond them with a ValueError), because TensorRT
raises on out-of-range shapes.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

from .artifact import GRAPH_INPUTS, ArtifactConfig


@dataclass(frozen=True)
class ShapeLimits:
    """Largest sizes (per batch) a TensorRT engine accepts; `None` takes the artifact's limit.

    Example:
        >>> ShapeLimits(entities=20).resolve(ArtifactConfig(max_words=384, max_subwords=None)).pairs
        380
    """

    batch: int = 32
    subwords: Optional[int] = None
    """Default: the artifact's `max_subwords`, else 512."""
    words: Optional[int] = None
    """Default: the artifact's `max_words` (entity markers count as words, as in the runtime's length check)."""
    labels: int = 50
    entities: int = 50
    pairs: Optional[int] = None
    """Default: every ordered pair of `entities` (entities² − entities)."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ShapeLimits.{item.name} must be a positive integer, got {value!r}")
        if self.entities < 2:
            raise ValueError(f"ShapeLimits.entities must be at least 2 (one pair), got {self.entities}")

    def resolve(self, config: ArtifactConfig) -> "ShapeLimits":
        """Fill the `None` fields from the artifact."""
        return replace(self, subwords=self.subwords or config.max_subwords or 512, words=self.words or config.max_words,
                       pairs=self.pairs or self.entities * (self.entities - 1))


TYPICAL = {"batch": 32, "subwords": 96, "words": 40, "labels": 10, "entities": 4, "pairs": 12}
"""Sizes TensorRT tunes its kernels for: a batch of 32 sentences of ~30 words, 10 labels, a few entities."""


def profile_options(limits: ShapeLimits) -> dict[str, str]:
    """The TensorRT provider options that declare one profile from size 1 up to `limits`.

    Every graph input is listed, in onnxruntime's ``name:d1xd2,...`` form; `opt`
    sizes are `TYPICAL`, capped at the limits.

    Example:
        >>> options = profile_options(ShapeLimits(batch=8, subwords=128, words=64, entities=4, pairs=12))
        >>> options["trt_profile_max_shapes"].split(",")[0]
        'input_ids:8x128'
        >>> profile_options(ShapeLimits(batch=8))
        Traceback (most recent call last):
        ...
        ValueError: resolve the limits against the artifact first: limits.resolve(config)
    """
    if limits.subwords is None or limits.words is None or limits.pairs is None:
        raise ValueError("resolve the limits against the artifact first: limits.resolve(config)")
    largest = {"batch": limits.batch, "subwords": limits.subwords, "words": limits.words, "labels": limits.labels,
               "entities": limits.entities, "pairs": limits.pairs, "2": 2}
    smallest = {axis: 2 if axis == "2" else 1 for axis in largest}
    typical = {axis: min(TYPICAL.get(axis, size), size) for axis, size in largest.items()}

    def shapes(sizes: dict[str, int]) -> str:
        return ",".join(f"{name}:" + "x".join(str(sizes[axis]) for axis in axes) for name, (_, axes) in GRAPH_INPUTS.items())

    return {"trt_profile_min_shapes": shapes(smallest), "trt_profile_opt_shapes": shapes(typical),
            "trt_profile_max_shapes": shapes(largest)}
