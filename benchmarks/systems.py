"""The benchmarked systems, each in its own process, timed round-robin.

Why processes: PyTorch's OpenMP threads and every onnxruntime session's intra-op
pool busy-wait for a while after each call. With several systems in one process
those spinning threads steal the cores of whichever system runs next (measured
on 2 cores: `glirel` at 10 sentences/s in-process vs 61 alone). Here every
system lives in a spawned worker process that loads it once; the parent sends
the same inputs to each worker in turn (rotating the order each repeat, with a
short pause between calls so spinning threads go idle) and times the call
inside the worker.

Example:
    >>> spec = SystemSpec("runtime", path="models/glirel-minilm-fewrel", threads=2)  # doctest: +SKIP
    >>> with SystemProcess("runtime fp32", spec) as system:  # doctest: +SKIP
    ...     seconds, relations = system.call("predict", texts, labels, ner)
"""
from __future__ import annotations

import multiprocessing
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAUSE_S = 0.3  # between two timed calls: lets the previous system's spinning threads go idle


def chunks(seq: list, size: int) -> list[list]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


class Reference:
    """glirel's PyTorch model, called the way its users call it: one batch of 32 at a time, input order."""

    def __init__(self, checkpoint: Path, threads: int, device: str = "cpu"):
        import torch
        from glirel import GLiREL as ReferenceGLiREL

        torch.set_num_threads(threads)
        self.model = ReferenceGLiREL._from_pretrained(
            model_id=str(checkpoint), revision=None, cache_dir=None, force_download=False, proxies=None,
            resume_download=False, local_files_only=True, token=None)
        self.model.eval()
        if device != "cpu":
            self.model.to(device)

    def predict(self, texts, labels, ner, threshold=0.5, batch_size=32, workload=None):
        # `workload` (ignored) is what the baselines read their inputs from
        import torch

        out = []
        with torch.no_grad():
            for t, n in zip(chunks(texts, batch_size), chunks(ner, batch_size)):
                # glirel mutates token lists when add_entity_markers is on: pass copies
                out += self.model.batch_predict_relations([list(x) for x in t], labels, ner=[[list(e) for e in y] for y in n],
                                                          threshold=threshold)
        return out


def runtime_model(artifact: Path, threads: int, providers="cpu", precision: str = "auto", allow_spinning=None, io_binding=None,
                  openvino_streams=None):
    """`glirel_runtime.GLiREL` on `providers` ("cpu", "cuda", "tensorrt", "openvino"), with OpenVINO's `precision`
    and `streams` (`openvino_streams`, None: the runtime's default) and onnxruntime's `allow_spinning`; raises when the
    engine fell back to another one (it would time the wrong thing)."""
    import inspect

    from glirel_runtime import GLiREL
    from glirel_runtime.engines import create_engine

    openvino = providers == "openvino"
    options = {"precision": precision, **({} if openvino_streams is None else {"streams": openvino_streams})}
    spec = ("openvino", options) if openvino else providers
    custom = openvino or allow_spinning is not None
    if custom and "allow_spinning" in inspect.signature(GLiREL.__init__).parameters:  # GLiREL builds the engine itself
        model = GLiREL(artifact, providers=spec, threads=threads, io_binding=io_binding, allow_spinning=allow_spinning)
    elif custom:  # GLiREL runs an engine it is given
        model = GLiREL(artifact, engine=create_engine(Path(artifact) / "model.onnx", spec, threads, allow_spinning=allow_spinning))
    else:
        model = GLiREL(artifact, providers=providers, threads=threads, io_binding=io_binding)
    running = list(model.providers)
    wanted = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider", "openvino": "OpenVINO CPU"}.get(providers)
    if wanted and not running[0].startswith(wanted):
        raise RuntimeError(f"asked for {wanted}; the runtime runs on {running}")
    return model


class Runtime:
    """glirel_runtime.GLiREL; `bucketing=False` feeds it one batch of 32 at a time in input order.

    `providers`: "cpu", "cuda", "tensorrt" or "openvino" (with `precision`, `openvino_streams`); `spinning=False`
    turns off onnxruntime's busy-waiting intra-op threads.
    """

    def __init__(self, artifact: Path, threads: int, bucketing: bool = True, providers: str = "cpu", spinning: bool = True,
                 io_binding: bool | None = None, precision: str = "auto", openvino_streams: int | None = None):
        self.model = runtime_model(artifact, threads, providers, precision, allow_spinning=None if spinning else False,
                                   io_binding=io_binding, openvino_streams=openvino_streams)
        self.bucketing = bucketing

    def predict(self, texts, labels, ner, threshold=0.5, batch_size=32, workload=None):
        if self.bucketing:  # the runtime sorts the whole call by length into batches
            return self.model.batch_predict_relations(texts, labels, ner=ner, threshold=threshold, batch_size=batch_size)
        out = []
        for t, n in zip(chunks(texts, batch_size), chunks(ner, batch_size)):
            out += self.model.batch_predict_relations(t, labels, ner=n, threshold=threshold, batch_size=batch_size)
        return out


class RelationPromptNGSystem:
    """benchmarks.baselines.RelationPromptNG behind the same `predict` signature as the GLiREL systems."""

    def __init__(self, threads: int, tiny: bool = False):
        import torch

        from benchmarks.baselines import RelationPromptNG

        torch.set_num_threads(threads)
        self.model = RelationPromptNG(tiny=tiny)

    def predict(self, texts, labels, ner, threshold=0.5, batch_size=32, workload=None):
        return self.model.predict(workload, batch_size=batch_size)


def relation_set(predictions) -> set:
    """(text index, head span, tail span, label) of every predicted relation."""
    out = set()
    for i, rels in enumerate(predictions):
        for r in rels:
            if isinstance(r, dict):
                out.add((i, tuple(r["head_pos"]), tuple(r["tail_pos"]), r["label"]))
    return out


@dataclass(frozen=True)
class SystemSpec:
    """What a worker loads: `kind` is "glirel" (checkpoint), "runtime" (artifact) or "relationprompt-ng"."""

    kind: str
    path: str = ""
    threads: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    def build(self):
        if self.kind == "glirel":
            return Reference(Path(self.path), self.threads, **self.options)
        if self.kind == "runtime":
            return Runtime(Path(self.path), self.threads, **self.options)
        if self.kind == "relationprompt-ng":
            return RelationPromptNGSystem(self.threads, **self.options)
        raise ValueError(f"unknown system kind {self.kind!r}")


def _serve(spec: SystemSpec, connection) -> None:
    """Worker loop: load the system, then answer (method, args, kwargs) with (seconds, relation list)."""
    try:
        system = spec.build()
    except BaseException:
        connection.send(("error", traceback.format_exc()))
        return
    connection.send(("ready", None))
    while True:
        message = connection.recv()
        if message is None:
            return
        method, args, kwargs = message
        try:
            started = time.perf_counter()
            result = getattr(system, method)(*args, **kwargs)
            seconds = time.perf_counter() - started
            connection.send(("ok", (seconds, sorted(relation_set(result)))))
        except BaseException:
            connection.send(("error", traceback.format_exc()))


class SystemProcess:
    """One system loaded in a spawned worker process; `call` runs one of its methods there and times it."""

    def __init__(self, name: str, spec: SystemSpec):
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(spec, child), daemon=True, name=f"bench:{name}")
        self._process.start()
        child.close()
        self._expect("ready")

    def _expect(self, status: str):
        try:
            got, payload = self._connection.recv()
        except EOFError:
            raise RuntimeError(f"{self.name}: worker process died (exit code {self._process.exitcode})") from None
        if got != status:
            raise RuntimeError(f"{self.name}: worker failed:\n{payload}")
        return payload

    def call(self, method: str, *args, **kwargs) -> tuple[float, list]:
        """(seconds inside the worker, sorted relation tuples) of `system.method(*args, **kwargs)`."""
        self._connection.send((method, args, kwargs))
        return self._expect("ok")

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._connection.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.kill()
        self._connection.close()

    def __enter__(self) -> "SystemProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def round_robin(systems: list[SystemProcess], args: tuple, kwargs: dict, repeats: int,
                load_average=None) -> dict[str, dict[str, Any]]:
    """Warm each system once on the same inputs, then `repeats` rounds of `predict(*args, **kwargs)`.

    The order rotates each round so a burst of outside load hits every system alike.
    Returns per system: seconds of each timed call, their median, the relations of the
    last call and the 1-minute load average before each call.
    """
    for system in systems:
        system.call("predict", *args, **kwargs)
    times: dict[str, list[float]] = {s.name: [] for s in systems}
    loads: dict[str, list[float]] = {s.name: [] for s in systems}
    relations: dict[str, list] = {}
    for r in range(repeats):
        for system in systems[r % len(systems):] + systems[:r % len(systems)]:
            time.sleep(PAUSE_S)
            if load_average is not None:
                loads[system.name].append(load_average())
            seconds, relations[system.name] = system.call("predict", *args, **kwargs)
            times[system.name].append(seconds)
    return {s.name: {"seconds": times[s.name], "median_s": statistics.median(times[s.name]), "relations": relations[s.name],
                     "load_avg_1min": loads[s.name]} for s in systems}
