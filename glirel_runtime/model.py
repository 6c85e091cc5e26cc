"""`GLiREL`: the runtime's entry class, a drop-in for `glirel.GLiREL` at inference."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from .artifact import CONFIG_FILE, GRAPH_INPUTS, MODEL_FILE, TOKENIZER_FILE, ArtifactConfig
from .decoding import constraint_mask, relation_dicts, select
from .features import EncodedText, FeatureBuilder
from .providers import TENSORRT, ProviderSpec, create_session, run_with_io_binding, uses_gpu
from .trt_profile import ShapeLimits, profile_options
from .validation import InputError, LabelSpec, TextItem, check_item, check_labels, check_threshold, check_top_k

DEFAULT_MAX_PAIRS = 250_000
"""Pairs per text above which input is refused (500 entities give 249,500 pairs)."""
PAIR_BUDGET = 65_536
"""Most padded pairs (batch × widest text) one session run may hold; larger batches are split."""
ARTIFACT_FILES = [CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE]
Relation = dict[str, Any]


@dataclass
class PairScores:
    """Raw model output for one text: every scored pair and its label probabilities."""

    heads: np.ndarray  # [P] index into the caller's ner list
    tails: np.ndarray  # [P]
    probabilities: np.ndarray  # [P, L] float32, labels in the order given
    coref_probabilities: Optional[np.ndarray] = None  # [P] when the checkpoint has a coreference head


def default_model_dir() -> Path:
    """The model shipped in the repository's `models/` folder (see models/README.md)."""
    import os

    override = os.environ.get("GLIREL_ONNX_DEFAULT_MODEL")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "models" / "glirel-minilm-redocred"


def _refuse_ground_truth(ground_truth_relations: Any) -> None:
    if ground_truth_relations is not None and any(r is not None for r in ground_truth_relations):
        raise ValueError("ground_truth_relations (loss computation) is not available in the torch-free runtime; use glirel")


class GLiREL:
    """Zero-shot relation extraction on onnxruntime, with `glirel`'s inference API.

    Example:
        >>> from glirel_runtime import GLiREL
        >>> model = GLiREL.from_pretrained()  # the default model in models/  # doctest: +SKIP
        >>> model.predict_relations("Ada Lovelace was born in London .", ["place of birth"],
        ...                         ner=[[0, 1, "PER", "Ada Lovelace"], [5, 5, "LOC", "London"]])  # doctest: +SKIP
    """

    def __init__(
        self,
        artifact_dir: str | Path,
        providers: Union[str, Sequence[ProviderSpec]] = "auto",
        threads: Optional[int] = None,
        max_pairs: int = DEFAULT_MAX_PAIRS,
        io_binding: Optional[bool] = None,
        shape_limits: Optional[ShapeLimits] = None,
    ):
        """`providers`: "auto", "cpu", "cuda", "tensorrt" or onnxruntime's provider list.
        `io_binding`: run through an IO binding (default: on CUDA/TensorRT only).
        `shape_limits`: the TensorRT engine's input range (see `trt_profile`); used, and
        enforced with clear errors, only when TensorRT runs the session.
        """
        self.artifact_dir = Path(artifact_dir)
        self.config = ArtifactConfig.load(self.artifact_dir)
        self.features = FeatureBuilder(self.artifact_dir / TOKENIZER_FILE, self.config)
        if shape_limits is not None and not isinstance(shape_limits, ShapeLimits):
            raise TypeError(f"shape_limits must be a ShapeLimits, got {type(shape_limits).__name__}")
        limits = (shape_limits or ShapeLimits()).resolve(self.config)
        self.session = create_session(self.artifact_dir / MODEL_FILE, providers, threads, tensorrt_options=profile_options(limits))
        self.shape_limits: Optional[ShapeLimits] = limits if TENSORRT in self.session.get_providers() else None
        if io_binding is not None and not isinstance(io_binding, bool):
            raise TypeError(f"io_binding must be True, False or None, got {io_binding!r}")
        self.io_binding = uses_gpu(self.session) if io_binding is None else io_binding
        input_names = [i.name for i in self.session.get_inputs()]
        if sorted(input_names) != sorted(GRAPH_INPUTS):
            raise ValueError(f"{self.artifact_dir / MODEL_FILE} has inputs {input_names}, the contract says {list(GRAPH_INPUTS)}")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.max_pairs = max_pairs

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path | None = None,
        providers: Union[str, Sequence[ProviderSpec]] = "auto",
        threads: Optional[int] = None,
        revision: Optional[str] = None,
        **kwargs: Any,
    ) -> "GLiREL":
        """Load an artifact directory, a Hub repository holding one, or (no argument) the default model."""
        if model is None:
            model = default_model_dir()
            if not (Path(model) / CONFIG_FILE).is_file():
                raise FileNotFoundError(f"the default model is missing at {model}; see models/README.md")
        path = Path(model)
        if path.is_dir():
            if not (path / CONFIG_FILE).is_file() and (path / "glirel_config.json").is_file():
                raise ValueError(f"{path} is a PyTorch glirel checkpoint; export it first: glirel-export {path} OUT_DIR")
            return cls(path, providers=providers, threads=threads, **kwargs)
        if path.exists() or str(model).startswith((".", "/")) or str(model).count("/") != 1:
            raise FileNotFoundError(f"{model} is neither an artifact directory nor a Hub repository id")
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo_id=str(model), revision=revision, allow_patterns=ARTIFACT_FILES)
        return cls(local, providers=providers, threads=threads, **kwargs)

    # ----------------------------------------------------------------- public API

    def predict_relations(
        self, text: str | Sequence[str], labels: Any, flat_ner: bool = True, threshold: float = 0.5,
        ner: Optional[Sequence[Sequence[Any]]] = None, ground_truth_relations: None = None, top_k: int = -1,
    ) -> list[Relation]:
        """Relations in one text. `ner`: `[start, end_inclusive, type, text]` word spans.

        Returns glirel's dicts: `head_pos`/`tail_pos` (end-exclusive), `head_text`, `tail_text`,
        `label`, `score` (plus `head_char_pos`/`tail_char_pos` when `text` is a string).
        Fewer than two entities give an empty list. `flat_ner` is accepted for compatibility;
        `ground_truth_relations` (glirel's loss computation) needs PyTorch and is refused.
        """
        _refuse_ground_truth(ground_truth_relations)
        try:
            return self.batch_predict_relations([text], labels, threshold=threshold, ner=[ner], top_k=top_k)[0]
        except InputError as error:  # one item: raise its own ValueError/TypeError
            raise error.causes[0] from None

    def batch_predict_relations(
        self, texts: Sequence[str | Sequence[str]], labels: Any, flat_ner: bool = True, threshold: float = 0.5,
        ner: Optional[Sequence[Any]] = None, ground_truth_relations: None = None, top_k: int = -1, batch_size: int = 32,
        on_error: str = "raise", show_progress: bool = False,
    ) -> list[Union[list[Relation], InputError]]:
        """Relations for many texts sharing one label set; results in input order.

        Every item is checked before anything runs. `on_error="raise"` raises one
        `InputError` naming every bad item; `on_error="return"` puts that item's
        `InputError` in its place and still returns the others' results.
        """
        _refuse_ground_truth(ground_truth_relations)
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a list of texts, got {type(texts).__name__}")
        if ner is None or isinstance(ner, (str, bytes)) or not isinstance(ner, Sequence):
            raise TypeError("ner must be a list with one entity list per text")
        if len(ner) != len(texts):
            raise ValueError(f"texts has {len(texts)} items but ner has {len(ner)}")
        return list(self.predict_stream(zip(texts, ner), labels, threshold=threshold, top_k=top_k, batch_size=batch_size,
                                        chunk_size=max(len(texts), 1), on_error=on_error, show_progress=show_progress))

    def predict_stream(
        self, items: Iterable[Any], labels: Any, threshold: float = 0.5, top_k: int = -1, batch_size: int = 32,
        chunk_size: int = 1024, on_error: str = "raise", show_progress: bool = False,
    ) -> Iterator[Union[list[Relation], InputError]]:
        """Stream relations for any iterable of `(text, ner)` pairs or glirel JSONL dicts, in input order.

        Memory stays bounded: `chunk_size` items are read, sorted by length into
        batches of `batch_size`, run, and yielded before the next chunk is read.

        Example:
            >>> rows = ({"tokenized_text": t, "ner": n} for t, n in corpus)  # doctest: +SKIP
            >>> for relations in model.predict_stream(rows, ["founded by"]): ...  # doctest: +SKIP
        """
        spec, threshold, top_k = check_labels(labels), check_threshold(threshold), check_top_k(top_k)
        if on_error not in ("raise", "return"):
            raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._check_prompt(spec)
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(desc="glirel", unit="text")
        iterator, offset = iter(items), 0
        try:
            while chunk := list(itertools.islice(iterator, chunk_size)):
                text_items, scores, errors = self._score_chunk(
                    chunk, spec, batch_size, offset, progress, run_despite_errors=on_error == "return")
                if errors and on_error == "raise":
                    raise InputError(errors)
                for position, (item, score) in enumerate(zip(text_items, scores)):
                    if offset + position in errors:
                        yield InputError({offset + position: errors[offset + position]})
                    else:
                        yield self._decode(item, score, spec, threshold, top_k)
                offset += len(chunk)
        finally:
            if progress is not None:
                progress.close()

    def score_pairs(
        self, texts: Sequence[str | Sequence[str]], labels: Any, ner: Sequence[Any], batch_size: int = 32,
    ) -> list[PairScores]:
        """Every scored pair's label probabilities, before any threshold (for evaluation and calibration)."""
        spec = check_labels(labels)
        self._check_prompt(spec)
        if len(ner) != len(texts):
            raise ValueError(f"texts has {len(texts)} items but ner has {len(ner)}")
        _, scores, errors = self._score_chunk(list(zip(texts, ner)), spec, batch_size, 0, None)
        if errors:
            raise InputError(errors)
        return scores

    # ----------------------------------------------------------------- internals

    def _check_prompt(self, spec: LabelSpec) -> None:
        if self.shape_limits is not None and len(spec.labels) > self.shape_limits.labels:
            raise ValueError(f"{len(spec.labels)} labels exceed the TensorRT engine's limit of {self.shape_limits.labels}: "
                             f"pass shape_limits=ShapeLimits(labels=...) when loading the model")
        limit = self.config.max_subwords
        if limit is not None:
            prompt_length = self.features.count_subwords([self.features.prompt(spec.labels)])[0]
            if prompt_length >= limit:
                raise ValueError(
                    f"the prompt of {len(spec.labels)} labels alone takes {prompt_length} subwords; "
                    f"the encoder accepts {limit}: use fewer or shorter labels"
                )

    @staticmethod
    def _unpack(row: Any) -> tuple[Any, Any]:
        if isinstance(row, dict):
            text = row.get("text", row.get("tokenized_text"))
            return text, row.get("ner")
        if isinstance(row, (tuple, list)) and len(row) == 2:
            return row[0], row[1]
        raise TypeError(f"expected (text, ner) or a dict with 'text'/'tokenized_text' and 'ner', got {type(row).__name__}")

    def _score_chunk(
        self, rows: list[Any], spec: LabelSpec, batch_size: int, offset: int, progress: Any,
        run_despite_errors: bool = False,
    ) -> tuple[list[Optional[TextItem]], list[Optional[PairScores]], dict[int, Exception]]:
        """Validate, encode and run one chunk; returns per-row items, scores and errors by index."""
        errors: dict[int, Exception] = {}
        items: list[Optional[TextItem]] = []
        for position, row in enumerate(rows):
            try:
                items.append(check_item(*self._unpack(row)))
            except (TypeError, ValueError) as error:
                errors[offset + position] = error
                items.append(None)

        runnable = [i for i, item in enumerate(items) if item is not None and len(item.spans) >= 2]
        encoded = self.features.encode(spec.labels, [items[i].words for i in runnable], [items[i].spans for i in runnable])
        to_run: list[tuple[int, EncodedText]] = []
        for i, enc in zip(runnable, encoded):
            problem = self._size_problem(items[i], enc)
            if problem:
                errors[offset + i] = ValueError(problem)
            else:
                to_run.append((i, enc))

        scores: list[Optional[PairScores]] = [None] * len(rows)
        for i, item in enumerate(items):
            if item is not None and len(item.spans) < 2:
                scores[i] = PairScores(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(spec.labels)), np.float32))
        if errors and not run_despite_errors:  # nothing runs while any item is invalid
            return items, scores, errors
        for i, result in self._run(to_run, len(spec.labels), batch_size, progress):
            scores[i] = result
        if progress is not None:
            progress.update(len(rows) - len(to_run))
        return items, scores, errors

    def _size_problem(self, item: TextItem, encoded: EncodedText) -> Optional[str]:
        config = self.config
        if len(encoded.word_index) > config.max_words:
            return (f"text has {len(encoded.word_index)} words; this model accepts at most {config.max_words} "
                    f"(glirel would truncate it silently): split the text into windows")
        if config.max_subwords is not None and encoded.input_ids.shape[0] > config.max_subwords:
            return (f"text and label prompt take {encoded.input_ids.shape[0]} subwords; the encoder accepts "
                    f"{config.max_subwords}: split the text into windows or use fewer labels")
        pairs = encoded.pair_index.shape[0]
        if pairs > self.max_pairs:
            return (f"{len(item.spans)} entities give {pairs} pairs, over max_pairs={self.max_pairs}: "
                    f"split the text, or raise max_pairs if memory allows")
        limits = self.shape_limits
        if limits is not None:
            sizes = {"subwords": encoded.input_ids.shape[0], "words": encoded.word_index.shape[0],
                     "entities": encoded.span_index.shape[0], "pairs": pairs}
            for axis, size in sizes.items():
                if size > getattr(limits, axis):
                    return (f"text has {size} {axis}, over the TensorRT engine's limit of {getattr(limits, axis)}: "
                            f"pass shape_limits=ShapeLimits({axis}=...) when loading the model")
        return None

    def _run(self, jobs: list[tuple[int, EncodedText]], num_labels: int, batch_size: int, progress: Any) -> Iterator[tuple[int, PairScores]]:
        """Run jobs in batches of similar subword length; yields (row, scores)."""
        jobs = sorted(jobs, key=lambda job: job[1].input_ids.shape[0])
        if self.shape_limits is not None:
            batch_size = min(batch_size, self.shape_limits.batch)
        for batch in self._batches(jobs, batch_size):
            inputs = self.features.pad([enc for _, enc in batch])
            results = (run_with_io_binding(self.session, inputs, self.output_names) if self.io_binding
                       else self.session.run(None, inputs))
            outputs = dict(zip(self.output_names, results))
            logits = outputs["logits"].astype(np.float32)  # [B, P, L]
            probabilities = 1.0 / (1.0 + np.exp(-logits))
            coref = outputs.get("coref_logits")
            for row, (i, enc) in enumerate(batch):
                num_pairs = enc.pair_index.shape[0]
                order = enc.entity_order  # model entity → caller's entity index
                coref_p = None if coref is None else 1.0 / (1.0 + np.exp(-coref[row, :num_pairs].astype(np.float32)))
                yield i, PairScores(order[enc.pair_index[:, 0]], order[enc.pair_index[:, 1]],
                                    probabilities[row, :num_pairs, :num_labels], coref_p)
            if progress is not None:
                progress.update(len(batch))

    @staticmethod
    def _batches(jobs: list[tuple[int, EncodedText]], batch_size: int) -> Iterator[list[tuple[int, EncodedText]]]:
        """Consecutive batches of at most `batch_size` texts and `PAIR_BUDGET` padded pairs."""
        batch: list[tuple[int, EncodedText]] = []
        widest = 0
        for job in jobs:
            pairs = job[1].pair_index.shape[0]
            if batch and (len(batch) == batch_size or (len(batch) + 1) * max(widest, pairs) > PAIR_BUDGET):
                yield batch
                batch, widest = [], 0
            batch.append(job)
            widest = max(widest, pairs)
        if batch:
            yield batch

    @staticmethod
    def _decode(item: TextItem, scores: PairScores, spec: LabelSpec, threshold: float, top_k: int) -> list[Relation]:
        allowed = constraint_mask(spec, item, scores.heads, scores.tails)
        pairs, labels = select(scores.probabilities, threshold, top_k, allowed)
        return relation_dicts(item, spec, scores.heads[pairs], scores.tails[pairs], labels, scores.probabilities[pairs, labels])

    # ----------------------------------------------------------------- documents (issue 5)

    def predict_document(
        self, text: str | Sequence[str], labels: Any, ner: Sequence[Sequence[Any]], threshold: float = 0.5,
        top_k: int = -1, window_overlap: Optional[int] = None, coreference: Optional[bool] = None,
        clusters: Optional[Sequence[Sequence[int]]] = None, aggregation: str = "max", batch_size: int = 2,
        coreference_label: Optional[str] = None, show_progress: Optional[bool] = None,
    ) -> dict[str, Any]:
        """Relations in a document of any length: overlapping windows, merged by max score.

        `ner` lists every mention as `[start, end_inclusive, type, text]` document word spans;
        each lies wholly inside at least one window (one that cannot fit raises ValueError).
        `window_overlap`: words shared by consecutive windows (default: half a window).
        Coreference is on when `coreference_label` (default: the artifact's, else "SELF") is
        among the labels or `clusters` (gold clusters: lists of `ner` indices) is given;
        `coreference=True` adds the label, `False` turns clustering off. `aggregation`
        ("max", "mean", "count") lifts mention relations to clusters (see `glirel_runtime.coref`).
        `batch_size` windows run at once; `show_progress=None` shows a bar for long documents.

        Returns ``{"relations": [...], "windows": [[start, end), ...], "unscored_pairs": int}``
        plus ``"clusters"`` and ``"entity_relations"`` when coreference is on. `relations` are
        glirel dicts in document word positions; `unscored_pairs` counts entity pairs that share
        no window. See `glirel_runtime.documents` for the windowing and merge rules.

        Example:
            >>> out = model.predict_document(long_text, ["founded by", "SELF"], ner=mentions)  # doctest: +SKIP
            >>> out["entity_relations"][0]  # doctest: +SKIP
            {'head': 0, 'tail': 3, 'label': 'founded by', 'score': 0.91, 'support': 2, 'scored_pairs': 4, ...}
        """
        from .documents import predict_document

        return predict_document(self, text, labels, ner, threshold=threshold, top_k=top_k, window_overlap=window_overlap,
                                coreference=coreference, clusters=clusters, aggregation=aggregation,
                                batch_size=batch_size, coreference_label=coreference_label, show_progress=show_progress)
