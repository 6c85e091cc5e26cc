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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

FORMAT_NAME = "glirel-onnx-artifact"
FORMAT_VERSION = 1
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
    rel_token: str = "[REL]"
    sep_token: str = "[SEP]"
    entity_start_token: str = "[E]"
    entity_end_token: str = "[/E]"
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
    source: dict[str, Any] = field(default_factory=dict)
    """Provenance: checkpoint, encoder name, glirel config, exporter versions and options."""
    verification: dict[str, Any] = field(default_factory=dict)
    """Figures from the export-time comparison against PyTorch."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArtifactConfig":
        if data.get("format") != FORMAT_NAME:
            raise ValueError(f"not a glirel-onnx artifact config (format={data.get('format')!r})")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"artifact format_version {version!r} is not supported by this runtime "
                f"(it reads version {FORMAT_VERSION}); re-export the checkpoint with a matching glirel-export"
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"artifact config has unknown fields {unknown}")
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "ArtifactConfig":
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {directory} is not a glirel-onnx artifact directory")
        return cls.from_dict(json.loads(path.read_text()))
