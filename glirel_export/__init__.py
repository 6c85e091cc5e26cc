"""glirel_export: load GLiREL checkpoints in PyTorch and export verified ONNX artifacts.

The PyTorch parts are imported on first use, so torch-free modules of this package
(`glirel_export.datasets`) work in a runtime-only environment.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint",
    "ExportOptions": "export", "ExportVerificationError": "export", "export_checkpoint": "export",
    "GLiRELForExport": "modeling", "UnsupportedCheckpointError": "modeling",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
