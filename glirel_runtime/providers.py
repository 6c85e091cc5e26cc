"""onnxruntime execution providers: pick, create the session, and warn on fallback."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
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
    names = [provider_name(p) for p in resolved]
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"provider {name!r} is not a provider name")
    missing = [name for name in names if name not in available]
    if len(missing) == len(names):
        raise ValueError(f"none of the providers {names} is available in this onnxruntime build (available: {available})")
    if missing:
        warnings.warn(f"providers {missing} are not available in this onnxruntime build (available: {available})", RuntimeWarning, stacklevel=3)
    return resolved


def provider_name(provider: ProviderSpec) -> str:
    return provider[0] if isinstance(provider, tuple) else provider


def _with_defaults(provider: ProviderSpec, cache_dir: Path, tensorrt_options: dict[str, Any]) -> ProviderSpec:
    """TensorRT gets an engine cache, fp16 kernels and `tensorrt_options`; options the caller gave win."""
    if provider_name(provider) != TENSORRT:
        return provider
    options: dict[str, Any] = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir), "trt_fp16_enable": True}
    options.update(tensorrt_options)
    if isinstance(provider, tuple):
        options.update(provider[1])
    return (TENSORRT, options)


def create_session(
    model_path: str | Path, providers: Union[str, Sequence[ProviderSpec]] = "auto", threads: Optional[int] = None,
    tensorrt_options: Optional[dict[str, Any]] = None, allow_spinning: Optional[bool] = None,
) -> ort.InferenceSession:
    """An `InferenceSession` on the requested providers; warns when onnxruntime fell back.

    `threads`: intra-op threads (None: onnxruntime's default, one per core).
    `tensorrt_options` (e.g. the shape profile from `trt_profile.profile_options`)
    are added to TensorRT's defaults when TensorRT is requested.
    `allow_spinning`: whether idle intra-op threads busy-wait for the next piece of work
    (None: onnxruntime's default, which spins). Turning it off leaves the cores to other
    processes between calls, which pays on a shared or loaded machine (see docs/speed.md).

    Example:
        >>> session = create_session("model.onnx", "cpu", threads=2, allow_spinning=False)  # doctest: +SKIP
        >>> session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")  # doctest: +SKIP
        '0'
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if allow_spinning is not None and not isinstance(allow_spinning, bool):
        raise TypeError(f"allow_spinning must be True, False or None, got {allow_spinning!r}")
    requested = resolve_providers(providers)
    cache_dir = Path(os.environ.get("GLIREL_ONNX_TRT_CACHE", Path.home() / ".cache" / "glirel-onnx" / "trt"))
    if any(provider_name(p) == TENSORRT for p in requested):
        cache_dir.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if allow_spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    session = ort.InferenceSession(str(model_path), sess_options=options,
                                   providers=[_with_defaults(p, cache_dir, tensorrt_options or {}) for p in requested])
    first = provider_name(requested[0])
    used = session.get_providers()
    if first not in used:
        warnings.warn(f"onnxruntime could not use {first}; running on {used}", RuntimeWarning, stacklevel=3)
    return session


def uses_gpu(session: ort.InferenceSession) -> bool:
    """Whether the session runs on CUDA or TensorRT."""
    return any(name in (CUDA, TENSORRT) for name in session.get_providers())


def run_with_io_binding(session: ort.InferenceSession, inputs: dict[str, np.ndarray], output_names: Sequence[str]) -> list[np.ndarray]:
    """`session.run` through an IO binding: outputs stay where the graph wrote them until one copy back.

    On CUDA/TensorRT the inputs are copied to the device once and the outputs are
    allocated there by onnxruntime, then copied to host together, instead of
    `session.run`'s per-call staging. On CPU it is equivalent to `session.run`.

    Example:
        >>> logits, = run_with_io_binding(session, inputs, ["logits"])  # doctest: +SKIP
    """
    device, device_id = "cpu", 0
    if uses_gpu(session):
        device = "cuda"
        provider_options = session.get_provider_options()
        for name in (CUDA, TENSORRT):
            if name in provider_options:
                device_id = int(provider_options[name].get("device_id", 0))
                break
    binding = session.io_binding()
    for name, array in inputs.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), device, device_id))
    for name in output_names:
        binding.bind_output(name, device, device_id)
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()
