"""Documents of any length: overlapping windows, pair merging, and document-level output.

A checkpoint reads at most ``max_words`` words and its encoder at most
``max_subwords`` subwords (label prompt included). `plan_windows` cuts a document
into overlapping word windows that fit both limits (entity markers counted when the
checkpoint inserts them) such that **every entity lies wholly inside at least one
window**; an entity that cannot fit in any window raises `ValueError` naming it.

Each window is scored like a single text: its entities are those wholly inside it,
in document order, so the artifact's pair window (`max_entity_pair_distance`) and
glirel's pair order apply unchanged. Merge rule: a (head, tail, label) cell scored
in several windows gets the **maximum** of its window probabilities; threshold,
type constraints and ``top_k`` are applied after merging, at document level.
Only cells above the threshold are kept while windows run (a cell at or below the
threshold in every window cannot be selected, and max commutes with the threshold),
so memory grows with the output, not with the pairs of all windows.

Pairs whose two entities never share a window cannot be scored; their number is
returned as ``unscored_pairs`` (unordered entity pairs). Raise the window overlap,
or use fewer/shorter labels (more room for text), to reduce it.

Example:
    >>> result = model.predict_document(long_text, ["founded by", "SELF"], ner=mentions)  # doctest: +SKIP
    >>> result["relations"][0]["label"], len(result["clusters"])  # doctest: +SKIP
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from .coref import AGGREGATIONS, DEFAULT_COREFERENCE_LABEL, aggregate_relations, check_clusters, cluster_index, connected_components
from .decoding import constraint_mask, keep_one_direction, relation_dicts, select
from .pipeline import prompt_subwords, validate_rows
from .validation import LabelSpec, TextItem, check_item, check_labels, check_top_k

if TYPE_CHECKING:
    from .model import GLiREL

PROGRESS_MIN_WINDOWS = 16
"""With ``show_progress=None`` a progress bar appears from this many windows on."""


@dataclass(frozen=True)
class Window:
    """One window: document words ``start:end`` (end-exclusive) and the entities wholly inside."""

    start: int
    end: int
    entities: np.ndarray  # [k] document entity indices, ascending


@dataclass(frozen=True)
class WindowLimits:
    """What one window may hold.

    Example:
        >>> WindowLimits(max_words=384, max_subwords=512, prompt_subwords=40).max_entities
        500
    """

    max_words: int
    max_subwords: Optional[int]
    prompt_subwords: int  # the label prompt with the tokenizer's special tokens
    marker_words: int = 0  # model words added per entity (2 with entity markers)
    marker_subwords: int = 0  # subwords those markers take
    max_pairs: int = 250_000

    @property
    def max_entities(self) -> int:
        """Most entities k with k·(k−1) ≤ max_pairs."""
        k = int((1 + math.sqrt(1 + 4 * self.max_pairs)) // 2)
        while k * (k - 1) > self.max_pairs:
            k -= 1
        return max(k, 2)


def window_limits(model: "GLiREL", prompts: Sequence[Sequence[str]]) -> WindowLimits:
    """The limits `model` puts on a window for these label prompt groups (the longest one counts)."""
    features, config = model.features, model.config
    markers = config.add_entity_markers
    marker_subwords = 0
    if markers:
        marker_subwords = int(subword_costs(model, [config.entity_start_token, config.entity_end_token]).sum())
    return WindowLimits(
        max_words=config.max_words,
        max_subwords=config.max_subwords,
        prompt_subwords=max(prompt_subwords(features, group) for group in prompts),
        marker_words=2 if markers else 0,
        marker_subwords=marker_subwords,
        max_pairs=model.max_pairs,
    )


def subword_costs(model: "GLiREL", words: Sequence[str]) -> np.ndarray:
    """[N] subwords each word takes when it follows the prompt (tokenized in context, in one pass)."""
    return model.features.word_costs(words)


def plan_windows(
    spans: np.ndarray, word_subwords: np.ndarray, limits: WindowLimits, overlap: Optional[int] = None,
) -> list[Window]:
    """Overlapping windows covering the document, every entity wholly inside at least one.

    Each window starts where the previous one left off minus `overlap` words (default:
    half the previous window), never after the start of an entity the previous
    windows did not hold, and extends as far as the limits allow.

    `spans` [E, 2]: word start and inclusive end of each entity; `word_subwords` [N].

    Example:
        >>> limits = WindowLimits(max_words=6, max_subwords=None, prompt_subwords=0)
        >>> windows = plan_windows(np.array([[0, 1], [4, 6], [8, 8]]), np.ones(10, np.int64), limits, overlap=2)
        >>> [(w.start, w.end, w.entities.tolist()) for w in windows]
        [(0, 6, [0]), (4, 10, [1, 2])]
    """
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    starts, ends = spans[:, 0], spans[:, 1]  # [E] each, ends inclusive
    n = int(len(word_subwords))
    cumulative = np.concatenate([[0], np.cumsum(word_subwords, dtype=np.int64)])  # [N + 1]

    by_start = np.argsort(starts, kind="stable")  # [E]
    sorted_starts = starts[by_start]

    def inside(ws: int, we: int) -> np.ndarray:
        """Entities wholly inside ws:we, ascending (only those starting in the window are looked at)."""
        lo, hi = np.searchsorted(sorted_starts, [ws, we], side="left")
        candidates = by_start[lo:hi]
        return np.sort(candidates[ends[candidates] < we])

    def cost(ws: int, we: int) -> tuple[int, int, int]:
        """(entities inside, model words, subwords) of window ws:we."""
        k = int(inside(ws, we).size)
        words = we - ws + k * limits.marker_words
        subwords = limits.prompt_subwords + int(cumulative[we] - cumulative[ws]) + k * limits.marker_subwords
        return k, words, subwords

    def fits(ws: int, we: int) -> bool:
        k, words, subwords = cost(ws, we)
        return (k <= limits.max_entities and words <= limits.max_words
                and (limits.max_subwords is None or subwords <= limits.max_subwords))

    windows: list[Window] = []
    ws = 0
    while n:
        if not fits(ws, ws + 1):
            raise ValueError(
                f"word {ws} takes {int(word_subwords[ws])} subwords; with the label prompt ({limits.prompt_subwords} "
                f"subwords) that exceeds the encoder's {limits.max_subwords}: use fewer or shorter labels")
        lo, hi = ws + 1, min(n, ws + limits.max_words)  # fits(ws, lo) holds; find the largest end that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(ws, mid):
                lo = mid
            else:
                hi = mid - 1
        we = lo
        windows.append(Window(ws, we, inside(ws, we)))
        if we >= n:
            break
        step_to = max(ws + 1, we - (overlap if overlap is not None else (we - ws) // 2))
        lo, hi = np.searchsorted(sorted_starts, [ws, we], side="left")
        cut = by_start[lo:hi][ends[by_start[lo:hi]] >= we]  # started here, not held by any window yet
        if cut.size:
            first = int(starts[cut].min())
            if first == ws:
                entity = int(cut[starts[cut] == ws].min())
                s, e = int(starts[entity]), int(ends[entity])
                k, words, subwords = cost(s, e + 1)
                raise ValueError(
                    f"entity {entity} (words {s}..{e}) does not fit in any window: its words need {words} model "
                    f"words and {subwords} subwords with the label prompt, the model accepts {limits.max_words} words"
                    + (f" and {limits.max_subwords} subwords" if limits.max_subwords is not None else "")
                    + (f" and {limits.max_entities} entities" if k > limits.max_entities else ""))
            step_to = min(step_to, first)
        ws = step_to
    return windows


def unscored_pair_count(spans: np.ndarray, windows: Sequence[Window]) -> int:
    """Unordered entity pairs that share no window (their relations cannot be scored).

    Window starts increase and ends never decrease, so the windows holding an entity are
    a contiguous run; two entities share a window when their runs overlap.

    Example:
        >>> windows = [Window(0, 6, np.array([0])), Window(4, 10, np.array([1, 2]))]
        >>> unscored_pair_count(np.array([[0, 1], [4, 6], [8, 8]]), windows)
        2
    """
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if not windows or spans.shape[0] < 2:
        return 0
    window_starts = np.array([w.start for w in windows])  # [W]
    window_ends = np.array([w.end for w in windows])  # [W]
    first = np.searchsorted(window_ends, spans[:, 1], side="right")  # first window with end > entity end
    last = np.searchsorted(window_starts, spans[:, 0], side="right") - 1  # last window starting at or before it
    ordered_first = np.sort(first)
    after = spans.shape[0] - np.searchsorted(ordered_first, last, side="right")  # entities wholly after each run
    return int(after.sum())


def window_inputs(item: TextItem, window: Window) -> tuple[list[str], list[list[Any]]]:
    """The words and glirel `ner` list (window positions, inclusive ends) one window is scored with.

    Example:
        >>> item = TextItem(["a", "b", "c", "d"], None, [(0, 0), (2, 3)], ["X", "Y"])
        >>> window_inputs(item, Window(1, 4, np.array([1])))
        (['b', 'c', 'd'], [[1, 2, 'Y']])
    """
    ner = []
    for entity in window.entities.tolist():
        start, end = item.spans[entity]
        ner.append([start - window.start, end - window.start, item.entity_types[entity]])
    return item.words[window.start:window.end], ner


class _CellMerger:
    """Max-merges (head, tail, label) cells above the threshold across windows; memory ∝ kept cells."""

    COMPACT_EVERY = 1_000_000

    def __init__(self, num_entities: int, num_labels: int, threshold: float, keep_scored: bool):
        self.num_entities, self.num_labels, self.threshold = num_entities, num_labels, threshold
        self.keep_scored = keep_scored
        self.keys: list[np.ndarray] = []  # cell keys (head·E + tail)·L + label
        self.values: list[np.ndarray] = []
        self.scored: list[np.ndarray] = []  # pair keys head·E + tail
        self.buffered = 0

    def add(self, heads: np.ndarray, tails: np.ndarray, probabilities: np.ndarray) -> None:
        """heads, tails [P] document entity indices; probabilities [P, L]."""
        pair_keys = heads.astype(np.int64) * self.num_entities + tails  # [P]
        rows, labels = np.nonzero(probabilities > self.threshold)  # [C] each
        self.keys.append(pair_keys[rows] * self.num_labels + labels)
        self.values.append(probabilities[rows, labels].astype(np.float32))
        if self.keep_scored:
            self.scored.append(pair_keys)
        self.buffered += rows.size + (pair_keys.size if self.keep_scored else 0)
        if self.buffered > self.COMPACT_EVERY:
            self.compact()

    def compact(self) -> None:
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, np.int64)
        values = np.concatenate(self.values) if self.values else np.zeros(0, np.float32)
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        unique, first = np.unique(keys, return_index=True)
        merged = np.maximum.reduceat(values, first) if unique.size else values
        self.keys, self.values = [unique], [merged]
        if self.keep_scored:
            self.scored = [np.unique(np.concatenate(self.scored))] if self.scored else []
        self.buffered = unique.size + (self.scored[0].size if self.scored else 0)

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Merged (keys [C], max scores [C]), keys ascending."""
        self.compact()
        return self.keys[0], self.values[0]

    def scored_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(heads [S], tails [S]) of every distinct scored pair."""
        self.compact()
        keys = self.scored[0] if self.scored else np.zeros(0, np.int64)
        return keys // self.num_entities, keys % self.num_entities


def _positive_int(name: str, value: Any, allow_zero: bool = False) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {kind} integer, got {value!r}")
    return int(value)


def predict_document(
    model: "GLiREL", text: str | Sequence[str], labels: Any, ner: Sequence[Sequence[Any]], threshold: float = 0.5,
    top_k: int = -1, window_overlap: Optional[int] = None, coreference: Optional[bool] = None,
    clusters: Optional[Sequence[Sequence[int]]] = None, aggregation: str = "max", batch_size: int = 2,
    coreference_label: Optional[str] = None, show_progress: Optional[bool] = None,
) -> dict[str, Any]:
    """Relations in a document of any length; see `GLiREL.predict_document` for the parameters."""
    top_k = check_top_k(top_k)
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {list(AGGREGATIONS)}, got {aggregation!r}")
    batch_size = _positive_int("batch_size", batch_size)
    if window_overlap is not None:
        window_overlap = _positive_int("window_overlap", window_overlap, allow_zero=True)
        if window_overlap >= model.config.max_words:
            raise ValueError(f"window_overlap={window_overlap} must be below the model's max_words={model.config.max_words}")
    if coreference not in (None, True, False):
        raise TypeError(f"coreference must be None (auto), True or False, got {coreference!r}")
    coref_name = coreference_label or model.config.coreference_label or DEFAULT_COREFERENCE_LABEL
    if not isinstance(coref_name, str):
        raise TypeError(f"coreference_label must be a string, got {coref_name!r}")

    spec: LabelSpec = check_labels(labels)
    if coreference is True and coref_name not in spec.labels:
        spec.labels.append(coref_name)  # coreference asked for: score the SELF label too
    if clusters is not None and coreference is False:
        raise ValueError("clusters were given but coreference=False: drop one of them")
    use_coref = coreference is not False and (coref_name in spec.labels or clusters is not None)
    thresholds = model.thresholds(threshold, spec)  # [L]
    groups = model.label_groups(spec)
    prompts = [[spec.prompts[c] for c in columns] for columns in groups]

    item = check_item(text, ner)  # document-level words, offsets, spans and types
    num_entities = len(item.spans)
    gold = check_clusters(clusters, num_entities) if clusters is not None else None
    spans = np.array(item.spans, dtype=np.int64).reshape(-1, 2)  # [E, 2]
    windows = plan_windows(spans, subword_costs(model, item.words), window_limits(model, prompts), window_overlap)
    runnable = [w for w in windows if w.entities.size >= 2]

    # cells at or below every label's threshold can never be selected: the merger drops them early
    merger = _CellMerger(num_entities, len(spec.labels), float(thresholds.min()), keep_scored=use_coref)
    progress = None
    if show_progress or (show_progress is None and len(runnable) >= PROGRESS_MIN_WINDOWS):
        from tqdm.auto import tqdm

        progress = tqdm(total=len(runnable), desc="glirel document", unit="window")
    try:
        for first in range(0, len(runnable), batch_size):
            batch = runnable[first:first + batch_size]
            rows = validate_rows([window_inputs(item, window) for window in batch])
            model.score_rows(rows, spec, batch_size, groups=groups, run_despite_errors=False)
            for window, row in zip(batch, rows):
                if row.error is not None:
                    raise ValueError(f"window of words {window.start}..{window.end - 1}: {row.error}")
                # row.scores.heads/tails [P] index the window's entities; probabilities [P, L]
                merger.add(window.entities[row.scores.heads], window.entities[row.scores.tails], row.scores.probabilities)
            if progress is not None:
                progress.update(len(batch))
    finally:
        if progress is not None:
            progress.close()

    relations, (heads, tails, label_ids, values) = _decode(merger, item, spec, thresholds, top_k)
    result: dict[str, Any] = {
        "relations": relations,
        "windows": [[w.start, w.end] for w in windows],
        "unscored_pairs": unscored_pair_count(spans, windows),
    }
    if use_coref:
        coref_id = spec.labels.index(coref_name) if coref_name in spec.labels else None
        if gold is not None:
            groups = gold
        else:
            selfs = label_ids == coref_id
            groups = connected_components(num_entities, zip(heads[selfs].tolist(), tails[selfs].tolist()))
            groups.sort(key=lambda members: min(item.spans[m][0] for m in members))  # by first mention in the text
        scored_heads, scored_tails = merger.scored_pairs()
        rows = aggregate_relations(heads, tails, label_ids, values, cluster_index(groups, num_entities),
                                   scored_heads, scored_tails, aggregation, thresholds, skip_label=coref_id)
        first_mention = [min(members, key=lambda m: item.spans[m]) for members in groups]
        for row in rows:
            h, t = first_mention[row["head"]], first_mention[row["tail"]]
            row["head_text"] = item.words[item.spans[h][0]:item.spans[h][1] + 1]
            row["tail_text"] = item.words[item.spans[t][0]:item.spans[t][1] + 1]
            row["label"] = spec.labels[row["label"]]
        result["clusters"] = groups
        result["entity_relations"] = rows
    return result


def _decode(
    merger: _CellMerger, item: TextItem, spec: LabelSpec, threshold: np.ndarray, top_k: int,
) -> tuple[list[dict[str, Any]], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Merged cells → glirel relation dicts, plus the selected (heads, tails, labels, scores) arrays."""
    keys, values = merger.cells()  # [C]
    num_labels, num_entities = merger.num_labels, merger.num_entities
    pair_keys, cell_labels = keys // num_labels, keys % num_labels
    unique_pairs, pair_row = np.unique(pair_keys, return_inverse=True)  # pairs ascending = glirel's row-major order
    dense = np.zeros((unique_pairs.size, num_labels), dtype=np.float32)  # [P_hit, L]; 0 is below any threshold ≥ 0
    dense[pair_row, cell_labels] = values
    heads, tails = unique_pairs // num_entities, unique_pairs % num_entities  # [P_hit]
    allowed = constraint_mask(spec, item, heads, tails)
    rows, labels = select(dense, threshold, top_k, allowed)
    scores = dense[rows, labels]
    heads, tails = heads[rows], tails[rows]
    keep = keep_one_direction(spec, heads, tails, labels, scores)
    heads, tails, labels, scores = heads[keep], tails[keep], labels[keep], scores[keep]
    return relation_dicts(item, spec, heads, tails, labels, scores), (heads, tails, labels, scores)
