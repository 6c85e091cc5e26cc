"""GLiREL in PyTorch, shaped for export: one forward pass from graph inputs to logits.

`GLiRELForExport` takes exactly the tensors listed in
`glirel_runtime.artifact.GRAPH_INPUTS`; everything that depends on Python
lists (prompt lengths, label positions, entity pairs) is computed outside the
graph by the runtime and fed in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from glirel_runtime.artifact import GRAPH_OUTPUTS

from .layers import FeedForward, LengthAwareBiLSTM, PairBuilder, RefineLayer, Scorer, gather_rows

SUPPORTED = {
    "subtoken_pooling": {"first"},
    "rel_mode": {"marker"},
    "span_marker_mode": {"markerv1", "markerv2"},
    "label_embed_strategy": {"ent_token", "label", "both"},
    "scorer": {"dot", "dot_thresh", "dot_norm", "concat_proj"},
}


class UnsupportedCheckpointError(ValueError):
    """The checkpoint uses an option this exporter cannot reproduce faithfully."""


@dataclass
class ModelOptions:
    """The subset of `glirel_config.json` that shapes the network."""

    hidden_size: int
    span_marker_mode: str = "markerv1"
    label_embed_strategy: str = "ent_token"
    scorer: str = "dot"
    refine_prompt: bool = False
    refine_relation: bool = False
    coref_classifier: bool = False
    ffn_mul: int = 4
    max_entity_pair_distance: Optional[int] = None
    """Pair window; without one (None) every ordered pair is scored and the graph scores them densely."""
    dropout: float = 0.0
    """Dropout of the head's FFNs (training only; eval mode ignores it). Not read from configs."""

    @classmethod
    def from_glirel_config(cls, config: dict[str, Any]) -> "ModelOptions":
        """Validate a glirel config dict and keep what the network needs.

        Example:
            >>> ModelOptions.from_glirel_config({"hidden_size": 768, "subtoken_pooling": "first"}).scorer
            'dot'
        """
        for key, allowed in SUPPORTED.items():
            default = {"subtoken_pooling": None, "rel_mode": "marker", "span_marker_mode": "markerv1",
                       "label_embed_strategy": "ent_token", "scorer": "dot"}[key]
            value = config.get(key, default)
            if value not in allowed:
                raise UnsupportedCheckpointError(
                    f"glirel_config.json has {key}={value!r}; glirel-export supports {sorted(allowed)}"
                )
        if "hidden_size" not in config:
            raise UnsupportedCheckpointError("glirel_config.json has no hidden_size")
        return cls(
            hidden_size=int(config["hidden_size"]),
            span_marker_mode=config.get("span_marker_mode", "markerv1"),
            label_embed_strategy=config.get("label_embed_strategy", "ent_token"),
            scorer=config.get("scorer", "dot"),
            refine_prompt=bool(config.get("refine_prompt", False)),
            refine_relation=bool(config.get("refine_relation", False)),
            coref_classifier=bool(config.get("coref_classifier", False)),
            ffn_mul=int(config.get("ffn_mul", 4)),
            max_entity_pair_distance=config.get("max_entity_pair_distance"),
        )


class EncoderHolder(nn.Module):
    """Keeps the encoder at `token_rep_layer.bert_layer.model`, where glirel stores it."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.model = encoder


class TokenRepresentation(nn.Module):
    """Encoder + optional projection to `hidden_size` (`token_rep_layer.*`)."""

    def __init__(self, encoder: nn.Module, encoder_hidden_size: int, hidden_size: int):
        super().__init__()
        self.bert_layer = EncoderHolder(encoder)
        if encoder_hidden_size != hidden_size:
            self.projection = nn.Linear(encoder_hidden_size, hidden_size)

    def project(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.projection(vectors) if hasattr(self, "projection") else vectors


class GLiRELForExport(nn.Module):
    """GLiREL's inference path as one traceable module.

    Example:
        >>> model = GLiRELForExport(encoder, encoder.config.hidden_size, ModelOptions(hidden_size=768))  # doctest: +SKIP
        >>> logits = model(**graph_inputs)[0]  # [batch, pairs, labels]  # doctest: +SKIP
    """

    def __init__(self, encoder: nn.Module, encoder_hidden_size: int, options: ModelOptions):
        super().__init__()
        self.options = options
        d = options.hidden_size
        if d % 2:
            raise UnsupportedCheckpointError(f"hidden_size={d} must be even (the BiLSTM splits it in two)")
        self.token_rep_layer = TokenRepresentation(encoder, encoder_hidden_size, d)
        self.rnn = LengthAwareBiLSTM(d, d // 2)
        self.span_rep_layer = nn.Module()
        self.span_rep_layer.rel_rep_layer = PairBuilder(d, options.span_marker_mode)
        self.prompt_rep_layer = FeedForward(d, d * 4, d)
        if options.refine_relation or options.refine_prompt:
            if d // 64 < 1 or d % (d // 64):
                raise UnsupportedCheckpointError(f"refine layers need hidden_size divisible into {d // 64} heads, got {d}")
        if options.refine_relation:
            self.refine_relation = RefineLayer(d, d // 64, num_layers=1, ffn_mul=options.ffn_mul)
        if options.refine_prompt:
            self.refine_prompt = RefineLayer(d, d // 64, num_layers=2, ffn_mul=options.ffn_mul)
        if options.coref_classifier:
            self.coref_classifier = FeedForward(d, d, 1)
        self.scorer = Scorer(options.scorer, d)
        if options.dropout:
            # the FFNs' dropout slots (glirel's config.dropout); the encoder keeps its own config
            for name, module in self.named_modules():
                if isinstance(module, nn.Dropout) and not name.startswith("token_rep_layer"):
                    module.p = float(options.dropout)

    @property
    def folds_pair_projection(self) -> bool:
        """Pair vectors are only ever dotted with labels, so their last projection folds into the labels
        (see `Scorer.forward_folded`): the pair head then costs O(P × 4D × L) instead of O(P × 4D × D)."""
        return (self.scorer.scores_linearly and not hasattr(self, "refine_relation")
                and not hasattr(self, "refine_prompt") and not hasattr(self, "coref_classifier"))

    @property
    def output_names(self) -> list[str]:
        names = list(GRAPH_OUTPUTS)  # the contract's output table: logits, then coref_logits
        return names if self.options.coref_classifier else names[:1]

    def forward(
        self,
        input_ids: torch.Tensor,  # [B, S]
        attention_mask: torch.Tensor,  # [B, S]
        word_index: torch.Tensor,  # [B, W]
        text_lengths: torch.Tensor,  # [B]
        label_index: torch.Tensor,  # [B, L, 2]
        span_index: torch.Tensor,  # [B, E, 2]
        pair_index: torch.Tensor,  # [B, P, 2]
    ) -> tuple[torch.Tensor, ...]:
        encoder = self.token_rep_layer.bert_layer.model
        subwords = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, S, He]

        # first-subtoken pooling; a word with no subtoken gets zeros *before* the projection, as upstream
        words = self.token_rep_layer.project(gather_rows(subwords, word_index))  # [B, W, D]
        rel_markers = self.token_rep_layer.project(gather_rows(subwords, label_index[:, :, 0]))  # [B, L, D]
        label_words = self.token_rep_layer.project(gather_rows(subwords, label_index[:, :, 1]))  # [B, L, D]
        strategy = self.options.label_embed_strategy
        if strategy == "ent_token":
            labels = rel_markers
        elif strategy == "label":
            labels = label_words
        else:  # both
            labels = (rel_markers + label_words) / 2

        words = self.rnn(words, text_lengths)  # [B, W, D]
        labels = self.prompt_rep_layer(labels)  # [B, L, D]
        pair_builder = self.span_rep_layer.rel_rep_layer
        if self.folds_pair_projection and self.options.max_entity_pair_distance is None:
            # all ordered pairs are scored: score the dense E × E grid, then pick the requested pairs' rows
            batch, entities = span_index.shape[:2]
            grid = pair_builder.all_pairs_hidden(words, span_index)  # [B, E, E, 4D]
            grid = grid.reshape(batch, entities * entities, grid.size(-1))  # [B, E*E, 4D]
            grid_logits = self.scorer.forward_folded(grid, pair_builder.last_layer, labels)  # [B, E*E, L]
            grid_index = pair_index[:, :, 0] * entities + pair_index[:, :, 1]  # [B, P]
            return (gather_rows(grid_logits, grid_index, index_may_be_missing=False),)  # [B, P, L]
        if self.folds_pair_projection:
            pair_hidden = pair_builder.hidden(words, span_index, pair_index)  # [B, P, 4D]
            return (self.scorer.forward_folded(pair_hidden, pair_builder.last_layer, labels),)  # [B, P, L]
        pairs = pair_builder(words, span_index, pair_index)  # [B, P, D]

        if hasattr(self, "refine_relation"):
            word_is_padding = torch.arange(words.size(1), device=words.device).unsqueeze(0) >= text_lengths.unsqueeze(1)
            pairs = self.refine_relation(pairs, words, word_is_padding)
        if hasattr(self, "refine_prompt"):
            # glirel lets labels attend only to pairs with a gold label (rel_label > 0); at inference
            # there are none, so every pair key is masked and only the zero-attention slot remains.
            no_pair_visible = torch.ones_like(pair_index[:, :, 0], dtype=torch.bool)  # [B, P]
            labels = self.refine_prompt(labels, pairs, no_pair_visible)

        logits = self.scorer(pairs, labels)  # [B, P, L]
        if hasattr(self, "coref_classifier"):
            return logits, self.coref_classifier(pairs).squeeze(-1)  # [B, P]
        return (logits,)
