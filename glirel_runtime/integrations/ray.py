"""Ray Data bulk extraction: `extract_dataset` adds a ``relations`` column to a dataset.

Each actor of the pool holds one `GLiREL` session for its lifetime. GPU actors
(``num_gpus > 0``) ask onnxruntime for TensorRT, then CUDA, then CPU; Ray sets
``CUDA_VISIBLE_DEVICES`` for them, so device 0 is the GPU Ray assigned. An
onnxruntime build without those providers falls back to CPU with a RuntimeWarning.

The model must be readable on every node: an artifact directory at the same path
(shared filesystem), or a Hub repository id (each actor downloads it).

Example:
    >>> import ray
    >>> from glirel_runtime.integrations.ray import extract_dataset
    >>> ds = ray.data.read_json("corpus.jsonl")  # rows: {"text": ..., "ner": [[start, end, type, text], ...]}  # doctest: +SKIP
    >>> out = extract_dataset(ds, model="models/glirel-minilm-fewrel", labels=["founded by", "spouse"],
    ...                       batch_size=64, concurrency=4)  # doctest: +SKIP
    >>> out.write_parquet("relations/")  # doctest: +SKIP
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..model import GLiREL
from ..providers import AUTO_ORDER, ProviderSpec
from ..validation import check_labels, check_threshold, check_top_k

GPU_PROVIDERS: list[ProviderSpec] = list(AUTO_ORDER)  # TensorRT, CUDA, CPU


def _python(value: Any) -> Any:
    """Arrow/numpy batch values → plain Python (token arrays → lists, numpy ints → int)."""
    if isinstance(value, np.ndarray):
        return [_python(v) for v in value.tolist()] if value.dtype == object else value.tolist()
    if isinstance(value, (list, tuple)):
        return [_python(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _object_column(values: list[Any]) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


class RelationExtractor:
    """A Ray Data actor: one `GLiREL` session, called on batches (``dict[str, np.ndarray]``).

    Example:
        >>> extractor = RelationExtractor("artifact_dir", ["spouse"])  # doctest: +SKIP
        >>> extractor({"text": np.array(["Ada met Byron ."]), "ner": ...})["relations"]  # doctest: +SKIP
    """

    def __init__(
        self, model: str, labels: Any, threshold: float = 0.5, top_k: int = -1, batch_size: int = 32,
        text_column: str = "text", ner_column: str = "ner", output_column: str = "relations",
        providers: Union[str, list[ProviderSpec], None] = None, threads: Optional[int] = None,
        on_error: str = "raise", error_column: str = "error", info_column: Optional[str] = None,
    ):
        import ray

        if providers is None:
            assigned = ray.get_gpu_ids() if ray.is_initialized() else []
            providers = GPU_PROVIDERS if assigned else "cpu"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.model = GLiREL.from_pretrained(model, providers=providers, threads=threads)
        for warning in caught:  # re-emit (to the worker's log) and keep them for `info_column`
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        self.labels, self.threshold, self.top_k, self.batch_size = labels, threshold, top_k, batch_size
        self.text_column, self.ner_column, self.output_column = text_column, ner_column, output_column
        self.on_error, self.error_column, self.info_column = on_error, error_column, info_column
        self.info = {
            "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "providers": self.model.providers,
            "warnings": [str(warning.message) for warning in caught],
        }

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for column in (self.text_column, self.ner_column):
            if column not in batch:
                raise KeyError(f"the dataset has no column {column!r} (columns: {sorted(batch)}); "
                               f"set text_column=/ner_column= in extract_dataset")
        texts = [_python(t) for t in batch[self.text_column]]
        ner = [_python(n) for n in batch[self.ner_column]]
        results = self._predict(texts, ner)
        out = dict(batch)
        if self.on_error == "return":
            out[self.error_column] = _object_column([str(r) if isinstance(r, Exception) else None for r in results])
            results = [[] if isinstance(r, Exception) else r for r in results]
        out[self.output_column] = _object_column(results)
        if self.info_column:
            out[self.info_column] = _object_column([dict(self.info) for _ in results])
        return out


    def _predict(self, texts: list[Any], ner: list[Any]) -> list[Any]:
        """The batch's results; with ``on_error="return"``, a failure of the shared model call is retried
        row by row, so only the rows the model cannot take carry an error."""
        try:
            return self.model.batch_predict_relations(
                texts, self.labels, threshold=self.threshold, ner=ner, top_k=self.top_k, batch_size=self.batch_size,
                on_error=self.on_error)
        except Exception:
            if self.on_error == "raise" or len(texts) == 1:
                raise
        results: list[Any] = []
        for text, entities in zip(texts, ner):
            try:
                results.append(self._predict([text], [entities])[0])
            except Exception as error:
                results.append(error)
        return results


def extract_dataset(
    ds: Any,
    model: Union[str, Path],
    labels: Any,
    *,
    batch_size: int = 64,
    concurrency: Union[int, tuple[int, int]] = 1,
    num_gpus: float = 0,
    num_cpus: float = 1,
    threshold: float = 0.5,
    top_k: int = -1,
    text_column: str = "text",
    ner_column: str = "ner",
    output_column: str = "relations",
    providers: Union[str, list[ProviderSpec], None] = None,
    on_error: str = "raise",
    error_column: str = "error",
    info_column: Optional[str] = None,
) -> Any:
    """A lazy `ray.data.Dataset`: `ds` with relations (glirel's dicts) in `output_column`.

    Rows hold `text_column` (a string or a token list) and `ner_column`
    (``[start, end_inclusive, type, text]`` word spans). `concurrency` is the actor
    pool's size (or ``(min, max)`` for autoscaling); each actor reserves `num_cpus`
    (its onnxruntime threads) and `num_gpus`. `providers` overrides the choice of
    execution providers (default: TensorRT/CUDA/CPU on GPU actors, CPU otherwise).
    ``on_error="return"`` puts each invalid row's message in `error_column` (None
    when valid) instead of failing the job; `info_column`, when given, records
    where each row ran (node id, CUDA_VISIBLE_DEVICES, providers, session warnings).

    Example:
        >>> out = extract_dataset(ray.data.from_items(rows), "artifact_dir", ["spouse"], num_gpus=1)  # doctest: +SKIP
        >>> out.take(1)[0]["relations"]  # doctest: +SKIP
    """
    import ray.data

    check_labels(labels)
    threshold, top_k = check_threshold(threshold), check_top_k(top_k)
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(concurrency, tuple):
        if len(concurrency) != 2 or not all(isinstance(c, int) and c >= 1 for c in concurrency) or concurrency[0] > concurrency[1]:
            raise ValueError(f"concurrency must be a positive integer or a (min, max) pair, got {concurrency!r}")
        compute = ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    elif isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        compute = ray.data.ActorPoolStrategy(size=concurrency)
    else:
        raise ValueError(f"concurrency must be a positive integer or a (min, max) pair, got {concurrency!r}")
    if num_gpus < 0 or num_cpus < 0:
        raise ValueError(f"num_gpus and num_cpus must be >= 0, got {num_gpus!r} and {num_cpus!r}")
    path = Path(model)
    if not path.exists() and (str(model).startswith((".", "/")) or str(model).count("/") != 1):
        raise FileNotFoundError(f"{model} is neither an artifact directory nor a Hub repository id")
    model_ref = str(path.resolve()) if path.exists() else str(model)
    if num_gpus > 0 and providers in (None, "auto"):
        providers = None  # the actor picks GPU providers when Ray gave it a GPU
    threads = max(1, int(num_cpus)) if num_cpus else None
    return ds.map_batches(
        RelationExtractor,
        fn_constructor_kwargs=dict(
            model=model_ref, labels=labels, threshold=threshold, top_k=top_k, batch_size=batch_size,
            text_column=text_column, ner_column=ner_column, output_column=output_column, providers=providers,
            threads=threads, on_error=on_error, error_column=error_column, info_column=info_column),
        batch_size=batch_size,
        batch_format="numpy",
        compute=compute,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        zero_copy_batch=True,
    )


__all__ = ["RelationExtractor", "extract_dataset"]
