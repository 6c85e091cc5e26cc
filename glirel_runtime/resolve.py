"""Where the default model is: `default_model_dir()` looks, in this order, at

1. ``$GLIREL_ONNX_DEFAULT_MODEL``: an artifact directory you name (it must hold one);
2. the installed model package ``glirel-onnx-default-model`` (``pip install "glirel-onnx[default-model]"``),
   which holds one artifact folder as package data;
3. a checkout's ``models/<DEFAULT_MODEL_NAME>`` (the repository's copy, used by editable installs).

When none holds an artifact, a `FileNotFoundError` says how to get one.
"""
from __future__ import annotations

import importlib.resources
import importlib.util
import os
from pathlib import Path
from typing import Optional

from .artifact import CONFIG_FILE

DEFAULT_MODEL_NAME = "glirel-minilm-fewrel"
"""The default model's folder under the checkout's `models/`; the model package is built from it."""
ENV_VAR = "GLIREL_ONNX_DEFAULT_MODEL"
"""Names an artifact directory that replaces the default model."""
MODEL_PACKAGE = "glirel_onnx_default_model"
"""The import name of the model distribution ``glirel-onnx-default-model`` (see packages/default-model)."""
CHECKOUT_MODELS = Path(__file__).resolve().parent.parent / "models"
"""A checkout's models/ folder (absent in an installed wheel)."""

HOW_TO_GET_ONE = (
    'install the model package (pip install "glirel-onnx[default-model]", or from a built wheel: '
    "pip install glirel_onnx_default_model-*.whl), set {env} to an artifact directory, or pass "
    "a path or Hub id to GLiREL.from_pretrained(...) / --model"
).format(env=ENV_VAR)


def is_artifact(directory: Path) -> bool:
    """True when `directory` holds an artifact's `glirel_artifact.json`.

    Example:
        >>> is_artifact(Path("/nonexistent"))
        False
    """
    return (directory / CONFIG_FILE).is_file()


def packaged_model_dir(package: Optional[str] = None) -> Optional[Path]:
    """The artifact folder inside the installed model package (`MODEL_PACKAGE` unless `package` is given),
    or None when it is not installed.

    The package holds exactly one folder with a `glirel_artifact.json`; any other layout is an error.

    Example:
        >>> packaged_model_dir("no_such_package_here") is None
        True
    """
    package = package or MODEL_PACKAGE
    if importlib.util.find_spec(package) is None:
        return None
    root = Path(str(importlib.resources.files(package)))
    found = sorted(child for child in root.iterdir() if child.is_dir() and is_artifact(child))
    if len(found) != 1:
        names = [p.name for p in found] or "none"
        raise FileNotFoundError(f"the model package {package} at {root} must hold exactly one artifact folder, found {names}; "
                                "reinstall it")
    return found[0]


def checkout_model_dir(models: Optional[Path] = None, name: Optional[str] = None) -> Optional[Path]:
    """`models/<name>` of a checkout (`CHECKOUT_MODELS`/`DEFAULT_MODEL_NAME` unless given) when it holds
    an artifact, else None.

    Example:
        >>> checkout_model_dir(Path("/nonexistent")) is None
        True
    """
    directory = Path(models or CHECKOUT_MODELS) / (name or DEFAULT_MODEL_NAME)
    return directory if is_artifact(directory) else None


def default_model_dir() -> Path:
    """The default model's artifact directory: ``$GLIREL_ONNX_DEFAULT_MODEL``, else the installed
    model package, else a checkout's `models/`; a FileNotFoundError saying how to get one when none has it.

    Example:
        >>> from glirel_runtime.resolve import default_model_dir
        >>> (default_model_dir() / "glirel_artifact.json").is_file()  # doctest: +SKIP
        True
    """
    override = os.environ.get(ENV_VAR)
    if override:
        directory = Path(override).expanduser()
        if not is_artifact(directory):
            raise FileNotFoundError(f"{ENV_VAR}={override} is not an artifact directory (no {CONFIG_FILE} there); "
                                    f"point it at a folder written by glirel-export, or unset it")
        return directory
    for found in (packaged_model_dir(), checkout_model_dir()):
        if found is not None:
            return found
    raise FileNotFoundError(f"no default model is installed: {HOW_TO_GET_ONE}")
