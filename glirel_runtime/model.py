"""`GLiREL`: the runtime's entry class, a drop-in for `glirel.GLiREL` at inference."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from .artifact import (
    CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, ArtifactConfig, check_artifact_files, check_tokenizer, validate_artifact,
)
from .decoding import Relation, decode_relations
from .features import EncodedText, FeatureBuilder
from .engines import Engine, create_engine
from .pipeline import DEFAULT_PAIR_BUDGET, PairScores, Row, label_groups, prompt_subwords, score_rows, validate_rows
from .resolve import default_model_dir
from .providers import TENSORRT, ProviderSpec
from .trt_profile import ShapeLimits, profile_options
from .validation import InputError, LabelSpec, TextItem, check_labels, check_top_k, label_thresholds

DEFAULT_MAX_PAIRS = 250_000
"""Pairs per text above which input is refused (500 entities give 249,500 pairs)."""
DEFAULT_LABELS_PER_PROMPT: Optional[int] = None
"""Labels per prompt when the caller sets none: None puts every label in one prompt while it fits."""
MAX_PROMPT_SHARE = 0.5
"""Without `labels_per_prompt`, a prompt may take at most this share of the encoder's subwords
(the rest is for the text); a longer label set is split into groups."""
ARTIFACT_FILES = [CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE]
Threshold = Union[None, float, Mapping[str, float]]


def _refuse_ground_truth(ground_truth_relations: Any) -> None:
    if ground_truth_relations is not None and any(r is not None for r in ground_truth_relations):
        raise ValueError("ground_truth_relations (loss computation) is not available in the torch-free runtime; use glirel")


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


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
        pair_budget: int = DEFAULT_PAIR_BUDGET,
        labels_per_prompt: Optional[int] = DEFAULT_LABELS_PER_PROMPT,
        engine: Optional[Engine] = None,
        allow_spinning: Optional[bool] = None,
    ):
        """`providers`: "auto", "cpu", "cuda", "tensorrt", "openvino" or onnxruntime's provider list
        (see `engines.create_engine`: "auto" takes OpenVINO bf16 on CPUs with bf16 units when it is
        installed, else TensorRT, CUDA, CPU as onnxruntime offers them).
        `threads`: intra-op threads; `allow_spinning`: whether idle onnxruntime threads busy-wait
        (None: onnxruntime's default; False leaves the cores to other processes between calls).
        `io_binding`: run through an IO binding (default: on CUDA/TensorRT only).
        `shape_limits`: the TensorRT engine's input range (see `trt_profile`); used, and
        enforced with clear errors, only when TensorRT runs the session.
        `pair_budget`: most padded pairs one engine run holds (larger batches are split).
        `labels_per_prompt`: split every label set into prompts of this many labels
        (default: one prompt while it fits, see `MAX_PROMPT_SHARE`).
        `engine`: run the graph elsewhere (e.g. `integrations.triton_client.TritonEngine`);
        no local session is created then.
        """
        self.artifact_dir = Path(artifact_dir)
        check_artifact_files(self.artifact_dir)  # each missing file named with its path
        self.config = ArtifactConfig.load(self.artifact_dir)  # every field's type and range checked
        self.features = FeatureBuilder(self.artifact_dir / TOKENIZER_FILE, self.config)
        if shape_limits is not None and not isinstance(shape_limits, ShapeLimits):
            raise TypeError(f"shape_limits must be a ShapeLimits, got {type(shape_limits).__name__}")
        self.max_pairs = _positive_int("max_pairs", max_pairs)
        self.pair_budget = _positive_int("pair_budget", pair_budget)
        self.labels_per_prompt = None if labels_per_prompt is None else _positive_int("labels_per_prompt", labels_per_prompt)
        if io_binding is not None and not isinstance(io_binding, bool):
            raise TypeError(f"io_binding must be True, False or None, got {io_binding!r}")
        if engine is not None:
            self.session, self.shape_limits, self.io_binding, self.engine = None, None, False, engine
            return
        limits = (shape_limits or ShapeLimits()).resolve(self.config)
        self.engine: Engine = create_engine(self.artifact_dir / MODEL_FILE, providers, threads, io_binding=io_binding,
                                            allow_spinning=allow_spinning, tensorrt_options=profile_options(limits))
        self.session = getattr(self.engine, "session", None)  # the onnxruntime session, when onnxruntime runs
        self.io_binding = bool(getattr(self.engine, "io_binding", False))
        self.shape_limits: Optional[ShapeLimits] = limits if TENSORRT in self.engine.providers else None
        # graph inputs/outputs against the contract, special tokens as single ids, ids within the embeddings
        if self.session is not None:
            validate_artifact(self.artifact_dir, self.config, self.features.tokenizer, self.session)
        else:
            check_tokenizer(self.config, self.features.tokenizer, self.artifact_dir / TOKENIZER_FILE)

    def __repr__(self) -> str:
        threshold = self.config.default_threshold
        return (f"GLiREL(artifact={str(self.artifact_dir)!r}, precision={self.config.precision!r}, "
                f"providers={self.providers!r}, default_threshold={threshold})")

    @property
    def providers(self) -> list[str]:
        """Where the graph runs: onnxruntime's execution providers, or the engine's own description."""
        return list(getattr(self.engine, "providers", [type(self.engine).__name__]))

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path | None = None,
        providers: Union[str, Sequence[ProviderSpec]] = "auto",
        threads: Optional[int] = None,
        revision: Optional[str] = None,
        **kwargs: Any,
    ) -> "GLiREL":
        """Load an artifact directory, a Hub repository holding one, or (no argument) the default model
        (``$GLIREL_ONNX_DEFAULT_MODEL``, the installed ``glirel-onnx-default-model`` package, a checkout's
        ``models/``: see `glirel_runtime.resolve`)."""
        if model is None:
            model = default_model_dir()  # see glirel_runtime.resolve for the order; says how to get one
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
        self, text: str | Sequence[str], labels: Any, flat_ner: bool = True, threshold: Threshold = None,
        ner: Optional[Sequence[Sequence[Any]]] = None, ground_truth_relations: None = None, top_k: int = -1,
    ) -> list[Relation]:
        """Relations in one text. `ner`: `[start, end_inclusive, type, text]` word spans; None
        finds the entities with spaCy's English pipeline (``pip install "glirel-onnx[ner]"``).

        Returns glirel's dicts: `head_pos`/`tail_pos` (end-exclusive), `head_text`, `tail_text`,
        `label`, `score` (plus `head_char_pos`/`tail_char_pos` when `text` is a string).
        Fewer than two entities give an empty list. `threshold`: None (the artifact's
        calibrated default), a number, or a mapping label → value (``"*"``: every other label).
        `flat_ner` is accepted for compatibility; `ground_truth_relations` (glirel's loss
        computation) needs PyTorch and is refused.
        """
        _refuse_ground_truth(ground_truth_relations)
        if ner is None:  # raw text: a named-entity recogniser finds the entities (the `ner` extra)
            from .ner import find_entities

            ner = find_entities(text)
        try:
            return self.batch_predict_relations([text], labels, threshold=threshold, ner=[ner], top_k=top_k)[0]
        except InputError as error:  # one item: raise its own ValueError/TypeError
            raise error.causes[0] from None

    def batch_predict_relations(
        self, texts: Sequence[str | Sequence[str]], labels: Any, flat_ner: bool = True, threshold: Threshold = None,
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
        ner_errors: dict[int, Exception] = {}
        if ner is None:  # raw texts: a named-entity recogniser finds the entities (the `ner` extra)
            from .ner import find_entities_batch

            if on_error not in ("raise", "return"):
                raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")
            ner = find_entities_batch(texts, on_error="return")
            ner_errors = {i: found for i, found in enumerate(ner) if isinstance(found, Exception)}
            if ner_errors and on_error == "raise":
                raise InputError(ner_errors)
        if isinstance(ner, (str, bytes)) or not isinstance(ner, Sequence):
            raise TypeError("ner must be a list with one entity list per text")
        if len(ner) != len(texts):
            raise ValueError(f"texts has {len(texts)} items but ner has {len(ner)}")
        # a text the recogniser refused runs as an empty placeholder (keeping every index) and gets its error back
        items = [("placeholder", []) if i in ner_errors else (text, entities)
                 for i, (text, entities) in enumerate(zip(texts, ner))]
        results = list(self.predict_stream(items, labels, threshold=threshold, top_k=top_k, batch_size=batch_size,
                                           chunk_size=max(len(texts), 1), on_error=on_error, show_progress=show_progress))
        return [InputError({i: ner_errors[i]}) if i in ner_errors else result for i, result in enumerate(results)]

    def predict_stream(
        self, items: Iterable[Any], labels: Any, threshold: Threshold = None, top_k: int = -1, batch_size: int = 32,
        chunk_size: int = 1024, on_error: str = "raise", show_progress: bool = False,
    ) -> Iterator[Union[list[Relation], InputError]]:
        """Stream relations for any iterable of `(text, ner)` pairs or glirel JSONL dicts, in input order.

        Memory stays bounded: `chunk_size` items are read, sorted by length into
        batches of `batch_size`, run, and yielded before the next chunk is read.

        Example:
            >>> rows = ({"tokenized_text": t, "ner": n} for t, n in corpus)  # doctest: +SKIP
            >>> for relations in model.predict_stream(rows, ["founded by"]): ...  # doctest: +SKIP
        """
        spec, top_k = check_labels(labels), check_top_k(top_k)
        thresholds = self.thresholds(threshold, spec)  # [L]
        if on_error not in ("raise", "return"):
            raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")
        batch_size, chunk_size = _positive_int("batch_size", batch_size), _positive_int("chunk_size", chunk_size)
        groups = self.label_groups(spec)
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(desc="glirel", unit="text", total=len(items) if isinstance(items, Sequence) else None)
        iterator, offset = iter(items), 0
        try:
            while chunk := list(itertools.islice(iterator, chunk_size)):
                rows = validate_rows(chunk, offset)
                self.score_rows(rows, spec, batch_size, groups=groups, run_despite_errors=on_error == "return",
                                progress=progress)
                errors = {row.index: row.error for row in rows if row.error is not None}
                if errors and on_error == "raise":
                    raise InputError(errors)
                for row in rows:
                    if row.error is not None:
                        yield InputError({row.index: row.error})
                    else:
                        yield decode_relations(row.item, row.scores, spec, thresholds, top_k)
                offset += len(chunk)
        finally:
            if progress is not None:
                progress.close()

    def score_pairs(
        self, texts: Sequence[str | Sequence[str]], labels: Any, ner: Sequence[Any], batch_size: int = 32,
    ) -> list[PairScores]:
        """Every scored pair's label probabilities, before any threshold (for evaluation and calibration)."""
        spec = check_labels(labels)
        if len(ner) != len(texts):
            raise ValueError(f"texts has {len(texts)} items but ner has {len(ner)}")
        rows = validate_rows(list(zip(texts, ner)))
        self.score_rows(rows, spec, batch_size, run_despite_errors=False)
        errors = {row.index: row.error for row in rows if row.error is not None}
        if errors:
            raise InputError(errors)
        return [row.scores for row in rows]

    # ----------------------------------------------------------------- pipeline stages (see pipeline.py)

    def thresholds(self, threshold: Threshold, spec: LabelSpec) -> np.ndarray:
        """[L] each label's threshold: the caller's (number or mapping), else the label's own,
        else the artifact's calibrated `default_threshold`."""
        return label_thresholds(threshold, spec, self.config.default_threshold)

    def label_groups(self, spec: LabelSpec, labels_per_prompt: Optional[int] = None) -> list[list[int]]:
        """The prompt groups (label columns) this model runs `spec` in; see `pipeline.label_groups`."""
        if self.shape_limits is not None and len(spec.labels) > self.shape_limits.labels and labels_per_prompt is None:
            labels_per_prompt = self.shape_limits.labels
        size = labels_per_prompt or self.labels_per_prompt
        limit = self.config.max_subwords
        groups = label_groups(self.features, spec, size, None if limit is None else int(limit * MAX_PROMPT_SHARE))
        if limit is not None:
            for columns in groups:
                length = prompt_subwords(self.features, [spec.prompts[c] for c in columns])
                if length >= limit:
                    raise ValueError(f"a prompt of {len(columns)} labels takes {length} subwords; the encoder accepts "
                                     f"{limit}: use a smaller labels_per_prompt or shorter labels")
        return groups

    def score_rows(self, rows: Sequence[Row], spec: LabelSpec, batch_size: int = 32,
                   groups: Optional[Sequence[Sequence[int]]] = None, run_despite_errors: bool = True,
                   progress: Any = None) -> None:
        """Encode, batch, run and decode validated rows: fills each `Row.scores` (or `Row.error`)."""
        if self.shape_limits is not None:
            batch_size = min(batch_size, self.shape_limits.batch)
        score_rows(self.engine, self.features, rows, spec, groups or self.label_groups(spec), batch_size,
                   self.pair_budget, self.size_problem, run_despite_errors, progress)
        if progress is not None:
            progress.update(sum(1 for row in rows if row.error is not None or not row.runnable))

    def size_problem(self, item: TextItem, encoded: EncodedText) -> Optional[str]:
        """Why this encoded text is too large for the model, or None."""
        config = self.config
        if len(encoded.word_index) > config.max_words:
            return (f"text has {len(encoded.word_index)} words; this model accepts at most {config.max_words} "
                    f"(glirel would truncate it silently): split the text into windows")
        if config.max_subwords is not None and encoded.input_ids.shape[0] > config.max_subwords:
            return (f"text and label prompt take {encoded.input_ids.shape[0]} subwords; the encoder accepts "
                    f"{config.max_subwords}: split the text into windows or use fewer labels per prompt")
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

    # ----------------------------------------------------------------- documents

    def predict_document(
        self, text: str | Sequence[str], labels: Any, ner: Sequence[Sequence[Any]], threshold: Threshold = None,
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
