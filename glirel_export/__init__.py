"""glirel_export: load GLiREL checkpoints in PyTorch and export verified ONNX artifacts."""
__version__ = "0.1.0"

from .checkpoint import CheckpointError, load_checkpoint
from .export import ExportOptions, ExportVerificationError, export_checkpoint
from .modeling import GLiRELForExport, UnsupportedCheckpointError

__all__ = [
    "CheckpointError", "ExportOptions", "ExportVerificationError", "GLiRELForExport",
    "UnsupportedCheckpointError", "export_checkpoint", "load_checkpoint",
]
