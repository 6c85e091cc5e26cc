"""`export_checkpoint`: glirel checkpoint → verified artifact directory.

Steps: load strictly → trace to ONNX with every axis dynamic → optional
optimisation / fp16 / int8 → verify against a freshly loaded PyTorch model →
write `model.onnx`, `tokenizer.json` and `glirel_artifact.json` (see
`glirel_runtime.artifact`). Nothing is written to `out_dir` unless every step
succeeds.
"""
from __future__ import annotations

import platform
import shutil
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from glirel_runtime.artifact import (
    GRAPH_INPUTS, MODEL_FILE, TOKENIZER_FILE, ArtifactConfig, dynamic_axes,
)
from glirel_runtime.features import FeatureBuilder

from .pair_head import PAIR_HEAD_CHOICES, block_pair_head_file
from .checkpoint import (
    ENTITY_END, ENTITY_START, REL_TOKEN, SEP_TOKEN, LoadedCheckpoint, describe_encoder, load_checkpoint, portable_name,
    without_machine_paths,
)

FP32_TOLERANCE = 1e-4


class ExportVerificationError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model closely enough."""


@dataclass
class ExportOptions:
    opset: int = 17
    fp16: bool = False
    quantize: Optional[str] = None  # None or "int8"
    optimize: bool = False
    device: str = "cpu"
    exporter: str = "torchscript"  # or "dynamo"
    encoder: Optional[str] = None  # local encoder directory overriding the config's model_name
    threshold: float = 0.5
    pair_head: str = "blocked"  # all-pairs scorer as a Loop over head entities (see pair_head.py), or "dense"

    @property
    def precision(self) -> str:
        if self.fp16 and self.quantize:
            raise ValueError("choose one of --fp16 and --quantize int8")
        if self.quantize not in (None, "int8"):
            raise ValueError(f"unsupported quantization {self.quantize!r}; use 'int8'")
        return "fp16" if self.fp16 else ("int8" if self.quantize else "fp32")


def artifact_config(loaded: LoadedCheckpoint, options: ExportOptions) -> ArtifactConfig:
    config = loaded.glirel_config
    pad_token_id = loaded.tokenizer.pad_token_id
    import glirel_export

    return ArtifactConfig(
        max_words=int(config.get("max_len", 512)),
        max_subwords=loaded.max_subwords,
        pad_token_id=int(pad_token_id if pad_token_id is not None else 0),
        rel_token=REL_TOKEN,
        sep_token=SEP_TOKEN,
        entity_start_token=ENTITY_START,
        entity_end_token=ENTITY_END,
        add_entity_markers=bool(config.get("add_entity_markers", False)),
        max_entity_pair_distance=config.get("max_entity_pair_distance"),
        label_embed_strategy=loaded.model.options.label_embed_strategy,
        scorer=loaded.model.options.scorer,
        has_coref_output=loaded.model.options.coref_classifier,
        precision=options.precision,
        default_threshold=options.threshold,
        coreference_label=config.get("coreference_label"),
        source={
            "checkpoint": portable_name(str(Path(loaded.checkpoint).resolve()) if Path(loaded.checkpoint).is_dir()
                                        else loaded.checkpoint),
            "encoder": describe_encoder(loaded.encoder_name, loaded.encoder_revision),
            "glirel_config": without_machine_paths(config),
            "exporter": {
                "glirel_export": glirel_export.__version__, "torch": torch.__version__, "opset": options.opset,
                "exporter": options.exporter, "optimize": options.optimize, "python": platform.python_version(),
            },
        },
    )


def _trace_inputs(features: FeatureBuilder) -> dict[str, torch.Tensor]:
    words = [["Ada", "Lovelace", "met", "Charles", "Babbage", "in", "London", "."], ["Paris", "is", "in", "France"]]
    spans = [[(0, 1), (3, 4), (6, 6)], [(0, 0), (3, 3)]]
    inputs = features.pad(features.encode(["spouse", "located in", "founded by"], words, spans))
    return {name: torch.from_numpy(value) for name, value in inputs.items()}


def summarise_warnings(caught: list[warnings.WarningMessage]) -> dict[str, Any]:
    """Count warnings by category, keeping one example message of each (for the export report).

    Example:
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warnings.warn("shape used as a Python value", UserWarning)
        >>> summarise_warnings(caught)
        {'count': 1, 'by_category': {'UserWarning': 1}, 'examples': {'UserWarning': 'shape used as a Python value'}}
    """
    by_category = Counter(w.category.__name__ for w in caught)
    examples: dict[str, str] = {}
    for w in caught:
        examples.setdefault(w.category.__name__, str(w.message).splitlines()[0][:200])
    return {"count": len(caught), "by_category": dict(by_category), "examples": examples}


def _export_onnx(model: torch.nn.Module, inputs: dict[str, torch.Tensor], path: Path, options: ExportOptions) -> dict[str, Any]:
    """Trace `model` to `path`; returns the summary of the tracer's warnings (they are not printed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trace(model, inputs, path, options)
    return summarise_warnings(caught)


def _trace(model: torch.nn.Module, inputs: dict[str, torch.Tensor], path: Path, options: ExportOptions) -> None:
    output_names = model.output_names
    args = tuple(inputs[name] for name in GRAPH_INPUTS)
    if options.exporter == "torchscript":
        axes = dynamic_axes()  # from the contract's input and output tables
        torch.onnx.export(
            model, args, str(path), input_names=list(GRAPH_INPUTS), output_names=output_names,
            dynamic_axes={k: v for k, v in axes.items() if k in list(GRAPH_INPUTS) + output_names},
            opset_version=options.opset, do_constant_folding=True, dynamo=False,
        )
    elif options.exporter == "dynamo":
        dims = {axis: torch.export.Dim.DYNAMIC for axis in ("batch", "subwords", "words", "labels", "entities", "pairs")}
        dynamic_shapes = {name: {i: dims[a] for i, a in enumerate(axes) if a in dims} for name, (_, axes) in GRAPH_INPUTS.items()}
        program = torch.onnx.export(
            model, args, input_names=list(GRAPH_INPUTS), output_names=output_names,
            dynamic_shapes=dynamic_shapes, opset_version=max(options.opset, 18), dynamo=True,
        )
        program.save(str(path))
    else:
        raise ValueError(f"unknown exporter {options.exporter!r}; use 'torchscript' or 'dynamo'")


def _post_process(path: Path, options: ExportOptions, num_heads: int, hidden: int) -> dict[str, Any]:
    notes: dict[str, Any] = {}
    if options.optimize:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(str(path), model_type="bert", num_heads=num_heads, hidden_size=hidden, opt_level=1)
        notes["fusions"] = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(path))
    if options.precision == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True, op_block_list=["LSTM", "Softmax", "Softplus"])
        onnx.save(model, str(path))
    elif options.precision == "int8":
        from .quantize import quantize_int8

        quantized = path.with_suffix(".int8.onnx")
        notes["quantization"] = quantize_int8(path, quantized)
        quantized.replace(path)
    notes["pair_head"] = "dense"
    if options.pair_head == "blocked" and block_pair_head_file(path):
        notes["pair_head"] = "blocked"
    return notes


def _session(path: Path, device: str):
    import onnxruntime as ort

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), providers=providers)


def export_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, options: Optional[ExportOptions] = None, overwrite: bool = False
) -> ArtifactConfig:
    """Export, verify and write an artifact directory; return its config.

    Raises `ExportVerificationError` (writing nothing) when an fp32 graph differs from
    PyTorch by more than 1e-4 in any probability.

    Example:
        >>> config = export_checkpoint("my-glirel-checkpoint", "my-artifact")  # doctest: +SKIP
        >>> config.verification["max_abs_diff"] < 1e-4  # doctest: +SKIP
        True
    """
    from .verify import verify_artifact

    options = options or ExportOptions()
    precision = options.precision  # validates the option combination first
    if options.pair_head not in PAIR_HEAD_CHOICES:
        raise ValueError(f"pair_head must be one of {PAIR_HEAD_CHOICES}, got {options.pair_head!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"output path {out_dir} is a file, not a directory: choose another output directory")
    blocking = next((parent for parent in out_dir.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise FileExistsError(f"cannot create {out_dir}: {blocking} is a file, not a directory")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty (pass overwrite=True / --overwrite)")

    loaded = load_checkpoint(checkpoint, encoder=options.encoder)
    config = artifact_config(loaded, options)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".glirel-export-", dir=out_dir.parent))
    try:
        loaded.tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
        features = FeatureBuilder(staging / TOKENIZER_FILE, config)
        model = loaded.model.to(options.device)
        trace_inputs = {k: v.to(options.device) for k, v in _trace_inputs(features).items()}
        with torch.no_grad():
            tracer_warnings = _export_onnx(model, trace_inputs, staging / MODEL_FILE, options)
        encoder_config = model.token_rep_layer.bert_layer.model.config
        notes = _post_process(staging / MODEL_FILE, options, encoder_config.num_attention_heads, encoder_config.hidden_size)
        del model, loaded

        # a freshly loaded model: the traced module can behave differently afterwards
        reference = load_checkpoint(checkpoint, encoder=options.encoder).model.to(options.device)
        report = verify_artifact(_session(staging / MODEL_FILE, options.device), reference, features, options.threshold, options.device)
        report.update(notes)
        report["export_warnings"] = tracer_warnings
        report["precision"] = precision
        report["passed"] = precision != "fp32" or report["max_abs_diff"] <= FP32_TOLERANCE
        config.verification = report
        if not report["passed"]:
            raise ExportVerificationError(
                f"ONNX graph differs from PyTorch by {report['max_abs_diff']:.2e} in probability "
                f"(limit {FP32_TOLERANCE:.0e}); per case: "
                + "; ".join(f"{c['name']}: {c['max_abs_diff']:.2e}" for c in report["cases"])
            )
        config.save(staging)
        staging.chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.replace(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return config


def format_report(config: ArtifactConfig) -> str:
    """Human-readable verification figures."""
    report = config.verification
    lines = [f"verification ({report['precision']}), threshold {report['threshold']}:"]
    for case in report["cases"]:
        lines.append(
            f"  {case['name']:<36} batch={case['batch']:<2} labels={case['labels']:<3} subwords={case['subwords']:<4} "
            f"pairs={case['pairs']:<4} max|Δp|={case['max_abs_diff']:.2e}"
        )
    lines.append(f"  max |Δp| = {report['max_abs_diff']:.2e}; decisions agreeing = {100 * report['decision_agreement']:.3f}%")
    if report.get("pair_head"):
        lines.append(f"  all-pairs scorer: {report['pair_head']}")
    if report.get("fusions"):
        lines.append(f"  fusions: {report['fusions']}")
    noted = report.get("export_warnings") or {}
    if noted.get("count"):
        kinds = ", ".join(f"{count} {name}" for name, count in noted["by_category"].items())
        example = noted["examples"].get("TracerWarning") or next(iter(noted["examples"].values()))
        lines.append(f"  export warnings (not shown; stored in the artifact's verification): {kinds}, e.g. {example[:80]!r}…")
    return "\n".join(lines)
