"""onnxruntime execution providers: pick, create the session, and warn on fallback."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import onnxruntime as ort

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
AUTO_ORDER = (TENSORRT, CUDA, CPU)

ProviderSpec = Union[str, tuple[str, dict[str, Any]]]


def resolve_providers(providers: Union[str, Sequence[ProviderSpec]] = "auto") -> list[ProviderSpec]:
    """Turn "auto", one name, or a list into the provider list for a session.

    "auto" takes TensorRT, then CUDA, then CPU, as far as this onnxruntime build
    has them. Names are checked against the build's available providers.

    Example:
        >>> resolve_providers("cpu")
        ['CPUExecutionProvider']
    """
    available = ort.get_available_providers()
    if isinstance(providers, str):
        if providers == "auto":
            return [name for name in AUTO_ORDER if name in available] or [CPU]
        aliases = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}
        providers = [aliases.get(providers.lower(), providers)]
    resolved = list(providers)
    if not resolved:
        raise ValueError("providers is empty")
    names = [p[0] if isinstance(p, tuple) else p for p in resolved]
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"provider {name!r} is not a provider name")
    missing = [name for name in names if name not in available]
    if len(missing) == len(names):
        raise ValueError(f"none of the providers {names} is available in this onnxruntime build (available: {available})")
    if missing:
        warnings.warn(f"providers {missing} are not available in this onnxruntime build (available: {available})", RuntimeWarning, stacklevel=3)
    return resolved


def _with_defaults(provider: ProviderSpec, cache_dir: Optional[Path]) -> ProviderSpec:
    """TensorRT gets an engine cache and fp16 kernels; CUDA gets its default options."""
    if provider == TENSORRT and cache_dir is not None:
        return (TENSORRT, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir), "trt_fp16_enable": True})
    return provider


def create_session(model_path: str | Path, providers: Union[str, Sequence[ProviderSpec]] = "auto", threads: Optional[int] = None) -> ort.InferenceSession:
    """An `InferenceSession` on the requested providers; warns when onnxruntime fell back."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    requested = resolve_providers(providers)
    cache_dir = Path(os.environ.get("GLIREL_ONNX_TRT_CACHE", Path.home() / ".cache" / "glirel-onnx" / "trt"))
    if any((p[0] if isinstance(p, tuple) else p) == TENSORRT for p in requested):
        cache_dir.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), sess_options=options, providers=[_with_defaults(p, cache_dir) for p in requested])
    first = requested[0][0] if isinstance(requested[0], tuple) else requested[0]
    used = session.get_providers()
    if first not in used:
        warnings.warn(f"onnxruntime could not use {first}; running on {used}", RuntimeWarning, stacklevel=3)
    return session
