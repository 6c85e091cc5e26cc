"""Load a GLiREL checkpoint saved by `glirel` 1.x (`glirel_config.json` + weights).

A checkpoint holds the whole state dict, encoder included, but not the
encoder's architecture config or tokenizer: those come from `model_name` in
the config (a local directory, the Hugging Face cache, or the Hub), or from an
explicit `encoder=` path for offline use.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from glirel_runtime.artifact import SPECIAL_TOKENS

from .modeling import GLiRELForExport, ModelOptions

CONFIG_NAME = "glirel_config.json"
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
# glirel's added tokens, as the artifact contract names them
REL_TOKEN, SEP_TOKEN, ENTITY_START, ENTITY_END, FLERT_TOKEN = (
    SPECIAL_TOKENS[k] for k in ("rel_token", "sep_token", "entity_start_token", "entity_end_token", "flert_token"))
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
    encoder_revision: Optional[str] = None
    """The Hub commit the encoder came from (None for a local directory)."""


HUB_TIMEOUT_S = 5.0
"""How long to wait for the Hugging Face Hub before refusing a Hub id (then pass a local path)."""


def looks_like_path(name: str) -> bool:
    """True for strings that can only be a filesystem path, never a Hub repository id.

    Example:
        >>> [looks_like_path(n) for n in ("microsoft/deberta-v3-large", "./ckpt", "/abs/dir", "a/b/c", "gpt2")]
        [False, True, True, True, False]
    """
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _hub_error(name: str, what: str, error: Exception) -> CheckpointError:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(error, (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError)):
        reason = f"the Hugging Face Hub has no accessible repository {name!r} ({type(error).__name__})"
    else:
        reason = f"the Hugging Face Hub is unreachable ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    return CheckpointError(f"{what} {name!r} is not a local directory, not in the Hugging Face cache, and {reason}")


def resolve_encoder(name: str, explicit: bool, revision: Optional[str] = None) -> tuple[bool, Optional[str]]:
    """Decide how transformers may load the encoder `name`; returns (local_files_only, Hub revision).

    A local directory loads as is. A Hub id is looked up on the Hub with a short timeout; when the Hub
    cannot be reached, a cached copy is used offline, and without one the encoder is refused at once
    with a message naming ``--encoder`` (instead of minutes of retries).
    """
    what = "--encoder" if explicit else "the checkpoint's encoder (model_name in glirel_config.json)"
    hint = "" if explicit else ": pass --encoder path/to/local/encoder (a directory with the encoder's config and tokenizer)"
    if Path(name).expanduser().is_dir():
        return False, None
    if looks_like_path(name):
        raise CheckpointError(f"{what} {name!r} is not a directory on this machine{hint}")
    from huggingface_hub import HfApi, constants, try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json", revision=revision)
    cached_revision = Path(cached).parent.name if isinstance(cached, str) else None
    if constants.HF_HUB_OFFLINE:
        if cached_revision is None:
            raise CheckpointError(f"{what} {name!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set{hint}")
        return True, cached_revision
    try:
        info = HfApi().model_info(name, revision=revision, timeout=HUB_TIMEOUT_S)
    except Exception as error:  # network errors come from the HTTP client, Hub errors from huggingface_hub
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

        if cached_revision is not None and not isinstance(error, (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError)):
            return True, cached_revision
        raise CheckpointError(str(_hub_error(name, what, error)) + hint) from None
    return False, info.sha


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _owning_distribution(path: Path) -> Optional[tuple[str, str, str]]:
    """(distribution, version, path inside site-packages) when `path` lies inside an installed package."""
    import importlib.metadata
    import sys

    roots = [Path(entry).resolve() for entry in sys.path if entry and Path(entry).is_dir()]
    for root in roots:
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        if not relative.parts or root == Path.cwd().resolve():
            continue
        distributions = importlib.metadata.packages_distributions().get(relative.parts[0])
        if distributions:
            name = distributions[0]
            return name, importlib.metadata.version(name), relative.as_posix()
    return None


def describe_encoder(name: str, revision: Optional[str] = None) -> dict[str, Any]:
    """The encoder's provenance without machine paths.

    A Hub id gives ``{"hub_id", "revision"}``; a local directory gives the SHA-256 of its weights
    file plus, when it lies inside an installed package, ``{"package", "version", "path"}``
    (``path`` inside site-packages), else only the directory's name.

    Example:
        >>> describe_encoder("microsoft/deberta-v3-large", revision="64a8c8eab3e352a784c658aef62be1662607476f")
        {'hub_id': 'microsoft/deberta-v3-large', 'revision': '64a8c8eab3e352a784c658aef62be1662607476f'}
    """
    directory = Path(name).expanduser()
    if not directory.is_dir():
        return {"hub_id": name, "revision": revision}
    directory = directory.resolve()
    description: dict[str, Any] = {}
    owner = _owning_distribution(directory)
    if owner is not None:
        description.update(package=owner[0], version=owner[1], path=owner[2])
    else:
        description["directory"] = directory.name
    for weights in ("model.safetensors", "pytorch_model.bin"):
        if (directory / weights).is_file():
            description.update(weights_file=weights, weights_sha256=sha256_of(directory / weights))
            break
    return description


def portable_name(value: str) -> str:
    """An absolute path made machine-independent: inside an installed package → ``dist==version:path``,
    under the working directory → relative, else → ``<local>/name``; anything else unchanged.

    Example:
        >>> portable_name("/somewhere/else/my-encoder"), portable_name("microsoft/deberta-v3-large")
        ('<local>/my-encoder', 'microsoft/deberta-v3-large')
    """
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    path = Path(value)
    owner = _owning_distribution(path.resolve()) if path.exists() else None
    if owner is not None:
        return f"{owner[0]}=={owner[1]}:{owner[2]}"
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return f"<local>/{path.name}"


def without_machine_paths(value: Any) -> Any:
    """`value` (JSON-like) with every absolute path string replaced by `portable_name`."""
    if isinstance(value, dict):
        return {key: without_machine_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_machine_paths(item) for item in value]
    return portable_name(value) if isinstance(value, str) else value


def _resolve_file(checkpoint: str, filename: str, revision: Optional[str]) -> Optional[Path]:
    local = Path(checkpoint).expanduser()
    if local.is_dir():
        path = local / filename
        return path if path.is_file() else None
    if local.exists():
        raise CheckpointError(f"checkpoint {checkpoint} is a file; give the directory holding {CONFIG_NAME} and the weights")
    if looks_like_path(checkpoint):
        raise CheckpointError(f"checkpoint {checkpoint} does not exist (no such directory)")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id=checkpoint, filename=filename, revision=revision, etag_timeout=HUB_TIMEOUT_S))
    except EntryNotFoundError:
        return None
    except Exception as error:  # offline, unknown repository, invalid id
        raise CheckpointError(f"checkpoint {checkpoint} is not a local directory, and fetching {filename} from the "
                              f"Hugging Face Hub failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read weights safely: safetensors, or a pickle restricted to tensors (`weights_only=True`).

    Anything but a flat ``{str: Tensor}`` mapping is refused with a `CheckpointError` naming the file.
    """
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state_dict = load_file(str(path))
        except Exception as error:  # SafetensorError, OSError: truncated or corrupt header/data
            raise CheckpointError(f"cannot read {path} as safetensors (truncated or corrupt?): {error}") from None
    else:
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # refuse arbitrary pickles, whatever the reason torch gives
            raise CheckpointError(f"cannot read {path} as a tensor-only checkpoint: {error}") from None
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path} holds a {type(state_dict).__name__}, not a state dict")
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: state-dict key {key!r} is a {type(key).__name__}, not a string")
        if isinstance(value, dict):
            raise CheckpointError(f"{path}: {key!r} holds a nested dict, not a tensor; save the model's state_dict "
                                  f"itself (as glirel's save_pretrained does), not a wrapper such as {{{key!r}: ...}}")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: {key!r} is a {type(value).__name__}, not a tensor")
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
        glirel_config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path} is not valid JSON: {error}") from None
    if not isinstance(glirel_config, dict):
        raise CheckpointError(f"{config_path} holds a JSON {type(glirel_config).__name__}, not an object")
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
    if not encoder_name or not isinstance(encoder_name, str):
        raise CheckpointError(f"{config_path} names no model_name (got {encoder_name!r}) and no --encoder was given")
    local_files_only, encoder_revision = resolve_encoder(encoder_name, explicit=encoder is not None)
    try:
        encoder_config = AutoConfig.from_pretrained(encoder_name, local_files_only=local_files_only)
        tokenizer = add_glirel_tokens(AutoTokenizer.from_pretrained(encoder_name, use_fast=True, local_files_only=local_files_only))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot load the encoder {encoder_name!r} with transformers "
                              f"({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                              f"pass --encoder path/to/local/encoder") from None
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
        encoder_revision=encoder_revision,
    )
