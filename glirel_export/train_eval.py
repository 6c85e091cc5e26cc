"""Evaluation during training: argmax over held-out relations (never the test relations)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .datasets import Instance
from .metrics import macro_prf
from .modeling import GLiRELForExport
from .train_data import BatchBuilder


def heldout_eval(model: GLiRELForExport, builder: BatchBuilder, instances: Sequence[Instance],
                 batch_size: int = 16) -> dict[str, float]:
    """Argmax over all of `instances`' relation labels for each gold (head → tail) pair: accuracy and macro F1.

    Meant for relations never trained on (the corpus's ``calibration`` file), never for a test set.
    """
    gold_instances = [i for i in instances if len(i["relations"]) == 1]
    labels = sorted({i["relations"][0]["relation_text"] for i in gold_instances})
    gold, pred = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(gold_instances), batch_size):
            chunk = gold_instances[start:start + batch_size]
            inputs, _, _, encodings = builder.build_with_encodings(chunk, [labels] * len(chunk))
            logits = model(**inputs)[0]  # [B, P, L]
            for row, instance in enumerate(chunk):
                relation = instance["relations"][0]
                spans = [tuple(e[:2]) for e in instance["ner"]]
                order = encodings[row].entity_order
                head, tail = tuple(relation["head"]["position"]), tuple(relation["tail"]["position"])
                pairs = inputs["pair_index"][row].tolist()
                p = next(k for k, (h, t) in enumerate(pairs) if spans[order[h]] == head and spans[order[t]] == tail)
                pred.append(int(logits[row, p, : len(labels)].argmax()))
                gold.append(labels.index(relation["relation_text"]))
    model.train()
    _, _, f1 = macro_prf(gold, pred, len(labels))
    return {"heldout_acc": float(np.mean(np.array(gold) == np.array(pred))), "heldout_macro_f1": f1}
