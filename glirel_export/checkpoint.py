"""Load a GLiREL checkpoint saved by `glirel` 1.x (`glirel_config.json` + weights).

A checkpoint holds the whole state dict, encoder included, but not the
encoder's architecture config or tokenizer: those come from `model_name` in
the config (a local directory, the Hugging Face cache, or the Hub), or from an
explicit `encoder=` path for offline use.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from .modeling import GLiRELForExport, ModelOptions

CONFIG_NAME = "glirel_config.json"
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
REL_TOKEN, SEP_TOKEN, ENTITY_START, ENTITY_END, FLERT_TOKEN = "[REL]", "[SEP]", "[E]", "[/E]", "[FLERT]"
# buffers that older transformers versions saved and newer ones do not expect
IGNORABLE_KEY_SUFFIXES = ("embeddings.position_ids",)
# encoders whose position ids start after the padding index
PADDING_OFFSET_MODEL_TYPES = {"roberta", "xlm-roberta", "camembert", "mpnet"}


class CheckpointError(ValueError):
    """The checkpoint is incomplete, corrupted or inconsistent with its config."""


@dataclass
class LoadedCheckpoint:
    model: GLiRELForExport
    tokenizer: Any  # a transformers fast tokenizer with glirel's added tokens
    glirel_config: dict[str, Any]
    checkpoint: str
    encoder_name: str
    max_subwords: Optional[int]


def _resolve_file(checkpoint: str, filename: str, revision: Optional[str]) -> Optional[Path]:
    local = Path(checkpoint)
    if local.is_dir():
        path = local / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id=checkpoint, filename=filename, revision=revision))
    except EntryNotFoundError:
        return None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read weights safely: safetensors, or a pickle restricted to tensors (`weights_only=True`)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # refuse arbitrary pickles, whatever the reason torch gives
        raise CheckpointError(f"cannot read {path} as a tensor-only checkpoint: {error}") from error
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path} holds a {type(state_dict).__name__}, not a state dict")
    return state_dict


def _check_finite(state_dict: dict[str, torch.Tensor]) -> None:
    for key, tensor in state_dict.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"weight {key!r} holds {bad} NaN/inf values: the checkpoint is corrupted")


def max_subwords_for(encoder_config: Any, tokenizer: Any) -> Optional[int]:
    """Longest subword sequence the encoder can take, or None for relative-position encoders."""
    if getattr(encoder_config, "relative_attention", False) and not getattr(encoder_config, "position_biased_input", True):
        return None
    limit = int(encoder_config.max_position_embeddings)
    if encoder_config.model_type in PADDING_OFFSET_MODEL_TYPES:
        limit -= 2
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < limit:
        limit = model_max
    return limit


def add_glirel_tokens(tokenizer: Any) -> Any:
    """Add the tokens glirel adds, in glirel's order, so ids match the checkpoint's embeddings."""
    if FLERT_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [FLERT_TOKEN]})
    tokenizer.add_tokens([REL_TOKEN, SEP_TOKEN, ENTITY_START, ENTITY_END])
    return tokenizer


def load_checkpoint(
    checkpoint: str | Path,
    encoder: str | Path | None = None,
    revision: Optional[str] = None,
) -> LoadedCheckpoint:
    """Build `GLiRELForExport` from a glirel checkpoint directory or Hub id, strictly.

    Example:
        >>> loaded = load_checkpoint("path/to/checkpoint", encoder="path/to/deberta-v3")  # doctest: +SKIP
        >>> loaded.model.eval()  # doctest: +SKIP
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    checkpoint = str(checkpoint)
    config_path = _resolve_file(checkpoint, CONFIG_NAME, revision)
    if config_path is None:
        raise CheckpointError(f"{checkpoint}: no {CONFIG_NAME} (is this a glirel checkpoint?)")
    try:
        glirel_config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path} is not valid JSON: {error}") from error
    options = ModelOptions.from_glirel_config(glirel_config)

    weights_path = None
    for name in WEIGHT_NAMES:
        weights_path = _resolve_file(checkpoint, name, revision)
        if weights_path is not None:
            break
    if weights_path is None:
        raise CheckpointError(f"{checkpoint}: none of {list(WEIGHT_NAMES)} found")
    state_dict = read_state_dict(weights_path)
    _check_finite(state_dict)

    encoder_name = str(encoder) if encoder is not None else glirel_config.get("model_name")
    if not encoder_name:
        raise CheckpointError(f"{config_path} names no model_name and no encoder was given")
    encoder_config = AutoConfig.from_pretrained(encoder_name)
    tokenizer = add_glirel_tokens(AutoTokenizer.from_pretrained(encoder_name, use_fast=True))
    encoder_model = AutoModel.from_config(encoder_config, attn_implementation="eager")
    embedding_key = next((k for k in state_dict if k.endswith("word_embeddings.weight") and "bert_layer" in k), None)
    if embedding_key is None:
        raise CheckpointError(f"{weights_path}: no encoder word embeddings (token_rep_layer.bert_layer.model.*)")
    if state_dict[embedding_key].shape[0] != len(tokenizer):
        raise CheckpointError(
            f"{embedding_key} has {state_dict[embedding_key].shape[0]} rows but the tokenizer of {encoder_name!r} "
            f"with glirel's added tokens has {len(tokenizer)}: the checkpoint was trained with another tokenizer"
        )
    encoder_model.resize_token_embeddings(len(tokenizer), mean_resizing=False)

    model = GLiRELForExport(encoder_model, encoder_config.hidden_size, options)
    expected = set(model.state_dict())
    state_dict = {k: v for k, v in state_dict.items() if k in expected or not k.endswith(IGNORABLE_KEY_SUFFIXES)}
    missing = sorted(expected - set(state_dict))
    unexpected = sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path} does not match its config: missing keys {missing[:10]}"
            f"{' …' if len(missing) > 10 else ''}, unexpected keys {unexpected[:10]}{' …' if len(unexpected) > 10 else ''}"
        )
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:  # shape mismatches
        raise CheckpointError(f"{weights_path}: {error}") from error
    model.eval()
    return LoadedCheckpoint(
        model=model,
        tokenizer=tokenizer,
        glirel_config=glirel_config,
        checkpoint=checkpoint,
        encoder_name=encoder_name,
        max_subwords=max_subwords_for(encoder_config, tokenizer),
    )
