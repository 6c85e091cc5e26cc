"""Triton Inference Server model repository for an exported artifact.

`write_triton_repository(artifact_dir, repo_dir)` writes::

    repo_dir/
      glirel/                      # model name (``model_name``)
        config.pbtxt               # onnxruntime backend, dynamic batching, TensorRT accelerator
        1/                         # version 1: the artifact, unchanged
          model.onnx
          tokenizer.json           # not read by Triton: clients load it for pre-processing
          glirel_artifact.json

Triton serves the graph only; pre- and post-processing run on the client with the
runtime's own code (see docs/integrations.md): `glirel_runtime.features.FeatureBuilder`
turns texts, labels and entities into the graph inputs, and the ``logits`` output is
decoded as the runtime does. The version directory is a complete artifact directory,
so a client loads its tokenizer and config from the same version Triton serves.

Batching dims: every graph input is batched (``max_batch_size > 0``), so ``dims``
omit the batch axis; ``text_lengths`` (shape ``[batch]``) is sent as ``[batch, 1]`` and
reshaped to ``[batch]`` by Triton. The other axes (subwords, words, labels, entities,
pairs) are variable: Triton's dynamic batcher merges requests whose shapes agree, so
clients that want cross-request batching pad to shared bucket sizes (padding is
ignored by the graph, as in the runtime's own batches).

Example:
    >>> from glirel_export.triton import write_triton_repository
    >>> write_triton_repository("artifact_dir", "triton_repo", max_batch_size=32)  # doctest: +SKIP
    >>> # docker run --gpus all -p8001:8001 -v $PWD/triton_repo:/models nvcr.io/nvidia/tritonserver:<tag>-py3 \\
    >>> #     tritonserver --model-repository=/models
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from glirel_runtime.artifact import GRAPH_INPUTS, GRAPH_OUTPUTS, MODEL_FILE, TOKENIZER_FILE, ArtifactConfig

CONFIG_PBTXT = "config.pbtxt"
TRITON_DTYPES = {"int64": "TYPE_INT64", "int32": "TYPE_INT32", "float32": "TYPE_FP32", "float16": "TYPE_FP16"}
ONNX_DTYPES = {1: "float32", 6: "int32", 7: "int64", 10: "float16"}  # onnx.TensorProto element types


def _graph_signature(model_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Input and output names → dtype names, read from the graph itself."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def dtype(value) -> str:
        code = value.type.tensor_type.elem_type
        if code not in ONNX_DTYPES:
            raise ValueError(f"{model_path}: tensor {value.name!r} has unsupported element type {code}")
        return ONNX_DTYPES[code]

    inputs = {v.name: dtype(v) for v in graph.input if v.name not in initializers}
    outputs = {v.name: dtype(v) for v in graph.output}
    return inputs, outputs


def _tensor(name: str, dtype: str, axes: Sequence[str]) -> str:
    """One `ModelInput`/`ModelOutput` entry; the leading batch axis is left out (max_batch_size > 0)."""
    if not axes or axes[0] != "batch":
        raise ValueError(f"tensor {name!r} has no leading batch axis: {axes}")
    dims = [int(a) if a.isdigit() else -1 for a in axes[1:]]
    lines = [f'    name: "{name}"', f"    data_type: {TRITON_DTYPES[dtype]}"]
    if dims:
        lines.append(f"    dims: [ {', '.join(map(str, dims))} ]")
    else:  # a per-item scalar: clients send [batch, 1], the model gets [batch]
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    return "  {\n" + "\n".join(lines) + "\n  }"


def triton_config(
    inputs: dict[str, str], outputs: dict[str, str], model_name: str = "glirel", max_batch_size: int = 32,
    max_queue_delay_microseconds: int = 2000, instance_count: int = 1, device: str = "gpu",
    tensorrt: bool = True, tensorrt_fp16: bool = True, tensorrt_cache_path: Optional[str] = "/tmp/glirel-trt-cache",
    max_workspace_size_bytes: int = 1 << 30,
) -> str:
    """`config.pbtxt` text for a graph with these inputs/outputs (name → dtype), following `GRAPH_INPUTS`."""
    if sorted(inputs) != sorted(GRAPH_INPUTS):
        raise ValueError(f"graph inputs {sorted(inputs)} differ from the artifact contract {sorted(GRAPH_INPUTS)}")
    unknown = sorted(set(outputs) - set(GRAPH_OUTPUTS))
    if unknown or "logits" not in outputs:
        raise ValueError(f"graph outputs {sorted(outputs)} differ from the artifact contract {sorted(GRAPH_OUTPUTS)}")
    if device not in ("gpu", "cpu"):
        raise ValueError(f"device must be 'gpu' or 'cpu', got {device!r}")
    if max_batch_size < 1 or instance_count < 1 or max_queue_delay_microseconds < 0:
        raise ValueError("max_batch_size and instance_count must be >= 1 and max_queue_delay_microseconds >= 0")
    preferred = sorted({size for size in (max_batch_size // 2, max_batch_size) if size >= 1})
    parts = [
        f'name: "{model_name}"',
        'backend: "onnxruntime"',
        f"max_batch_size: {max_batch_size}",
        "version_policy: { latest: { num_versions: 1 } }",
        "input [\n" + ",\n".join(_tensor(n, inputs[n], GRAPH_INPUTS[n][1]) for n in GRAPH_INPUTS) + "\n]",
        "output [\n" + ",\n".join(_tensor(n, outputs[n], GRAPH_OUTPUTS[n][1]) for n in GRAPH_OUTPUTS if n in outputs) + "\n]",
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]\n"
        f"  max_queue_delay_microseconds: {max_queue_delay_microseconds}\n"
        "}",
        f"instance_group [ {{ kind: {'KIND_GPU' if device == 'gpu' else 'KIND_CPU'} count: {instance_count} }} ]",
    ]
    if device == "gpu" and tensorrt:
        parameters = [("precision_mode", "FP16" if tensorrt_fp16 else "FP32"),
                      ("max_workspace_size_bytes", str(max_workspace_size_bytes))]
        if tensorrt_cache_path:
            parameters += [("trt_engine_cache_enable", "1"), ("trt_engine_cache_path", tensorrt_cache_path)]
        rendered = "\n".join(f'          parameters {{ key: "{k}" value: "{v}" }}' for k, v in parameters)
        parts.append(
            "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n"
            f'      {{\n          name: "tensorrt"\n{rendered}\n      }}\n'
            "    ]\n  }\n}"
        )
    return "\n".join(parts) + "\n"


def write_triton_repository(
    artifact_dir: str | Path, repo_dir: str | Path, model_name: str = "glirel", version: int = 1,
    overwrite: bool = False, **config_options,
) -> Path:
    """Write a Triton model repository serving `artifact_dir`'s graph; returns the model directory.

    `config_options` go to `triton_config` (max_batch_size, max_queue_delay_microseconds,
    instance_count, device, tensorrt, tensorrt_fp16, tensorrt_cache_path, ...). Other models
    already in `repo_dir` are left alone; an existing `model_name` needs ``overwrite=True``.

    Example:
        >>> write_triton_repository("artifact_dir", "triton_repo", device="gpu", instance_count=2)  # doctest: +SKIP
    """
    artifact_dir, repo_dir = Path(artifact_dir), Path(repo_dir)
    ArtifactConfig.load(artifact_dir)  # refuses anything that is not a readable artifact
    for name in (MODEL_FILE, TOKENIZER_FILE):
        if not (artifact_dir / name).is_file():
            raise FileNotFoundError(f"{artifact_dir / name} not found: {artifact_dir} is not a complete artifact")
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise ValueError(f"model_name must be a plain directory name, got {model_name!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    target = repo_dir / model_name
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")
    inputs, outputs = _graph_signature(artifact_dir / MODEL_FILE)
    config_text = triton_config(inputs, outputs, model_name=model_name, **config_options)

    repo_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_name}-", dir=repo_dir))
    try:  # build beside the target, then swap: a failed write leaves the old model in place
        (staging / str(version)).mkdir()
        for path in artifact_dir.iterdir():
            if path.is_file():
                shutil.copy2(path, staging / str(version) / path.name)
        (staging / CONFIG_PBTXT).write_text(config_text)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m glirel_export.triton ARTIFACT_DIR REPO_DIR``: a repository from an existing artifact."""
    parser = argparse.ArgumentParser(prog="python -m glirel_export.triton", description=main.__doc__)
    parser.add_argument("artifact_dir")
    parser.add_argument("repo_dir")
    parser.add_argument("--model-name", default="glirel")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--instance-count", type=int, default=1)
    parser.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--no-tensorrt", action="store_true", help="plain CUDA execution, no TensorRT accelerator")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        target = write_triton_repository(
            args.artifact_dir, args.repo_dir, model_name=args.model_name, overwrite=args.overwrite,
            max_batch_size=args.max_batch_size, instance_count=args.instance_count, device=args.device,
            tensorrt=not args.no_tensorrt)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"glirel-export --triton: refused: {error}", file=sys.stderr)
        return 1
    print(f"wrote Triton model {target}")
    return 0


__all__ = ["triton_config", "write_triton_repository"]

if __name__ == "__main__":
    sys.exit(main())
