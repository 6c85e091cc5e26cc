"""Choose an artifact's `default_threshold` on held-out data, and the extraction protocol it uses.

Extraction protocol (how people run relation extraction, and how the threshold is judged):

* m labels are drawn from a pool of relation names (seeded);
* every sentence is scored in **both directions** of its gold entity pair against the m
  labels; sentences whose relation is not among the m stay in as negatives;
* a (direction, label) cell is predicted when its probability is above the threshold (as
  the runtime decides); gold is the one (head → tail, relation) cell when the relation was
  drawn;
* micro precision / recall / F1 over all cells of all seeds.

`calibrate` picks the threshold with the best micro F1 on a calibration set of relations
that were never trained on and are not the test relations, and writes it into the
artifact's ``glirel_artifact.json``. Never run it on test data.

Example:
    $ python -m glirel_export.calibrate models/glirel-minilm-fewrel runs/corpus/calibration.jsonl \\
    ...     --label-pool-file runs/corpus/calibration_labels.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .metrics import best_threshold, micro_prf

SEEDS = (40, 41, 42, 43, 44)
Instance = dict[str, Any]


def extraction_cells(model: Any, instances: Sequence[Instance], labels: Sequence[str],
                     batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, gold) over every (direction, label) cell of every sentence's gold pair.

    Each instance carries one gold pair (its first relation); both directions are scored.
    Returns two arrays of shape [2·N, m]: probabilities (float32) and gold (bool).

    Example:
        >>> probs, gold = extraction_cells(model, instances, ["spouse", "father"])  # doctest: +SKIP
    """
    texts, ner, keys = [], [], []
    for instance in instances:
        relation = instance["relations"][0]
        (hs, he), (ts, te) = relation["head"]["position"], relation["tail"]["position"]
        words = instance["tokenized_text"]
        texts.append(words)
        ner.append([[hs, he, "entity", " ".join(words[hs:he + 1])], [ts, te, "entity", " ".join(words[ts:te + 1])]])
        keys.append(relation["relation_text"])
    scores = model.score_pairs(texts, list(labels), ner, batch_size=batch_size)
    column = {label: k for k, label in enumerate(labels)}
    probabilities, gold = [], []
    for score, relation in zip(scores, keys):
        for direction in ((0, 1), (1, 0)):
            row = int(np.flatnonzero((score.heads == direction[0]) & (score.tails == direction[1]))[0])
            probabilities.append(score.probabilities[row])
            cell = np.zeros(len(labels), dtype=bool)
            if direction == (0, 1) and relation in column:
                cell[column[relation]] = True
            gold.append(cell)
    return np.array(probabilities, dtype=np.float32), np.array(gold, dtype=bool)


def extraction_protocol(model: Any, instances: Sequence[Instance], label_pool: Sequence[str], m: int,
                        seeds: Sequence[int] = SEEDS, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """The cells of `extraction_cells` for m labels drawn from `label_pool` per seed, stacked over seeds.

    Returns (probabilities [C], gold [C], the label set of each seed).
    """
    pool = sorted(set(label_pool))
    if m > len(pool):
        raise ValueError(f"m={m} but the label pool has only {len(pool)} names")
    probabilities, gold, label_sets = [], [], []
    for seed in seeds:
        labels = sorted(random.Random(seed).sample(pool, m))
        p, g = extraction_cells(model, instances, labels, batch_size)
        probabilities.append(p.ravel())
        gold.append(g.ravel())
        label_sets.append(labels)
    return np.concatenate(probabilities), np.concatenate(gold), label_sets


def calibrate(model: Any, instances: Sequence[Instance], label_pool: Sequence[str], m: int = 10,
              seeds: Sequence[int] = SEEDS) -> dict[str, Any]:
    """The micro-F1-best threshold of the extraction protocol on `instances`, with its figures."""
    probabilities, gold, _ = extraction_protocol(model, instances, label_pool, m, seeds)
    threshold = best_threshold(probabilities, gold)
    p, r, f = micro_prf(probabilities, gold, threshold)
    return {"threshold": threshold, "P": 100 * p, "R": 100 * r, "F1": 100 * f, "m": m, "seeds": list(seeds),
            "sentences": len(instances), "label_pool": sorted(set(label_pool))}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m glirel_export.calibrate ARTIFACT CALIBRATION.jsonl``: set the artifact's default threshold."""
    parser = argparse.ArgumentParser(prog="python -m glirel_export.calibrate", description=main.__doc__)
    parser.add_argument("artifact", help="artifact directory (its glirel_artifact.json is updated)")
    parser.add_argument("data", help="glirel JSONL of relations never trained on (one gold pair per sentence)")
    parser.add_argument("--label-pool", nargs="+", default=None,
                        help="relation names to draw the m labels from (default: those of the data, plus "
                             "--extra-labels)")
    parser.add_argument("--extra-labels", nargs="*", default=[], help="more unseen names for the pool")
    parser.add_argument("--label-pool-file", default=None,
                        help="JSON list of names for the pool (`python -m glirel_export.datasets` writes "
                             "calibration_labels.json: the held-out relations' names)")
    parser.add_argument("--m", type=int, default=10)
    parser.add_argument("--dry-run", action="store_true", help="print the threshold, change nothing")
    parser.add_argument("--providers", default="cpu", help="engine (default: onnxruntime CPU, the reference)")
    args = parser.parse_args(argv)

    from glirel_runtime import GLiREL
    from glirel_runtime.artifact import CONFIG_FILE

    from .datasets import read_jsonl

    instances = [i for i in read_jsonl(args.data) if i.get("relations")]
    if not instances:
        print(f"error: {args.data} holds no sentence with a relation", file=sys.stderr)
        return 2
    extra = set(args.extra_labels)
    if args.label_pool_file:
        extra |= set(json.loads(Path(args.label_pool_file).read_text()))
    pool = args.label_pool or sorted({i["relations"][0]["relation_text"] for i in instances} | extra)
    model = GLiREL.from_pretrained(args.artifact, providers=args.providers)
    result = calibrate(model, instances, pool, args.m)
    print(f"threshold {result['threshold']:.2f}: micro P {result['P']:.2f} R {result['R']:.2f} F1 {result['F1']:.2f} "
          f"({len(instances)} sentences, m={args.m} of {len(pool)} names, seeds {list(SEEDS)})")
    if not args.dry_run:
        path = Path(args.artifact) / CONFIG_FILE
        data = json.loads(path.read_text())
        data["default_threshold"] = result["threshold"]
        data.setdefault("source", {})["calibration"] = {k: v for k, v in result.items() if k != "label_pool"} | {
            "data": Path(args.data).name, "label_pool_size": len(pool)}
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"default_threshold written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
