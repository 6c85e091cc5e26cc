"""Checkpoint selection on held-out relations (never the test set): 15-way argmax accuracy.

Every sentence of the calibration file (FewRel sentences of the held-out relations, written by
``python -m glirel_export.datasets runs/corpus``) is scored against the 15 held-out relation names
(``calibration_labels.json``); the share whose gold label is the argmax is printed per artifact.

Example:
    $ python benchmarks/heldout_select.py /tmp/sel/step_5000 /tmp/sel/step_6000 --corpus runs/corpus
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from glirel_export.datasets import read_jsonl  # noqa: E402  (torch-free)
from glirel_runtime import GLiREL  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", nargs="+", help="artifact directories (export each checkpoint first)")
    parser.add_argument("--corpus", default=str(REPO / "runs" / "corpus"), help="folder of calibration.jsonl")
    args = parser.parse_args(argv)
    pool = json.loads((Path(args.corpus) / "calibration_labels.json").read_text())
    instances = read_jsonl(Path(args.corpus) / "calibration.jsonl")
    texts = [i["tokenized_text"] for i in instances]
    ner = [[[*i["relations"][0]["head"]["position"], "entity", ""], [*i["relations"][0]["tail"]["position"], "entity", ""]]
           for i in instances]
    gold = np.array([pool.index(i["relations"][0]["relation_text"]) for i in instances])
    for artifact in args.artifacts:
        scores = GLiREL.from_pretrained(artifact, providers="cpu").score_pairs(texts, pool, ner)
        pred = np.array([int(s.probabilities[int(np.flatnonzero((s.heads == 0) & (s.tails == 1))[0])].argmax())
                         for s in scores])
        print(f"{artifact}: {len(pool)}-way accuracy {float((pred == gold).mean()):.3f} ({len(gold)} sentences)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
