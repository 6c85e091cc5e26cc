"""Weight averaging ("model soup", Wortsman et al. 2022): one glirel checkpoint whose weights are the
weighted mean of several checkpoints fine-tuned from the same encoder.

Checkpoints trained from one pretrained encoder on different data mixes often sit in one basin:
their average keeps much of what each learned. The default model is such an average, chosen on
held-out relations (`benchmarks/heldout_select.py`); the weights given here are the recipe.

    python -m glirel_export.soup OUT CKPT_A:0.375 CKPT_B:0.375 CKPT_C:0.25

The first checkpoint's `glirel_config.json` (less its run's training record; ``train_labels`` becomes
the union of the sources') and `tokenizer.json` are kept, with a ``soup`` entry naming every source,
its weight, steps and training files. The checkpoints must hold the same weight names and shapes and
the same architecture settings; anything else is refused naming the checkpoint and the field.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Optional, Sequence

import torch

from .checkpoint import CONFIG_NAME, CheckpointError, read_state_dict
from .train import WEIGHTS_NAME

ARCHITECTURE_FIELDS = ("hidden_size", "span_mode", "rel_mode", "span_marker_mode", "label_embed_strategy", "scorer",
                       "ffn_mul", "refine_prompt", "refine_relation", "coref_classifier", "add_entity_markers",
                       "subtoken_pooling", "max_width")
PER_RUN_FIELDS = ("train_config", "trained_steps", "num_steps")


def parse_source(text: str) -> tuple[Path, float]:
    """``DIR:WEIGHT`` → (DIR, WEIGHT).

    Example:
        >>> parse_source("checkpoints/a:0.25")
        (PosixPath('checkpoints/a'), 0.25)
    """
    directory, sep, weight = text.rpartition(":")
    if not sep or not directory:
        raise ValueError(f"{text!r}: give each checkpoint as DIR:WEIGHT, e.g. checkpoints/run:0.5")
    try:
        value = float(weight)
    except ValueError:
        raise ValueError(f"{text!r}: the weight {weight!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{text!r}: weights must be positive, got {value}")
    return Path(directory), value


def average_checkpoints(sources: Sequence[tuple[Path, float]], output: Path) -> dict:
    """Write the weighted mean of the `sources` checkpoints (their weights must sum to 1) to `output`;
    returns the ``soup`` entry recorded in its config.

    Example:
        >>> average_checkpoints([(Path("ckpt/a"), 0.5), (Path("ckpt/b"), 0.5)], Path("ckpt/soup"))  # doctest: +SKIP
        {'sources': [{'checkpoint': 'ckpt/a', 'weight': 0.5, ...}, {'checkpoint': 'ckpt/b', 'weight': 0.5, ...}]}
    """
    if len(sources) < 2:
        raise ValueError("average at least two checkpoints")
    total = sum(weight for _, weight in sources)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"the weights sum to {total:g}, not 1")
    configs = []
    for directory, _ in sources:
        config_path = directory / CONFIG_NAME
        if not config_path.is_file() or not (directory / WEIGHTS_NAME).is_file():
            raise CheckpointError(f"{directory}: not a glirel checkpoint ({CONFIG_NAME} and {WEIGHTS_NAME} expected)")
        configs.append(json.loads(config_path.read_text()))
    for (directory, _), config in zip(sources[1:], configs[1:]):
        for field in ARCHITECTURE_FIELDS:
            if config.get(field) != configs[0].get(field):
                raise CheckpointError(f"{directory}: {field} is {config.get(field)!r}, but {sources[0][0]} has "
                                      f"{configs[0].get(field)!r}; only checkpoints of one architecture can be averaged")
    first = read_state_dict(sources[0][0] / WEIGHTS_NAME)
    averaged = {name: (tensor.double() * sources[0][1] if tensor.is_floating_point() else tensor.clone())
                for name, tensor in first.items()}
    for directory, weight in sources[1:]:
        state_dict = read_state_dict(directory / WEIGHTS_NAME)
        if state_dict.keys() != first.keys():
            missing, extra = sorted(first.keys() - state_dict.keys()), sorted(state_dict.keys() - first.keys())
            raise CheckpointError(f"{directory}: weight names differ from {sources[0][0]} (missing {missing[:3]}, extra {extra[:3]})")
        for name, tensor in state_dict.items():
            if tensor.shape != first[name].shape:
                raise CheckpointError(f"{directory}: {name!r} has shape {tuple(tensor.shape)}, "
                                      f"{sources[0][0]} has {tuple(first[name].shape)}")
            if tensor.is_floating_point():
                averaged[name] += tensor.double() * weight
    weights = {name: (tensor.to(first[name].dtype) if tensor.is_floating_point() else tensor) for name, tensor in averaged.items()}
    output.mkdir(parents=True, exist_ok=True)
    torch.save(weights, output / WEIGHTS_NAME)
    soup = {"sources": [{"checkpoint": str(directory), "weight": weight, "trained_steps": config.get("trained_steps"),
                         "train_jsonl": config.get("train_config", {}).get("train_jsonl")}
                        for (directory, weight), config in zip(sources, configs)]}
    # one run's training record would misdescribe the average: its sources are listed instead
    config = {key: value for key, value in configs[0].items() if key not in PER_RUN_FIELDS}
    labels = sorted({label for c in configs for label in c.get("train_labels", [])})
    if labels:
        config["train_labels"] = labels
    (output / CONFIG_NAME).write_text(json.dumps({**config, "soup": soup}, indent=2) + "\n")
    if (sources[0][0] / "tokenizer.json").is_file():
        shutil.copy(sources[0][0] / "tokenizer.json", output / "tokenizer.json")
    return soup


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="checkpoint directory to write")
    parser.add_argument("sources", nargs="+", help="checkpoints as DIR:WEIGHT (weights sum to 1)")
    args = parser.parse_args(argv)
    try:
        soup = average_checkpoints([parse_source(s) for s in args.sources], args.output)
    except (ValueError, CheckpointError) as error:
        parser.error(str(error))
    print(f"wrote {args.output}: " + ", ".join(f"{s['checkpoint']} × {s['weight']:g}" for s in soup["sources"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
