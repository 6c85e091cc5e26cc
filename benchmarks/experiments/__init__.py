"""The experiments `benchmarks.speed` runs, one module each; every one returns a JSON-able dict for `benchmarks.report`.

- `glirel_systems`: glirel (PyTorch) and the runtime's variants on the same sentences, round-robin, with agreement and F1;
- `baseline_systems`: the paper's baselines (TMC-BERT, RelationPrompt);
- `sweeps`: entities per text, labels, and intra-op threads;
- `breakdown`: encoder vs. pair builder + scorer time at many entities.
"""
from __future__ import annotations

import sys
from typing import Any


def log(*args: Any) -> None:
    """Progress lines go to stderr, so that stdout carries only the results."""
    print(*args, file=sys.stderr, flush=True)
