"""The inference pipeline, one stage after another, readable top to bottom.

::

    raw items ──validate_rows──▶ [Row] ──encode_rows──▶ [Job] ──plan_batches──▶ [[Job]]
        ──features.pad──▶ graph inputs ──run_in_order(engine)──▶ graph outputs ──decode_scores──▶ [PairScores]
        ──merge_label_groups──▶ Row.scores ──decoding.decode_relations──▶ relations

* A `Row` is one input item, named by its position in the caller's input (`Row.index`)
  from the first stage to the last; a row that fails any stage carries its error and is
  never run, so it cannot change another row's result.
* Label groups: a label set is cut into prompt groups (`label_groups`) when it is too long
  for one prompt or the caller asks for groups; each (row, group) is one `Job`, run like a
  text of its own, and the groups' probabilities are put back side by side per row.
* `GLiREL` (model.py) drives these stages; documents, benchmarks, export verification
  and the Triton client call the same functions.

Example:
    >>> from glirel_runtime import GLiREL  # doctest: +SKIP
    >>> model = GLiREL.from_pretrained()  # doctest: +SKIP
    >>> rows = validate_rows([("Ada met Bob .", [[0, 0, "PER", "Ada"], [2, 2, "PER", "Bob"]])])  # doctest: +SKIP
    >>> model.score_rows(rows, check_labels(["knows"]))  # fills rows[0].scores  # doctest: +SKIP
"""
from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .artifact import check_outputs
from .engines import Engine, run_in_order
from .features import EncodedText, FeatureBuilder
from .validation import LabelSpec, TextItem, check_item

DEFAULT_PAIR_BUDGET = 65_536
"""Most padded pairs (batch × widest text) one engine run may hold; larger batches are split."""


@dataclass
class PairScores:
    """Model output for one text: every scored pair and its label probabilities."""

    heads: np.ndarray  # [P] index into the caller's ner list
    tails: np.ndarray  # [P]
    probabilities: np.ndarray  # [P, L] float32, labels in the order given
    coref_probabilities: Optional[np.ndarray] = None  # [P] when the checkpoint has a coreference head

    @classmethod
    def empty(cls, num_labels: int) -> "PairScores":
        """No pair (a text with fewer than two entities)."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, num_labels), np.float32))


@dataclass
class Row:
    """One input item on its way through the pipeline."""

    index: int  # position in the caller's input
    item: Optional[TextItem] = None  # set by validate_rows when the item is valid
    error: Optional[Exception] = None  # the first stage's refusal, naming the problem
    scores: Optional[PairScores] = None  # set once every label group has run

    @property
    def runnable(self) -> bool:
        """Valid, with at least two entities (fewer give no pair)."""
        return self.error is None and self.item is not None and len(self.item.spans) >= 2


@dataclass
class Job:
    """One row encoded with one label group's prompt: the unit that is batched and run."""

    row: Row
    group: int  # index into the label groups
    encoded: EncodedText


# ---------------------------------------------------------------------- stage 1: validate


def unpack_item(raw: Any) -> tuple[Any, Any]:
    """An input item → (text, ner): a `(text, ner)` pair or a dict with ``text``/``tokenized_text`` and ``ner``.

    Example:
        >>> unpack_item({"tokenized_text": ["Ada"], "ner": []})
        (['Ada'], [])
    """
    if isinstance(raw, dict):
        return raw.get("text", raw.get("tokenized_text")), raw.get("ner")
    if isinstance(raw, (tuple, list)) and len(raw) == 2:
        return raw[0], raw[1]
    raise TypeError(f"expected (text, ner) or a dict with 'text'/'tokenized_text' and 'ner', got {type(raw).__name__}")


def validate_rows(raw_items: Sequence[Any], first_index: int = 0) -> list[Row]:
    """Stage 1: one `Row` per item, valid (`Row.item`) or refused (`Row.error`).

    Example:
        >>> rows = validate_rows([(["Ada", "met", "Bob"], [[0, 0, "PER"], [2, 2, "PER"]]), ("x", [[5, 5, "PER"]])])
        >>> [(r.index, r.runnable, type(r.error).__name__) for r in rows]
        [(0, True, 'NoneType'), (1, False, 'ValueError')]
    """
    rows = []
    for position, raw in enumerate(raw_items):
        row = Row(first_index + position)
        try:
            row.item = check_item(*unpack_item(raw))
        except (TypeError, ValueError) as error:
            row.error = error
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- stage 2: encode


def prompt_subwords(features: FeatureBuilder, prompts: Sequence[str]) -> int:
    """Subwords the label prompt takes, the tokenizer's special tokens included."""
    return features.count_subwords([features.prompt(list(prompts))])[0]


def label_groups(features: FeatureBuilder, spec: LabelSpec, labels_per_prompt: Optional[int] = None,
                 max_prompt_subwords: Optional[int] = None) -> list[list[int]]:
    """Cut the labels (by column) into prompt groups.

    `labels_per_prompt` given: consecutive groups of that many labels. Otherwise one group,
    unless the prompt takes more than `max_prompt_subwords`; then consecutive groups, each
    as large as fits. A label whose prompt alone does not fit raises ValueError naming it.

    Example:
        >>> label_groups(None, LabelSpec(list("abcde")), labels_per_prompt=2)
        [[0, 1], [2, 3], [4]]
    """
    columns = list(range(len(spec.labels)))
    if labels_per_prompt is not None:
        return [columns[i:i + labels_per_prompt] for i in range(0, len(columns), labels_per_prompt)]
    prompts = spec.prompts
    if max_prompt_subwords is None or prompt_subwords(features, prompts) <= max_prompt_subwords:
        return [columns]
    # each label's share of the prompt: [REL] + its words, counted once for all labels
    overhead = prompt_subwords(features, [])
    costs = [prompt_subwords(features, [p]) - overhead for p in prompts]
    groups: list[list[int]] = [[]]
    used = overhead
    for column, cost in zip(columns, costs):
        if overhead + cost > max_prompt_subwords:
            raise ValueError(f"label {spec.labels[column]!r} alone takes {overhead + cost} prompt subwords, "
                             f"over the {max_prompt_subwords} a prompt may use: shorten it or its description")
        if groups[-1] and used + cost > max_prompt_subwords:
            groups.append([])
            used = overhead
        groups[-1].append(column)
        used += cost
    return groups


def encode_rows(features: FeatureBuilder, spec: LabelSpec, groups: Sequence[Sequence[int]], rows: Sequence[Row],
                size_problem: Callable[[TextItem, EncodedText], Optional[str]]) -> list[Job]:
    """Stage 2: every runnable row × label group → a `Job`; a row too large for the model gets its
    error (from `size_problem`) and no job.

    The prompt of each group is tokenized with all the rows' words in one `encode_batch`.
    """
    runnable = [row for row in rows if row.runnable]
    jobs: list[Job] = []
    prompts = spec.prompts
    for group_index, columns in enumerate(groups):
        group_prompts = [prompts[c] for c in columns]
        encodings = features.encode(group_prompts, [r.item.words for r in runnable], [r.item.spans for r in runnable])
        for row, encoded in zip(runnable, encodings):
            if row.error is not None:
                continue
            problem = size_problem(row.item, encoded)
            if problem:
                row.error = ValueError(problem + (f" (label group {group_index + 1} of {len(groups)})" if len(groups) > 1 else ""))
            else:
                jobs.append(Job(row, group_index, encoded))
    return [job for job in jobs if job.row.error is None]


# ---------------------------------------------------------------------- stage 3: batch


def plan_batches(jobs: Sequence[Job], batch_size: int, pair_budget: int = DEFAULT_PAIR_BUDGET) -> Iterator[list[Job]]:
    """Stage 3: jobs sorted by subword length, cut into batches of at most `batch_size` jobs
    and `pair_budget` padded pairs (batch × its widest job's pairs).
    """
    ordered = sorted(jobs, key=lambda job: (job.group, job.encoded.input_ids.shape[0]))
    batch: list[Job] = []
    widest = 0
    for job in ordered:
        pairs = job.encoded.pair_index.shape[0]
        if batch and (len(batch) == batch_size or batch[0].group != job.group
                      or (len(batch) + 1) * max(widest, pairs) > pair_budget):
            yield batch
            batch, widest = [], 0
        batch.append(job)
        widest = max(widest, pairs)
    if batch:
        yield batch


# ---------------------------------------------------------------------- stage 4: run (the engine) and decode scores


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, computed in float32.

    Example:
        >>> sigmoid(np.array([0.0, 100.0, -100.0])).round(3).tolist()
        [0.5, 1.0, 0.0]
    """
    logits = np.asarray(logits, dtype=np.float32)
    return np.exp(-np.logaddexp(np.float32(0.0), -logits))  # 1 / (1 + exp(-x)) without overflow, exact near 0


def decode_scores(outputs: dict[str, np.ndarray], batch: Sequence[EncodedText], num_labels: int) -> list[PairScores]:
    """Stage 5: one batch's graph outputs → per-text `PairScores` (padding cut off, pairs in the
    caller's entity numbering). Non-finite logits raise: a broken graph never returns `[]`.
    """
    check_outputs(outputs, [(encoded.pair_index.shape[0], num_labels) for encoded in batch])  # NaN/inf raise
    logits = outputs["logits"]  # [B, P_max, L_max]
    coref = outputs.get("coref_logits")  # [B, P_max] or None
    scores = []
    for row, encoded in enumerate(batch):
        num_pairs = encoded.pair_index.shape[0]
        row_logits = logits[row, :num_pairs, :num_labels]  # [P, L]
        row_coref = None if coref is None else coref[row, :num_pairs]  # [P]
        order = encoded.entity_order  # model entity → caller's entity index
        scores.append(PairScores(order[encoded.pair_index[:, 0]], order[encoded.pair_index[:, 1]], sigmoid(row_logits),
                                 None if row_coref is None else sigmoid(row_coref)))
    return scores


def merge_label_groups(pieces: Sequence[PairScores], groups: Sequence[Sequence[int]], num_labels: int) -> PairScores:
    """Stage 6: one row's per-group scores → one `PairScores` whose columns are the full label set.

    Every group scores the same pairs in the same order (the pairs depend on the entities only).

    Example:
        >>> a = PairScores(np.array([0]), np.array([1]), np.array([[0.1, 0.2]], np.float32))
        >>> b = PairScores(np.array([0]), np.array([1]), np.array([[0.9]], np.float32))
        >>> merge_label_groups([a, b], [[0, 2], [1]], 3).probabilities.round(2).tolist()
        [[0.1, 0.9, 0.2]]
    """
    if len(pieces) == 1 and list(groups[0]) == list(range(num_labels)):
        return pieces[0]
    first = pieces[0]
    probabilities = np.zeros((first.heads.shape[0], num_labels), dtype=np.float32)  # [P, L]
    for piece, columns in zip(pieces, groups):
        probabilities[:, list(columns)] = piece.probabilities
    return PairScores(first.heads, first.tails, probabilities, first.coref_probabilities)


def score_rows(engine: Engine, features: FeatureBuilder, rows: Sequence[Row], spec: LabelSpec,
               groups: Sequence[Sequence[int]], batch_size: int, pair_budget: int,
               size_problem: Callable[[TextItem, EncodedText], Optional[str]], run_despite_errors: bool = True,
               progress: Any = None) -> None:
    """Stages 2–6 for a list of validated rows: fills `Row.scores` (or `Row.error`).

    With `run_despite_errors=False` nothing runs when any row has an error (the caller
    raises them all at once).
    """
    jobs = encode_rows(features, spec, groups, rows, size_problem)
    for row in rows:
        if row.error is None and not row.runnable:
            row.scores = PairScores.empty(len(spec.labels))
    if not run_despite_errors and any(row.error is not None for row in rows):
        return
    pieces: dict[int, list[Optional[PairScores]]] = {}
    batches = list(plan_batches(jobs, batch_size, pair_budget))
    encoded_batches = [[job.encoded for job in batch] for batch in batches]
    # padded lazily, so an engine that overlaps batches (`run_in_order`) pads the next one while this one runs
    padded = (features.pad(encodings) for encodings in encoded_batches)
    with closing(run_in_order(engine, padded)) as results:
        for batch, encodings in zip(batches, encoded_batches):
            outputs = next(results)
            for job, scores in zip(batch, decode_scores(outputs, encodings, len(groups[batch[0].group]))):
                slots = pieces.setdefault(job.row.index, [None] * len(groups))
                slots[job.group] = scores
                if all(s is not None for s in slots):
                    job.row.scores = merge_label_groups(slots, groups, len(spec.labels))
                    del pieces[job.row.index]
                    if progress is not None:
                        progress.update(1)
