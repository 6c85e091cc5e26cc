"""Export-friendly PyTorch layers of GLiREL.

Parameter names mirror `glirel` 1.x so its state dicts load strictly; the
forward passes are rewritten so that one traced graph is correct for every
batch size, sequence length, label count, entity count and pair count.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


class FeedForward(nn.Sequential):
    """Linear → activation → (dropout slot) → Linear.

    Stored at indices 0 and 3 like every two-layer MLP in glirel
    (`create_projection_layer`, `MLP([a, b, c])`, the prompt FFN, the coref head).
    Dropout (index 2, no parameters) only acts in training mode.
    """

    def __init__(self, in_dim: int, mid_dim: int, out_dim: int, activation: type[nn.Module] = nn.ReLU, dropout: float = 0.0):
        super().__init__(nn.Linear(in_dim, mid_dim), activation(), nn.Dropout(dropout), nn.Linear(mid_dim, out_dim))


def gather_rows(sequence: torch.Tensor, index: torch.Tensor, index_may_be_missing: bool = True) -> torch.Tensor:
    """Pick rows of `sequence` [B, L, D] at `index` [B, K] → [B, K, D]; index -1 gives a zero row.

    One flat row lookup (ONNX Gather) rather than an element-wise gather over an expanded index.
    `index_may_be_missing=False` (the index never holds -1) skips the [B, K, D] masking multiply.
    """
    batch, length, dim = sequence.shape
    offsets = torch.arange(batch, device=index.device).unsqueeze(1) * length  # [B, 1]
    flat_index = ((index.clamp(min=0) if index_may_be_missing else index) + offsets).reshape(-1)  # [B*K]
    rows = sequence.reshape(-1, dim)[flat_index].reshape(batch, -1, dim)  # [B, K, D]
    if not index_may_be_missing:
        return rows
    return rows * (index >= 0).unsqueeze(-1).to(sequence.dtype)  # [B, K, D]


class LengthAwareBiLSTM(nn.Module):
    """glirel's packed BiLSTM, computed on padded batches.

    `lstm` holds the bidirectional weights (`rnn.lstm.*`). The forward direction
    runs on the padded batch as is; the reverse direction runs on each sequence
    reversed *within its own length*, which is what `pack_padded_sequence` does,
    so padding never leaks into real positions.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=1, bidirectional=True, batch_first=True)

    def _direction(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        weights = [getattr(self.lstm, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        batch = x.size(0)
        zeros = x.new_zeros(1, batch, self.lstm.hidden_size)
        output, _, _ = torch.lstm(x, (zeros, zeros), weights, True, 1, 0.0, False, False, True)
        return output

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # x: [B, W, D]; lengths: [B] → [B, W, 2H] with zeros at padded positions
        steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # [1, W]
        lengths = lengths.unsqueeze(1)  # [B, 1]
        inside = steps < lengths  # [B, W]
        reverse_index = torch.where(inside, lengths - 1 - steps, steps)  # an involution per row
        gather_index = reverse_index.unsqueeze(-1)
        forward_out = self._direction(x, "")
        x_reversed = torch.gather(x, 1, gather_index.expand(-1, -1, x.size(-1)))
        backward_out = self._direction(x_reversed, "_reverse")
        backward_out = torch.gather(backward_out, 1, gather_index.expand(-1, -1, backward_out.size(-1)))
        return torch.cat([forward_out, backward_out], dim=-1) * inside.unsqueeze(-1).to(x.dtype)


class ZeroAttnCrossAttention(nn.Module):
    """`nn.MultiheadAttention(batch_first=True, add_zero_attn=True)` written out.

    Keys always include one extra all-zero key/value, so a query whose real keys
    are all masked attends to zero and returns `out_proj.bias` (as torch does).
    Parameters: `mha.in_proj_weight`, `mha.in_proj_bias`, `mha.out_proj.*`.
    """

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.mha = nn.Module()
        self.mha.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.mha.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.mha.out_proj = nn.Linear(d_model, d_model)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, key_is_padding: torch.Tensor) -> torch.Tensor:
        # query: [B, Q, D]; keys: [B, K, D]; key_is_padding: [B, K] bool → [B, Q, D]
        batch, d_model = query.size(0), query.size(-1)
        head_dim = d_model // self.num_heads
        w_q, w_k, w_v = self.mha.in_proj_weight.chunk(3, dim=0)
        b_q, b_k, b_v = self.mha.in_proj_bias.chunk(3, dim=0)

        def heads(t: torch.Tensor) -> torch.Tensor:  # [B, T, D] → [B, H, T, hd]
            return t.reshape(batch, -1, self.num_heads, head_dim).transpose(1, 2)

        q = heads(F.linear(query, w_q, b_q)) * (1.0 / math.sqrt(head_dim))
        k = heads(F.linear(keys, w_k, b_k))
        v = heads(F.linear(keys, w_v, b_v))
        scores = torch.matmul(q, k.transpose(-1, -2))  # [B, H, Q, K]
        scores = scores.masked_fill(key_is_padding[:, None, None, :], float("-inf"))
        zero_key_score = scores.new_zeros(scores.shape[:-1]).unsqueeze(-1)  # [B, H, Q, 1]
        weights = torch.softmax(torch.cat([scores, zero_key_score], dim=-1), dim=-1)
        context = torch.matmul(weights[..., :-1], v)  # the zero value adds nothing
        context = context.transpose(1, 2).reshape(batch, -1, d_model)
        return self.mha.out_proj(context)


class ReadBlock(nn.Module):
    """glirel's read-only `ReadProcess`: cross-attention then a residual GELU FFN."""

    def __init__(self, d_model: int, num_heads: int, ffn_mul: int):
        super().__init__()
        self.read = ZeroAttnCrossAttention(d_model, num_heads)
        self.norm_read = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_model * ffn_mul, d_model, activation=nn.GELU)
        self.norm_ffn = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, key_is_padding: torch.Tensor) -> torch.Tensor:
        x = x + self.read(self.norm_read(x), keys, key_is_padding)
        return x + self.norm_ffn(self.ffn(x))


class RefineLayer(nn.Module):
    """Stack of `ReadBlock`s and an output projection (`refine_relation`, `refine_prompt`)."""

    def __init__(self, d_model: int, num_heads: int, num_layers: int, ffn_mul: int):
        super().__init__()
        self.blocks = nn.ModuleList([ReadBlock(d_model, num_heads, ffn_mul) for _ in range(num_layers)])
        self.output = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, key_is_padding: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, keys, key_is_padding)
        return self.output(x)


class SpanMarkerV1(nn.Module):
    """Entity = FFN(relu([start_proj(h_start); end_proj(h_end)]))."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.project_start = FeedForward(hidden_size, hidden_size * 4, hidden_size)
        self.project_end = FeedForward(hidden_size, hidden_size * 4, hidden_size)
        self.out_project = FeedForward(hidden_size * 2, hidden_size * 4, hidden_size)

    def forward(self, words: torch.Tensor, span_index: torch.Tensor) -> torch.Tensor:
        # words: [B, W, D]; span_index: [B, E, 2] → [B, E, D]; the FFNs run on boundary words only
        start = self.project_start(gather_rows(words, span_index[:, :, 0]))
        end = self.project_end(gather_rows(words, span_index[:, :, 1]))
        return self.out_project(torch.cat([start, end], dim=-1).relu())


class SpanMarkerV2(nn.Module):
    """Entity = FFN(mean of the span's word vectors)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.projection = FeedForward(hidden_size, hidden_size * 4, hidden_size)

    def forward(self, words: torch.Tensor, span_index: torch.Tensor) -> torch.Tensor:
        # averaging matrix [B, E, W]: 1/len on the span's words, then [B, E, W] @ [B, W, D]
        positions = torch.arange(words.size(1), device=words.device).view(1, 1, -1)
        start, end = span_index[:, :, :1], span_index[:, :, 1:]
        inside = ((positions >= start) & (positions <= end)).to(words.dtype)
        lengths = (end - start + 1).clamp(min=1).to(words.dtype)
        return self.projection(torch.matmul(inside / lengths, words))


class PairBuilder(nn.Module):
    """Entity representations → one vector per (head, tail) pair; keys `span_rep_layer.rel_rep_layer.*`."""

    def __init__(self, hidden_size: int, span_marker_mode: str):
        super().__init__()
        markers = {"markerv1": SpanMarkerV1, "markerv2": SpanMarkerV2}
        self.span_marker = markers[span_marker_mode](hidden_size)
        self.out_project = FeedForward(hidden_size * 2, hidden_size * 4, hidden_size)

    def _entity_halves(self, words: torch.Tensor, span_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`out_project`'s first Linear on cat[head, tail], split into its head and tail blocks and
        computed once per entity (bias on the head half): [B, E, 4D] each."""
        entities = self.span_marker(words, span_index)  # [B, E, D]
        first = self.out_project[0]
        w_head, w_tail = first.weight.split(entities.size(-1), dim=1)  # [4D, D] each
        return F.linear(entities, w_head, first.bias), F.linear(entities, w_tail)

    def _activate(self, first_layer: torch.Tensor) -> torch.Tensor:
        _, activation, dropout, _ = self.out_project
        return dropout(activation(first_layer))

    def hidden(self, words: torch.Tensor, span_index: torch.Tensor, pair_index: torch.Tensor) -> torch.Tensor:
        """The pair FFN's hidden layer, [B, P, 4D]: everything of a pair vector but `out_project`'s last Linear."""
        head, tail = self._entity_halves(words, span_index)  # [B, E, 4D] each
        # gathered per pair; pair_index never holds -1 (padded pairs are (0, 0), whose logits the runtime ignores)
        head = gather_rows(head, pair_index[:, :, 0], index_may_be_missing=False)  # [B, P, 4D]
        tail = gather_rows(tail, pair_index[:, :, 1], index_may_be_missing=False)  # [B, P, 4D]
        return self._activate(head + tail)

    def all_pairs_hidden(self, words: torch.Tensor, span_index: torch.Tensor) -> torch.Tensor:
        """`hidden` for every ordered (head, tail) entity pair, self-pairs included: [B, E, E, 4D], no gathers.

        Cheaper than `hidden` when nearly all E² − E pairs are scored (no pair window): the
        per-entity halves are broadcast-added instead of gathered twice per pair.
        """
        head, tail = self._entity_halves(words, span_index)  # [B, E, 4D] each
        return self._activate(head.unsqueeze(2) + tail.unsqueeze(1))  # [B, E, 1, 4D] + [B, 1, E, 4D] → [B, E, E, 4D]

    @property
    def last_layer(self) -> nn.Linear:
        return self.out_project[3]

    def forward(self, words: torch.Tensor, span_index: torch.Tensor, pair_index: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.hidden(words, span_index, pair_index))  # [B, P, D]


class Scorer(nn.Module):
    """glirel's `ScorerLayer`: pair reps [B, P, D] × label reps [B, L, D] → logits [B, P, L]."""

    def __init__(self, scoring_type: str, hidden_size: int):
        super().__init__()
        self.scoring_type = scoring_type
        if scoring_type == "concat_proj":
            self.proj = FeedForward(hidden_size * 4, hidden_size * 4, 1)
        elif scoring_type == "dot_thresh":
            self.proj_thresh = FeedForward(hidden_size, hidden_size * 4, 2)
            self.proj_type = FeedForward(hidden_size, hidden_size * 4, hidden_size)
        elif scoring_type == "dot_norm":
            self.dy_bias_type = FeedForward(hidden_size, hidden_size * 4, 1)
            self.dy_bias_rel = FeedForward(hidden_size, hidden_size * 4, 1)
            self.bias = nn.Parameter(torch.tensor(-10.0))
        elif scoring_type != "dot":
            raise ValueError(f"unknown scorer {scoring_type!r}")

    @property
    def scores_linearly(self) -> bool:
        """Logits are linear in the pair vector (dot, dot_thresh), so a pair projection can fold into the labels."""
        return self.scoring_type in ("dot", "dot_thresh")

    def forward_folded(self, pair_hidden: torch.Tensor, pair_projection: nn.Linear, labels: torch.Tensor) -> torch.Tensor:
        """`forward(pair_projection(pair_hidden), labels)` for the linear scorers, without the pair vectors.

        pair·t = (W h + b)·t = h·(Wᵀ t) + b·t: the projection [D, 4D] moves onto the L label
        vectors instead of the P pairs (P × 4D × D multiply-adds become L × 4D × D + P × 4D × L).
        """
        # pair_hidden: [B, P, 4D]; labels: [B, L, D] → [B, P, L]
        targets = labels if self.scoring_type == "dot" else self.proj_type(labels)  # [B, L, D]
        folded = torch.matmul(targets, pair_projection.weight)  # [B, L, 4D]
        offset = torch.matmul(targets, pair_projection.bias).unsqueeze(1)  # [B, 1, L]
        scores = torch.matmul(pair_hidden, folded.transpose(1, 2)) + offset  # [B, P, L]
        if self.scoring_type == "dot":
            return scores
        alpha, beta = self._thresh_scale(labels)
        return (scores + beta) * alpha

    def _thresh_scale(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """dot_thresh's per-label scale and shift, [B, 1, L] each."""
        scaler = self.proj_thresh(labels)  # [B, L, 2]
        return F.softplus(scaler[..., 0]).unsqueeze(1), scaler[..., 1].unsqueeze(1)

    def forward(self, pairs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.scoring_type == "dot":
            return torch.matmul(pairs, labels.transpose(1, 2))
        if self.scoring_type == "dot_thresh":
            alpha, beta = self._thresh_scale(labels)
            return (torch.matmul(pairs, self.proj_type(labels).transpose(1, 2)) + beta) * alpha
        if self.scoring_type == "dot_norm":
            score = torch.matmul(pairs, labels.transpose(1, 2))
            return score + self.bias + self.dy_bias_type(labels).transpose(1, 2) + self.dy_bias_rel(pairs)
        # concat_proj: the first layer on [p*l, p-l, p, l] is split into blocks, so the
        # pair and label blocks are computed once instead of repeated over [B, P, L, D]
        first, hidden_act, last = self.proj[0], self.proj[1], self.proj[3]
        d = pairs.size(-1)
        w_prod, w_diff, w_pair, w_label = first.weight.split(d, dim=1)
        product = pairs.unsqueeze(2) * labels.unsqueeze(1)  # [B, P, L, D]
        hidden = F.linear(product, w_prod, first.bias)
        hidden = hidden + F.linear(pairs, w_diff + w_pair).unsqueeze(2)
        hidden = hidden + F.linear(labels, w_label - w_diff).unsqueeze(1)
        return last(hidden_act(hidden)).squeeze(-1)
