"""Ray Serve application: a JSON HTTP endpoint for relation extraction, with dynamic batching.

Routes (under the application's route prefix):

``POST /``  request::

        {"text": "Ada Lovelace was born in London .",        # or "tokens": ["Ada", "Lovelace", ...]
         "entities": [[0, 1, "PER", "Ada Lovelace"], [5, 5, "LOC", "London"]],  # word spans, inclusive end
         "labels": ["place of birth"],     # or {"glirel_labels": {"place of birth": {"allowed_head": ["PER"],
                                           #   "allowed_tail": ["LOC"], "description": ..., "symmetric": false}}}
         "threshold": 0.5,                 # optional: a number or {"label": value, "*": other labels}
                                           # (default: the artifact's calibrated default_threshold)
         "top_k": -1}                      # optional

    response ``200 {"relations": [glirel's relation dicts]}``; ``400`` for a body that is
    not a JSON object (or is nested too deeply), ``413`` for a body over ``max_body_bytes``,
    ``422`` for a request that fails validation, ``500`` when the model fails on this request
    alone, each as ``{"error": message}``. A request never fails because of another request
    in the same batch: when a shared model call fails, each request is retried on its own.
``GET /health``  ``200 {"status": "ok", "model": ..., "providers": [...], "stats": {...}}``.

Concurrent requests are grouped by `@serve.batch` (up to `max_batch_size`, waiting at most
`batch_wait_timeout_s`); requests sharing labels, threshold and top_k run as one model batch.

Example:
    >>> from ray import serve
    >>> from glirel_runtime.integrations.serve import build_app
    >>> serve.run(build_app("models/glirel-minilm-fewrel", max_batch_size=16), route_prefix="/glirel")  # doctest: +SKIP
    >>> # curl -X POST localhost:8000/glirel -d '{"text": ..., "entities": ..., "labels": [...]}'

    or from the shell: ``serve run glirel_runtime.integrations.serve:app model=models/glirel-minilm-fewrel``.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Optional, Union

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..model import GLiREL
from ..validation import InputError, check_item, check_labels, check_top_k, label_thresholds

REQUEST_FIELDS = {"text", "tokens", "entities", "labels", "threshold", "top_k"}
DEFAULT_MAX_BODY_BYTES = 1_000_000


class RequestError(ValueError):
    """A request the endpoint refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ModelFailure(RuntimeError):
    """The model failed on one request (answered with 500); other requests are unaffected."""


def parse_request(body: bytes, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, Any]:
    """Check a request body; returns ``{"text", "ner", "labels", "threshold", "top_k"}`` (threshold may be None).

    Example:
        >>> parse_request(b'{"tokens": ["Ada", "met", "Byron"], "entities": [[0, 0, "PER"], [2, 2, "PER"]], "labels": ["spouse"]}')["top_k"]
        -1
        >>> parse_request(b'{"text": "Ada"}')
        Traceback (most recent call last):
        ...
        glirel_runtime.integrations.serve.RequestError: missing field 'entities': give the entities as [start, end_inclusive, type, text] word spans
    """
    if len(body) > max_body_bytes:
        raise RequestError(413, f"request body is {len(body)} bytes; the limit is {max_body_bytes}")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(400, f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise RequestError(400, "request body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise RequestError(400, f"request body must be a JSON object, got {type(payload).__name__}")
    unknown = sorted(set(payload) - REQUEST_FIELDS)
    if unknown:
        raise RequestError(422, f"unknown field(s) {unknown}; allowed: {sorted(REQUEST_FIELDS)}")
    if ("text" in payload) == ("tokens" in payload):
        raise RequestError(422, "give exactly one of 'text' (a string) and 'tokens' (a list of strings)")
    text = payload.get("text", payload.get("tokens"))
    if "text" in payload and not isinstance(text, str):
        raise RequestError(422, f"'text' must be a string, got {type(text).__name__}; use 'tokens' for a token list")
    if "tokens" in payload and not isinstance(text, list):
        raise RequestError(422, f"'tokens' must be a list of strings, got {type(text).__name__}")
    for name, hint in (("entities", "give the entities as [start, end_inclusive, type, text] word spans"),
                       ("labels", "give the relation labels as a list of strings")):
        if name not in payload:
            raise RequestError(422, f"missing field {name!r}: {hint}")
    threshold = payload.get("threshold")
    top_k = payload.get("top_k", -1)
    try:
        labels = payload["labels"]
        spec = check_labels(labels)
        if threshold is not None:  # a number, or a mapping label → value ("*": every other label)
            label_thresholds(threshold, spec, 0.5)
        top_k = check_top_k(top_k)
        check_item(text, payload["entities"])
    except (TypeError, ValueError) as error:
        raise RequestError(422, str(error)) from None
    return {"text": text, "ner": payload["entities"], "labels": labels, "threshold": threshold, "top_k": top_k}


@serve.deployment
class GLiRELServer:
    """One replica: a `GLiREL` session behind `@serve.batch`. Build it with `build_app`."""

    def __init__(
        self, model: Optional[str], providers: Union[str, list[Any]] = "auto", threads: Optional[int] = None,
        max_batch_size: int = 16, batch_wait_timeout_s: float = 0.01, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        self.model = GLiREL.from_pretrained(model, providers=providers, threads=threads)
        self.model_name = str(model if model is not None else self.model.artifact_dir)
        self.max_body_bytes = max_body_bytes
        self.default_threshold = float(self.model.config.default_threshold)
        self.extract_batch.set_max_batch_size(max_batch_size)
        self.extract_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self.stats = {"requests": 0, "batches": 0, "largest_batch": 0}

    async def __call__(self, request: Request) -> JSONResponse:
        path = request.url.path.rstrip("/")
        prefix = request.scope.get("root_path", "").rstrip("/")
        route = path[len(prefix):] if path.startswith(prefix) else path
        if route in ("/health", "/healthz"):
            if request.method != "GET":
                return JSONResponse({"error": "use GET for /health"}, status_code=405)
            return JSONResponse({"status": "ok", "model": self.model_name,
                                 "providers": self.model.providers, "stats": dict(self.stats)})
        if route != "":
            return JSONResponse({"error": f"no route {route!r}: POST / or GET /health"}, status_code=404)
        if request.method != "POST":
            return JSONResponse({"error": "use POST with a JSON body, or GET /health"}, status_code=405)
        try:
            item = parse_request(await request.body(), self.max_body_bytes)
        except RequestError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        result = await self.extract_batch(item)
        if isinstance(result, ModelFailure):
            return JSONResponse({"error": str(result)}, status_code=500)
        if isinstance(result, Exception):
            return JSONResponse({"error": str(result)}, status_code=422)
        return JSONResponse({"relations": result})

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def extract_batch(self, items: list[dict[str, Any]]) -> list[Union[list[dict[str, Any]], Exception]]:
        """Run a batch of checked requests; requests sharing labels/threshold/top_k share model batches."""
        self.stats["requests"] += len(items)
        self.stats["batches"] += 1
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
        return await asyncio.to_thread(self._run, items)

    def _run(self, items: list[dict[str, Any]]) -> list[Union[list[dict[str, Any]], Exception]]:
        results: list[Union[list[dict[str, Any]], Exception]] = [[] for _ in items]
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            threshold = self.default_threshold if item["threshold"] is None else item["threshold"]
            item["threshold"] = threshold
            groups.setdefault(json.dumps([item["labels"], threshold, item["top_k"]]), []).append(index)
        for indices in groups.values():
            for i, result in zip(indices, self._run_group(items, indices)):
                if isinstance(result, InputError):  # re-index the message to the request itself
                    result = ValueError("; ".join(result.errors.values()))
                results[i] = result
        return results

    def _run_group(self, items: list[dict[str, Any]], indices: list[int]) -> list[Union[list[dict[str, Any]], Exception]]:
        """One model call for requests sharing labels/threshold/top_k; if it fails, each request runs alone,
        so a request the model cannot handle fails by itself and never costs the others their answer."""
        first = items[indices[0]]
        try:
            return self.model.batch_predict_relations(
                [items[i]["text"] for i in indices], first["labels"], ner=[items[i]["ner"] for i in indices],
                threshold=first["threshold"], top_k=first["top_k"], batch_size=len(indices), on_error="return")
        except Exception as error:
            if len(indices) > 1:
                return [self._run_group(items, [i])[0] for i in indices]
            if isinstance(error, (TypeError, ValueError)):  # e.g. a label prompt longer than the encoder accepts
                return [error]
            return [ModelFailure(f"the model failed on this request: {type(error).__name__}: {error}")]

    def check_health(self) -> None:
        """Serve's replica health check: the session must still answer."""
        if not self.model.engine.output_names:
            raise RuntimeError("the model's engine has no outputs")


def build_app(
    model: Union[str, Path, None] = None, *, num_replicas: int = 1, max_batch_size: int = 16,
    batch_wait_timeout_s: float = 0.01, num_cpus: float = 1, num_gpus: float = 0,
    providers: Union[str, list[Any]] = "auto", threads: Optional[int] = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> serve.Application:
    """The Serve application; run it with ``serve.run(build_app(...), route_prefix=...)``.

    `model` is an artifact directory (readable by every replica), a Hub id, or None
    for the default model. Each replica reserves `num_cpus` and `num_gpus` (on a GPU
    replica, ``providers="auto"`` picks TensorRT/CUDA when onnxruntime has them).

    Example:
        >>> app = build_app("artifact_dir", num_replicas=2, max_batch_size=32)  # doctest: +SKIP
    """
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ValueError(f"max_batch_size must be a positive integer, got {max_batch_size!r}")
    if batch_wait_timeout_s < 0:
        raise ValueError(f"batch_wait_timeout_s must be >= 0, got {batch_wait_timeout_s!r}")
    if model is not None and Path(model).exists():
        model = str(Path(model).resolve())
    if threads is None and num_cpus >= 1:
        threads = int(num_cpus)
    deployment = GLiRELServer.options(
        num_replicas=num_replicas, ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus},
        max_ongoing_requests=max(2 * max_batch_size, 8))
    return deployment.bind(None if model is None else str(model), providers=providers, threads=threads,
                           max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s,
                           max_body_bytes=max_body_bytes)


def app(args: dict[str, str]) -> serve.Application:
    """Builder for ``serve run glirel_runtime.integrations.serve:app model=DIR max_batch_size=16 num_replicas=1``."""
    known = {"model": str, "num_replicas": int, "max_batch_size": int, "batch_wait_timeout_s": float,
             "num_cpus": float, "num_gpus": float, "providers": str, "threads": int}
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; known: {sorted(known)}")
    options = {name: known[name](value) for name, value in args.items()}
    return build_app(options.pop("model", None), **options)


__all__ = ["GLiRELServer", "ModelFailure", "RequestError", "app", "build_app", "parse_request"]
