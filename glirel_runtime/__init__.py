"""glirel_runtime: torch-free GLiREL inference on onnxruntime.

    >>> from glirel_runtime import GLiREL  # doctest: +SKIP
    >>> model = GLiREL.from_pretrained()  # doctest: +SKIP
"""
__version__ = "0.1.0"

from .artifact import FORMAT_VERSION, ArtifactConfig, ArtifactError
from .model import GLiREL
from .pipeline import PairScores
from .trt_profile import ShapeLimits
from .validation import InputError

__all__ = ["ArtifactConfig", "ArtifactError", "FORMAT_VERSION", "GLiREL", "InputError", "PairScores", "ShapeLimits", "__version__"]
