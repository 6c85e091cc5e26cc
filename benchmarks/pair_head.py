"""EXPERIMENT: an exact, cheaper pair builder + dot scorer (a proposal for glirel_export.layers).

The exported head computes, for every (head, tail) pair p and label l,

    pair_p   = W2 · relu(W1 · [e_head; e_tail] + b1) + b2          (PairBuilder.out_project)
    logit_pl = pair_p · label_l                                    (Scorer "dot")

which costs 12·D² multiply-adds per pair (D = glirel hidden size) — at 50 entities
(2,450 pairs) more than the MiniLM encoder itself. Four exact rewrites:

1. split W1 = [W1h | W1t]: ``W1 · [e_h; e_t] = (W1h·e_h) + (W1t·e_t)``; both products are
   computed once per *entity* and gathered per pair (valid for every scorer);
2. the span marker's start/end FFNs are row-wise: gather the entities' boundary words
   first and run the FFNs on E rows instead of all W words (exact: span indices are
   never -1);
3. gather rows with one flat ``Gather`` on [B·T, D] instead of ``gather_rows``'s
   ``GatherElements``, whose index is expanded to [B, K, D] int64 (for 2,450 pairs × 4·D
   that index alone is 8× the size of the gathered floats);
4. with the "dot" scorer and no refine_relation / coref head (nothing else reads
   ``pair_p``), fold W2 into the labels: ``logit_pl = relu(·) · (W2ᵀ·label_l) + b2·label_l``.

Per pair this leaves one gather-add of 4·D values and a [4D × L] product (L labels):
about 4·D·L instead of 12·D² + D·L multiply-adds. `run_experiment` checks the logits
agree and times both graphs in onnxruntime.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _modules():
    import torch
    from torch import nn

    from glirel_export.layers import PairBuilder, Scorer, gather_rows

    class Original(nn.Module):
        def __init__(self, d: int):
            super().__init__()
            self.pairs = PairBuilder(d, "markerv1")
            self.scorer = Scorer("dot", d)

        def forward(self, words, span_index, pair_index, labels):
            return self.scorer(self.pairs(words, span_index, pair_index), labels)

    class Factorised(nn.Module):
        """Same weights as `Original`, rewritten as in the module docstring."""

        def __init__(self, original: "Original"):
            super().__init__()
            self.span_marker = original.pairs.span_marker
            first, last = original.pairs.out_project[0], original.pairs.out_project[3]
            d = last.out_features
            self.w_head = nn.Parameter(first.weight[:, :d].detach().clone())  # [4D, D]
            self.w_tail = nn.Parameter(first.weight[:, d:].detach().clone())
            self.b1 = nn.Parameter(first.bias.detach().clone())
            self.w2 = nn.Parameter(last.weight.detach().clone())  # [D, 4D]
            self.b2 = nn.Parameter(last.bias.detach().clone())

        def forward(self, words, span_index, pair_index, labels):
            marker = self.span_marker  # FFNs on the E entity boundary words only, not on all W words
            start = marker.project_start(self.take_rows(words, span_index[:, :, 0]))
            end = marker.project_end(self.take_rows(words, span_index[:, :, 1]))
            entities = marker.out_project(torch.cat([start, end], dim=-1).relu())  # [B, E, D]
            head = torch.matmul(entities, self.w_head.t())  # [B, E, 4D]
            tail = torch.matmul(entities, self.w_tail.t()) + self.b1
            hidden = torch.relu(self.take_rows(head, pair_index[:, :, 0]) + self.take_rows(tail, pair_index[:, :, 1]))  # [B, P, 4D]
            folded = torch.matmul(labels, self.w2)  # [B, L, 4D]
            bias = torch.matmul(labels, self.b2).unsqueeze(1)  # [B, 1, L]
            return torch.matmul(hidden, folded.transpose(1, 2)) + bias  # [B, P, L]

    def take_rows(sequence, index):
        """[B, T, D] rows at [B, K] (indices ≥ 0) via one flat Gather: no [B, K, D] int64 index tensor."""
        b, t, d = sequence.shape
        offsets = (torch.arange(b, device=index.device) * t).unsqueeze(1)
        return torch.nn.functional.embedding(index + offsets, sequence.reshape(b * t, d))

    Factorised.take_rows = staticmethod(take_rows)
    return Original, Factorised


def _inputs(batch: int, words: int, entities: int, labels: int, d: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(words - 1, size=(batch, entities), replace=True), axis=1)
    span_index = np.stack([starts, starts + rng.integers(0, 2, size=starts.shape)], axis=-1).astype(np.int64)
    head, tail = np.meshgrid(np.arange(entities), np.arange(entities), indexing="ij")
    keep = head != tail
    pairs = np.stack([head[keep], tail[keep]], axis=1).astype(np.int64)
    return {
        "words": rng.standard_normal((batch, words, d)).astype(np.float32),
        "span_index": span_index,
        "pair_index": np.broadcast_to(pairs, (batch,) + pairs.shape).copy(),
        "labels": rng.standard_normal((batch, labels, d)).astype(np.float32),
    }


def run_experiment(d: int = 384, batch: int = 8, words: int = 120, entities: int = 50, labels: int = 10,
                   threads: int = 2, runs: int = 5, seed: int = 0) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    Original, Factorised = _modules()
    torch.manual_seed(seed)
    original = Original(d).eval()
    factorised = Factorised(original).eval()
    inputs = _inputs(batch, words, entities, labels, d, seed)
    names = list(inputs)
    out: dict[str, Any] = {"hidden_size": d, "texts": batch, "entities": entities, "pairs_per_text": entities * (entities - 1),
                           "labels": labels, "threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for name, module in (("original", original), ("factorised", factorised)):
            path = str(Path(tmp) / f"{name}.onnx")
            args = tuple(torch.from_numpy(inputs[k]) for k in names)
            torch.onnx.export(module, args, path, input_names=names, output_names=["logits"], opset_version=17, dynamo=False,
                              dynamic_axes={"words": {0: "b", 1: "w"}, "span_index": {0: "b", 1: "e"},
                                            "pair_index": {0: "b", 1: "p"}, "labels": {0: "b", 1: "l"}})
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            sessions[name] = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        results = {}
        for name, session in sessions.items():
            results[name] = session.run(None, inputs)[0]
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                session.run(None, inputs)
                times.append(time.perf_counter() - started)
            out[f"{name}_ms"] = round(1000 * statistics.median(times), 2)
    a, b = results["original"], results["factorised"]
    out["max_abs_diff_logits"] = float(np.abs(a - b).max())
    out["max_abs_logit"] = float(np.abs(a).max())
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    out["max_abs_diff_probability"] = float(np.abs(sig(a) - sig(b)).max())
    out["speedup"] = round(out["original_ms"] / out["factorised_ms"], 2)
    return out


if __name__ == "__main__":  # python -m benchmarks.pair_head
    import json

    print(json.dumps(run_experiment(), indent=2))
