"""The artifact contract between `glirel_export` (writer) and `glirel_runtime` (reader).

This module is the one place the contract is written down. An artifact is a
directory holding three files:

``model.onnx``
    The graph: encoder + word pooling + BiLSTM + entity/pair builder + label FFN
    + scorer. Its inputs are prepared by the runtime in numpy
    (see `GRAPH_INPUTS`; every axis is dynamic):

    ==================  ============  =================  ===========================================
    name                dtype         shape              meaning
    ==================  ============  =================  ===========================================
    input_ids           int64         [batch, subwords]  subword ids of ``[REL] l1 [REL] l2 … [SEP] w1 w2 …``
    attention_mask      int64         [batch, subwords]  1 for real subwords, 0 for padding
    word_index          int64         [batch, words]     subword position of each text word's first
                                                         subtoken; -1 when the word has none (it gets a
                                                         zero vector, as upstream) or is padding
    text_lengths        int64         [batch]            number of text words (BiLSTM lengths)
    label_index         int64         [batch, labels, 2] first-subtoken positions of each label's
                                                         ``[REL]`` marker and of the label words; -1 if none
    span_index          int64         [batch, entities, 2]  word start and inclusive end of each entity
    pair_index          int64         [batch, pairs, 2]  (head, tail) entity indices of each scored pair;
                                                         never -1 (padding pairs are (0, 0))
    ==================  ============  =================  ===========================================

    Outputs: ``logits`` float32 ``[batch, pairs, labels]`` (pre-sigmoid) and, when
    the checkpoint has a coreference head, ``coref_logits`` float32 ``[batch, pairs]``.
    Padded rows/columns hold garbage and are ignored by the runtime.

``tokenizer.json``
    A `tokenizers` file including the added tokens (``[REL]``, ``[SEP]``, ``[E]``,
    ``[/E]``, ``[FLERT]``) with the ids the checkpoint's embedding matrix was trained with.

``glirel_artifact.json``
    `ArtifactConfig` as JSON: everything else the runtime needs (special tokens,
    label strategy, scorer, pair window, limits) plus the export's provenance and
    verification figures. ``format_version`` changes whenever the meaning of any
    field or graph input changes; the runtime refuses versions it does not know.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

FORMAT_NAME = "glirel-onnx-artifact"
FORMAT_VERSION = 2
"""Version 2 states the prompt layout (`PROMPT_LAYOUT`) in the JSON; version 1 artifacts used the same
layout without saying so and are still read."""
READABLE_VERSIONS = (1, 2)
PROMPT_LAYOUT = "glirel-v1"
"""The word sequence the encoder reads: ``[REL] label_1 … [REL] label_m [SEP] word_1 … word_n`` (glirel 1.x),
each label one pre-split word, every element represented by its first subtoken; see `prompt_words`."""
SPECIAL_TOKENS = {"rel_token": "[REL]", "sep_token": "[SEP]", "entity_start_token": "[E]",
                  "entity_end_token": "[/E]", "flert_token": "[FLERT]"}
"""The tokens glirel adds to the encoder's tokenizer (the exporter adds them; the runtime requires the first four)."""
CONFIG_FILE = "glirel_artifact.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"

GRAPH_INPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "input_ids": ("int64", ("batch", "subwords")),
    "attention_mask": ("int64", ("batch", "subwords")),
    "word_index": ("int64", ("batch", "words")),
    "text_lengths": ("int64", ("batch",)),
    "label_index": ("int64", ("batch", "labels", "2")),
    "span_index": ("int64", ("batch", "entities", "2")),
    "pair_index": ("int64", ("batch", "pairs", "2")),
}
GRAPH_OUTPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "logits": ("float32", ("batch", "pairs", "labels")),
    "coref_logits": ("float32", ("batch", "pairs")),
}
BLOCKED_PAIR_HEAD_NODE = "pair_head_blocked"
"""Name of the graph's Loop node that scores all entity pairs one head entity at a time (see
`glirel_export.pair_head`); engines that prefer one dense pass (OpenVINO) replace it by name."""
LABEL_EMBED_STRATEGIES = ("ent_token", "label", "both")
SCORERS = ("dot", "dot_thresh", "dot_norm", "concat_proj")
PRECISIONS = ("fp32", "fp16", "int8")


class ArtifactError(ValueError):
    """An artifact directory, its JSON or its graph does not follow the contract; the message names the file and field."""


class ModelOutputError(RuntimeError):
    """The graph returned values the contract forbids (NaN or infinity in the scored region)."""


@dataclass
class ArtifactConfig:
    """Everything the runtime needs besides the graph and the tokenizer.

    Example:
        >>> config = ArtifactConfig(max_words=384, max_subwords=512)
        >>> ArtifactConfig.from_dict(config.to_dict()) == config
        True
    """

    max_words: int
    """Longest text (in words) the checkpoint accepts (`max_len` in glirel's config)."""
    max_subwords: Optional[int]
    """Longest subword sequence the encoder accepts; None for relative-position encoders."""
    pad_token_id: int = 0
    rel_token: str = SPECIAL_TOKENS["rel_token"]
    sep_token: str = SPECIAL_TOKENS["sep_token"]
    entity_start_token: str = SPECIAL_TOKENS["entity_start_token"]
    entity_end_token: str = SPECIAL_TOKENS["entity_end_token"]
    add_entity_markers: bool = False
    """Insert ``[E]``/``[/E]`` around each entity (spans then cover the markers)."""
    max_entity_pair_distance: Optional[int] = None
    """glirel's pair window: pairs with head index < tail index are always kept;
    the others only when their start words are at most this far apart."""
    label_embed_strategy: str = "ent_token"
    scorer: str = "dot"
    has_coref_output: bool = False
    precision: str = "fp32"
    """fp32, fp16 or int8: what the graph's weights are stored as."""
    default_threshold: float = 0.5
    coreference_label: Optional[str] = None
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    prompt_layout: str = PROMPT_LAYOUT
    """How texts and labels become the encoder's words (see `PROMPT_LAYOUT`, `prompt_words`)."""
    source: dict[str, Any] = field(default_factory=dict)
    """Provenance: checkpoint, encoder name, glirel config, exporter versions and options."""
    verification: dict[str, Any] = field(default_factory=dict)
    """Figures from the export-time comparison against PyTorch."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field's type and range; raises `ArtifactError` naming the field.

        Example:
            >>> ArtifactConfig(max_words=384, max_subwords=512, default_threshold=2)
            Traceback (most recent call last):
            ...
            glirel_runtime.artifact.ArtifactError: default_threshold must be a number in [0, 1], got 2
        """
        def integer(name: str, minimum: int, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
                kind = f"an integer >= {minimum}" + (" or null" if optional else "")
                raise ArtifactError(f"{name} must be {kind}, got {value!r}")

        def text(name: str, optional: bool = False, choices: Sequence[str] = ()) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if not isinstance(value, str) or not value.strip():
                raise ArtifactError(f"{name} must be a non-empty string{' or null' if optional else ''}, got {value!r}")
            if choices and value not in choices:
                raise ArtifactError(f"{name} must be one of {list(choices)}, got {value!r}")

        integer("max_words", 1)
        integer("max_subwords", 2, optional=True)
        integer("pad_token_id", 0)
        for name in ("rel_token", "sep_token", "entity_start_token", "entity_end_token"):
            text(name)
        tokens = [self.rel_token, self.sep_token, self.entity_start_token, self.entity_end_token]
        if len(set(tokens)) != len(tokens):
            raise ArtifactError(f"rel_token, sep_token, entity_start_token and entity_end_token must differ, got {tokens}")
        for name in ("add_entity_markers", "has_coref_output"):
            if not isinstance(getattr(self, name), bool):
                raise ArtifactError(f"{name} must be true or false, got {getattr(self, name)!r}")
        integer("max_entity_pair_distance", 0, optional=True)
        text("label_embed_strategy", choices=LABEL_EMBED_STRATEGIES)
        text("scorer", choices=SCORERS)
        text("precision", choices=PRECISIONS)
        threshold = self.default_threshold
        if (isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or math.isnan(threshold)
                or not 0.0 <= threshold <= 1.0):
            raise ArtifactError(f"default_threshold must be a number in [0, 1], got {threshold!r}")
        text("coreference_label", optional=True)
        text("prompt_layout", choices=(PROMPT_LAYOUT,))
        for name in ("source", "verification"):
            if not isinstance(getattr(self, name), dict):
                raise ArtifactError(f"{name} must be a JSON object, got {type(getattr(self, name)).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ArtifactConfig":
        """Build and check a config from parsed JSON; raises `ArtifactError` naming the field.

        Example:
            >>> ArtifactConfig.from_dict(["not", "an", "object"])
            Traceback (most recent call last):
            ...
            glirel_runtime.artifact.ArtifactError: the artifact config must be a JSON object, got list
        """
        if not isinstance(data, Mapping):
            raise ArtifactError(f"the artifact config must be a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT_NAME:
            raise ArtifactError(f"not a glirel-onnx artifact config (format={data.get('format')!r})")
        version = data.get("format_version")
        if version not in READABLE_VERSIONS:
            raise ArtifactError(
                f"artifact format_version {version!r} is not supported by this runtime "
                f"(it reads versions {list(READABLE_VERSIONS)}); re-export the checkpoint with a matching glirel-export"
            )
        if version == 1:  # same layout, unstated: read as version 2
            data = {**data, "format_version": FORMAT_VERSION, "prompt_layout": PROMPT_LAYOUT}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArtifactError(f"artifact config has unknown fields {unknown}")
        missing = sorted(f.name for f in fields(cls) if f.name not in data and f.name in ("max_words", "max_subwords"))
        if missing:
            raise ArtifactError(f"artifact config lacks the required fields {missing}")
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "ArtifactConfig":
        """Read and check `glirel_artifact.json`; errors name the file and the field."""
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {directory} is not a glirel-onnx artifact directory")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ArtifactError(f"{path} is not valid JSON: {error}") from None
        try:
            return cls.from_dict(data)
        except ArtifactError as error:
            raise ArtifactError(f"{path}: {error}") from None


def prompt_words(labels: Sequence[str], config: "ArtifactConfig") -> list[str]:
    """The prompt of `PROMPT_LAYOUT`: ``[REL] label`` for each label, then ``[SEP]`` (the text's words follow).

    Example:
        >>> prompt_words(["spouse", "founded by"], ArtifactConfig(max_words=8, max_subwords=None))
        ['[REL]', 'spouse', '[REL]', 'founded by', '[SEP]']
    """
    words: list[str] = []
    for label in labels:
        words += [config.rel_token, label]
    return words + [config.sep_token]


def dynamic_axes() -> dict[str, dict[int, str]]:
    """Every graph input's and output's dynamic axes by position (the fixed ``2`` axes left out), for the exporter.

    Example:
        >>> dynamic_axes()["logits"]
        {0: 'batch', 1: 'pairs', 2: 'labels'}
    """
    tables = {**GRAPH_INPUTS, **GRAPH_OUTPUTS}
    return {name: {i: axis for i, axis in enumerate(axes) if not axis.isdigit()} for name, (_, axes) in tables.items()}


# --------------------------------------------------------------------- checks at load time

def check_artifact_files(artifact_dir: str | Path) -> None:
    """Refuse a directory that lacks one of the artifact's three files, naming the missing path.

    Example:
        >>> check_artifact_files("no-such-artifact")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no-such-artifact is not a glirel-onnx artifact directory (missing: no-such-artifact/glirel_artifact.json, no-such-artifact/model.onnx, no-such-artifact/tokenizer.json)
    """
    directory = Path(artifact_dir)
    missing = [str(directory / name) for name in (CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a glirel-onnx artifact directory (missing: {', '.join(missing)})")


def load_tokenizer(path: str | Path) -> Any:
    """Read a `tokenizers` file; a missing or unreadable file raises an error naming its path.

    Example:
        >>> load_tokenizer("missing/tokenizer.json")
        Traceback (most recent call last):
        ...
        FileNotFoundError: the artifact's tokenizer missing/tokenizer.json does not exist
    """
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the artifact's tokenizer {path} does not exist")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for unreadable files
        raise ArtifactError(f"{path} is not a readable `tokenizers` file: {error}") from None


def check_tokenizer(config: ArtifactConfig, tokenizer: Any, path: str | Path = TOKENIZER_FILE) -> None:
    """The special tokens the runtime inserts must each be one id of `tokenizer`, and the pad id a real id."""
    needed = [config.rel_token, config.sep_token]
    if config.add_entity_markers:
        needed += [config.entity_start_token, config.entity_end_token]
    for token in needed:
        token_id = tokenizer.token_to_id(token)
        encoding = tokenizer.encode([token], is_pretokenized=True, add_special_tokens=False)
        ids = [i for i, mask in zip(encoding.ids, encoding.attention_mask) if mask]
        if token_id is None or ids != [token_id]:
            raise ArtifactError(
                f"{path}: the special token {token!r} (from {CONFIG_FILE}) is not a single token of this tokenizer "
                f"(it encodes to {ids}): the tokenizer does not belong to this model")
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if config.pad_token_id >= size:
        raise ArtifactError(f"{CONFIG_FILE}: pad_token_id {config.pad_token_id} is outside the tokenizer's {size} ids ({path})")


def _value_info_rank(value: Any) -> Optional[int]:
    shape = getattr(value, "shape", None)
    return len(shape) if isinstance(shape, (list, tuple)) else None


def check_graph_io(session: Any, config: ArtifactConfig, model_path: str | Path = MODEL_FILE) -> None:
    """The graph's inputs and outputs must have the contract's names, element types and ranks."""
    numpy_types = {"int64": "tensor(int64)", "float32": "tensor(float)"}
    inputs = {value.name: value for value in session.get_inputs()}
    if sorted(inputs) != sorted(GRAPH_INPUTS):
        raise ArtifactError(f"{model_path} has inputs {sorted(inputs)}, the contract says {list(GRAPH_INPUTS)}")
    outputs = {value.name: value for value in session.get_outputs()}
    expected_outputs = ["logits"] + (["coref_logits"] if config.has_coref_output else [])
    unknown = sorted(set(outputs) - set(GRAPH_OUTPUTS))
    if "logits" not in outputs or unknown:
        raise ArtifactError(f"{model_path} has outputs {sorted(outputs)}, the contract says {expected_outputs}")
    if config.has_coref_output != ("coref_logits" in outputs):
        raise ArtifactError(f"{model_path} has outputs {sorted(outputs)} but {CONFIG_FILE} says "
                            f"has_coref_output={config.has_coref_output}")
    for kind, values, contract in (("input", inputs, GRAPH_INPUTS), ("output", outputs, GRAPH_OUTPUTS)):
        for name, value in values.items():
            dtype, axes = contract[name]
            if value.type != numpy_types[dtype]:
                raise ArtifactError(f"{model_path}: {kind} {name!r} is {value.type}, the contract says {dtype}")
            rank = _value_info_rank(value)
            if rank is not None and rank != len(axes):
                raise ArtifactError(f"{model_path}: {kind} {name!r} has rank {rank}, the contract says "
                                    f"{len(axes)} ({', '.join(axes)})")


def embedding_rows(model_path: str | Path) -> Optional[int]:
    """Rows of the word-embedding matrix that `input_ids` index, read with `onnx`; None when `onnx`
    is not installed or the graph hides the matrix (then `validate_artifact` probes the session instead)."""
    try:
        import onnx
    except ImportError:
        return None
    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {tensor.name: list(tensor.dims) for tensor in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}

    def matrix_rows(name: str) -> Optional[int]:
        for _ in range(4):  # through Cast / DequantizeLinear / Identity in reduced-precision graphs
            if name in initializers:
                dims = initializers[name]
                return int(dims[0]) if len(dims) == 2 else None
            node = producers.get(name)
            if node is None or node.op_type not in ("Cast", "DequantizeLinear", "Identity") or not node.input:
                return None
            name = node.input[0]
        return None

    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] == "input_ids":
            return matrix_rows(node.input[0])
        if node.op_type == "EmbedLayerNormalization" and len(node.input) > 2 and node.input[0] == "input_ids":
            return matrix_rows(node.input[2])
    return None


def probe_inputs(token_ids: Sequence[int]) -> dict[str, np.ndarray]:
    """A minimal valid batch (1 text, 2 words, 1 label, 2 entities, 2 pairs) whose subwords are `token_ids`.

    Example:
        >>> {name: value.shape for name, value in probe_inputs([0, 5, 0, 5]).items()}["pair_index"]
        (1, 2, 2)
    """
    ids = np.array([list(token_ids)], dtype=np.int64)
    length = ids.shape[1]
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "word_index": np.array([[length - 2, length - 1]], dtype=np.int64),
        "text_lengths": np.array([2], dtype=np.int64),
        "label_index": np.array([[[0, 1]]], dtype=np.int64),
        "span_index": np.array([[[0, 0], [1, 1]]], dtype=np.int64),
        "pair_index": np.array([[[0, 1], [1, 0]]], dtype=np.int64),
    }


def check_embedding_size(config: ArtifactConfig, tokenizer: Any, session: Any, model_path: str | Path = MODEL_FILE) -> None:
    """Every id the tokenizer can produce, and the pad id, must index a row of the graph's embeddings.

    On a CPU session, one probe run holding the tokenizer's largest id and the pad id must succeed
    (onnxruntime's CPU Gather checks its bounds; about 30 ms on the default model). On GPU sessions,
    whose kernels may not check bounds (and where a probe could start a TensorRT engine build), the
    embedding matrix's rows are read from the graph with `onnx`; where `onnx` is not installed (the
    torch-free runtime install) or the graph hides the matrix, this one check is skipped on GPU.
    """
    largest = tokenizer.get_vocab_size(with_added_tokens=True) - 1
    if list(session.get_providers())[:1] != ["CPUExecutionProvider"]:
        rows = embedding_rows(model_path)
        if rows is not None and largest >= rows:
            raise ArtifactError(f"the tokenizer has ids up to {largest} but {model_path} has {rows} embedding rows: "
                                f"the tokenizer does not belong to this graph")
        if rows is not None and config.pad_token_id >= rows:
            raise ArtifactError(f"{CONFIG_FILE}: pad_token_id {config.pad_token_id} is outside the {rows} embedding rows "
                                f"of {model_path}")
        return
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # the failure is reported below, not logged
    try:
        session.run(None, probe_inputs([config.pad_token_id, largest, config.pad_token_id, largest]), options)
    except Exception as error:  # onnxruntime's InvalidArgument / Fail
        raise ArtifactError(f"{model_path} fails on the tokenizer's largest id {largest} or pad_token_id "
                            f"{config.pad_token_id} (the ids must index its embeddings): {error}") from None


def validate_artifact(artifact_dir: str | Path, config: ArtifactConfig, tokenizer: Any, session: Any) -> None:
    """Check a loaded artifact against the contract: tokenizer special tokens, graph inputs/outputs, embedding size.

    `tokenizer` is the artifact's `tokenizers.Tokenizer`, `session` its onnxruntime session.
    Raises `ArtifactError` naming the file and what is wrong.

    Example:
        >>> validate_artifact(path, ArtifactConfig.load(path), load_tokenizer(path / TOKENIZER_FILE), session)  # doctest: +SKIP
    """
    directory = Path(artifact_dir)
    check_tokenizer(config, tokenizer, directory / TOKENIZER_FILE)
    check_graph_io(session, config, directory / MODEL_FILE)
    check_embedding_size(config, tokenizer, session, directory / MODEL_FILE)


def check_outputs(outputs: Mapping[str, np.ndarray], sizes: Sequence[tuple[int, int]]) -> None:
    """Refuse non-finite scores in the part of the outputs that is read (padding may hold anything).

    `sizes[row]` is the (pairs, labels) of batch row `row`. Raises `ModelOutputError`.

    Example:
        >>> check_outputs({"logits": np.zeros((1, 2, 3), np.float32)}, [(2, 3)])
        >>> check_outputs({"logits": np.full((1, 2, 3), np.nan, np.float32)}, [(1, 3)])
        Traceback (most recent call last):
        ...
        glirel_runtime.artifact.ModelOutputError: the model returned 3 non-finite logits for batch row 0 (shape [1, 3]): the graph or its weights are broken
    """
    for name in ("logits", "coref_logits"):
        array = outputs.get(name)
        if array is None:
            continue
        for row, (pairs, labels) in enumerate(sizes):
            region = array[row, :pairs, :labels] if array.ndim == 3 else array[row, :pairs]
            finite = np.isfinite(region)
            if not finite.all():
                raise ModelOutputError(f"the model returned {int(region.size - finite.sum())} non-finite {name} for batch "
                                       f"row {row} (shape {list(region.shape)}): the graph or its weights are broken")
