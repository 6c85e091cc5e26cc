"""Inference engines: one object per backend that runs the artifact's ONNX graph.

Every engine has the same small interface, so the pipeline does not care which one runs:

* ``run(inputs) -> dict[str, np.ndarray]``: the graph's outputs by name;
* ``input_names`` / ``output_names``: the graph's inputs and outputs;
* ``providers``: what actually runs the graph, for display and logs;
* optionally ``run_many(inputs_iterable) -> Iterator[dict]``: the outputs of many batches in order,
  overlapping them (`run_in_order` falls back to one `run` after another for engines without it).

Backends:

* `OnnxRuntimeEngine`: an onnxruntime session (CPU, CUDA, TensorRT), optionally through an IO binding;
* `OpenVINOEngine`: Intel's OpenVINO runtime reading the same ``model.onnx`` (``pip install
  "glirel-onnx[openvino]"``); bf16 on CPUs with AMX or AVX-512 bf16 units, f32 elsewhere.

`create_engine` picks one from a ``providers`` value: ``"openvino"`` (or ``("openvino",
{"precision": "f32"})``) gives OpenVINO, anything else onnxruntime (see
`glirel_runtime.providers.resolve_providers`). ``"auto"`` gives OpenVINO bf16 only when this CPU
has bf16 units, OpenVINO is installed and onnxruntime has no GPU provider; otherwise onnxruntime's
own ``"auto"``. When OpenVINO is asked for but missing, or cannot read the graph, a
`RuntimeWarning` says so and onnxruntime's CPU provider runs instead.

Example:
    >>> engine = create_engine("models/glirel-minilm-fewrel/model.onnx", "cpu", threads=2)  # doctest: +SKIP
    >>> engine.providers  # doctest: +SKIP
    ['CPUExecutionProvider']
    >>> logits = engine.run(inputs)["logits"]  # doctest: +SKIP
"""
from __future__ import annotations

import itertools
import threading
import warnings
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Protocol, Sequence, Union

import numpy as np

from .artifact import BLOCKED_PAIR_HEAD_NODE, GRAPH_INPUTS, GRAPH_OUTPUTS
from .providers import CPU, CUDA, TENSORRT, ProviderSpec, create_session, run_with_io_binding, uses_gpu

OPENVINO = "openvino"
PRECISIONS = ("auto", "bf16", "f32")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
OPENVINO_OPTIONS = ("precision", "streams")
# The throughput streams' compilation runs without OpenVINO's "snippets" subgraphs. In an interleaved probe
# on a 2-core Intel Xeon (AMX, OpenVINO 2026.4.1), 256 FewRel-shaped sentences, two streams gave 1.16x one
# stream without snippets and 1.04x with them. The one latency stream keeps them: they fuse the dense pair
# head (without them a batch at 50 entities ran 10% slower in the same probe).
THROUGHPUT_CONFIG = {"SNIPPETS_MODE": "DISABLE"}
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


class Engine(Protocol):
    """What the pipeline needs from a backend."""

    input_names: list[str]
    output_names: list[str]
    providers: list[str]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        ...


def cpu_flags(cpuinfo: Union[str, Path] = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU listed in `cpuinfo` (empty where there is none, e.g. macOS).

    Example:
        >>> "avx2" in cpu_flags() or not cpu_flags()
        True
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def has_bf16_units(flags: Optional[frozenset[str]] = None) -> bool:
    """Whether the CPU computes in bf16 natively (AMX-BF16 or AVX-512 BF16).

    Example:
        >>> has_bf16_units(frozenset({"avx2", "avx512f"})), has_bf16_units(frozenset({"amx_bf16"}))
        (False, True)
    """
    return any(flag in (cpu_flags() if flags is None else flags) for flag in BF16_FLAGS)


@lru_cache(maxsize=1)
def openvino_available() -> bool:
    """Whether the `openvino` package can be imported.

    Example:
        >>> openvino_available() in (True, False)
        True
    """
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _check_inputs(inputs: Mapping[str, np.ndarray], expected: Sequence[str]) -> None:
    missing = [name for name in expected if name not in inputs]
    extra = [name for name in inputs if name not in expected]
    if missing or extra:
        raise ValueError(f"graph inputs do not match: missing {missing}, unexpected {extra} (the graph takes {list(expected)})")


def run_in_order(engine: Engine, batches: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    """Each batch's outputs, in order: through the engine's own `run_many` when it has one (which may run
    several batches at once), else one `run` after another. Close the iterator (or exhaust it) before
    reusing the engine on this thread.

    Example:
        >>> class Doubler:
        ...     def run(self, inputs): return {"y": inputs["x"] * 2}
        >>> [out["y"].tolist() for out in run_in_order(Doubler(), [{"x": np.ones(2)}, {"x": np.zeros(1)}])]
        [[2.0, 2.0], [0.0]]
    """
    run_many = getattr(engine, "run_many", None)
    if run_many is not None:
        yield from run_many(batches)
        return
    for inputs in batches:
        yield engine.run(inputs)


class OnnxRuntimeEngine:
    """An onnxruntime `InferenceSession` behind the engine interface.

    `io_binding`: run through an IO binding (default: on CUDA/TensorRT only). The session is
    kept as `session` (onnxruntime's object, for its provider options and profiling).

    Example:
        >>> from glirel_runtime.providers import create_session  # doctest: +SKIP
        >>> engine = OnnxRuntimeEngine(create_session("model.onnx", "cpu"))  # doctest: +SKIP
        >>> sorted(engine.run(inputs))  # doctest: +SKIP
        ['logits']
    """

    def __init__(self, session: Any, io_binding: Optional[bool] = None):
        if io_binding is not None and not isinstance(io_binding, bool):
            raise TypeError(f"io_binding must be True, False or None, got {io_binding!r}")
        self.session = session
        self.io_binding = uses_gpu(session) if io_binding is None else io_binding
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        _check_inputs(inputs, self.input_names)
        if self.io_binding:
            results = run_with_io_binding(self.session, dict(inputs), self.output_names)
        else:
            results = self.session.run(self.output_names, dict(inputs))
        return dict(zip(self.output_names, results))

    def __repr__(self) -> str:
        return f"OnnxRuntimeEngine(providers={self.providers}, io_binding={self.io_binding})"


class OpenVINOEngine:
    """The artifact's ONNX graph compiled by OpenVINO for the CPU, dynamic shapes.

    `precision`: "bf16" (AMX / AVX-512 BF16 units; scores move by about 1e-2, decisions near the
    threshold can flip), "f32" (within 1e-4 of onnxruntime) or "auto" (bf16 where the CPU has
    the units, else f32). `threads`: OpenVINO's inference threads (None: all cores).
    `streams`: how `run_many` (calls of several batches) runs. 1 (default): every batch on the one
    latency stream that `run` uses, with every thread. An integer N ≥ 2, or "auto" (OpenVINO's
    choice): a second compilation of the graph, made on the first such call (roughly 250 MB more
    memory), runs N batches at once, the threads split between them (OpenVINO gives at most one
    stream per thread). On a 2-core Xeon two streams gave 1.08-1.13x for short sentences with few
    entities (FewRel-shaped) and 0.80-0.94x for 120-word texts: measure yours
    (`python -m benchmarks.openvino_streams`). A call with fewer batches than the streams take runs on
    the latency stream.
    Safe to call from several threads: each thread gets its own infer requests.

    Example:
        >>> engine = OpenVINOEngine("models/glirel-minilm-fewrel/model.onnx", threads=2, precision="f32")  # doctest: +SKIP
        >>> engine.providers  # doctest: +SKIP
        ['OpenVINO CPU f32']
        >>> outputs = list(engine.run_many([inputs_a, inputs_b]))  # in order  # doctest: +SKIP
    """

    def __init__(self, model_path: Union[str, Path], threads: Optional[int] = None, precision: str = "auto",
                 streams: Union[int, str] = 1):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        if streams != "auto" and (isinstance(streams, bool) or not isinstance(streams, int) or streams < 1):
            raise ValueError(f'streams must be a positive integer or "auto", got {streams!r}')
        import openvino as ov

        bf16 = has_bf16_units()
        if precision == "auto":
            precision = "bf16" if bf16 else "f32"
        elif precision == "bf16" and not bf16:
            warnings.warn("precision='bf16' asked, but this CPU has no bf16 units (amx_bf16 / avx512_bf16): running f32",
                          RuntimeWarning, stacklevel=2)
            precision = "f32"
        self.precision, self.threads, self.streams = precision, threads, streams
        self.model_path = Path(model_path)
        self._core = ov.Core()
        model = self._read_model()
        # a tensor may carry several names (compiling adds some, e.g. for an output Cast): keep the ONNX graph's
        self.input_names = [_graph_name(port, GRAPH_INPUTS) for port in model.inputs]
        self.output_names = [_graph_name(port, GRAPH_OUTPUTS) for port in model.outputs]
        self.compiled = self._compile(model, {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1})
        self.providers = [f"OpenVINO CPU {precision}"]
        self._throughput: Any = None  # the multi-stream compilation, made by the first run_many that needs it
        self._throughput_lock = threading.Lock()
        self._local = threading.local()

    def _read_model(self) -> Any:
        model = self._core.read_model(str(self.model_path))
        self.dense_pair_head = densify_pair_head(model)
        return model

    def _compile(self, model: Any, performance: dict[str, Any]) -> Any:
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": self.precision, **performance}
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = self.threads
        return self._core.compile_model(model, "CPU", config)

    def _request(self):
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return request

    def _stream_requests(self) -> list[Any]:
        """This thread's infer requests on the throughput compilation (compiled on first use)."""
        requests = getattr(self._local, "stream_requests", None)
        if requests is None:
            with self._throughput_lock:
                if self._throughput is None:
                    performance: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT", **THROUGHPUT_CONFIG}
                    if self.streams != "auto":
                        performance["NUM_STREAMS"] = self.streams
                    self._throughput = self._compile(self._read_model(), performance)
            count = max(int(self._throughput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")), 1)
            requests = self._local.stream_requests = [self._throughput.create_infer_request() for _ in range(count)]
        for request in requests:  # a run_many left unfinished may still hold one
            request.wait()
        return requests

    def batches_in_flight(self) -> int:
        """How many batches `run_many` keeps running at once (1 with ``streams=1``); asking compiles the
        throughput graph if no call has yet."""
        return 1 if self.streams == 1 else len(self._stream_requests())

    def _outputs(self, request: Any) -> dict[str, np.ndarray]:
        # copies: the request's output tensors are overwritten by its next call
        return {name: np.array(request.get_tensor(name).data) for name in self.output_names}

    def _prepared(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        _check_inputs(inputs, self.input_names)
        return {name: np.ascontiguousarray(array) for name, array in inputs.items()}

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = self._request()
        request.infer(self._prepared(inputs))
        return self._outputs(request)

    def run_many(self, batches: Iterable[Mapping[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """Each batch's outputs, in order. With `streams` other than 1 and at least as many batches as the
        throughput streams take, they run there, several at once; the next batch is started before a
        finished one is handed back, so the caller's work between batches overlaps inference. Otherwise
        they run one at a time on the latency stream, which gives each batch every thread."""
        upcoming = iter(batches)
        ahead = list(itertools.islice(upcoming, 2))
        # the streams (compiled on first use) only for two batches or more, and only as many as fill them all
        idle = list(self._stream_requests()) if len(ahead) == 2 and self.streams != 1 else []
        ahead += itertools.islice(upcoming, max(len(idle) - len(ahead), 0))
        if not idle or len(ahead) < len(idle):  # one batch at a time on the latency stream, every thread on each
            for inputs in itertools.chain(ahead, upcoming):
                yield self.run(inputs)
            return
        in_flight: deque = deque()  # requests in submission order
        try:
            for inputs in itertools.chain(ahead, upcoming):
                prepared = self._prepared(inputs)
                finished = None
                if not idle:  # every stream is busy: wait for the oldest batch, start this one in its place
                    oldest = in_flight.popleft()
                    oldest.wait()
                    finished = self._outputs(oldest)
                    idle.append(oldest)
                request = idle.pop()
                request.start_async(prepared)
                in_flight.append(request)
                if finished is not None:
                    yield finished
            while in_flight:
                oldest = in_flight[0]
                oldest.wait()
                in_flight.popleft()
                yield self._outputs(oldest)
        finally:  # closed early or failed: no request is left running into the next call
            for request in in_flight:
                try:
                    request.wait()
                except Exception:  # noqa: BLE001 - the first error is already on its way to the caller
                    pass

    def __repr__(self) -> str:
        return f"OpenVINOEngine({str(self.model_path)!r}, precision={self.precision!r})"


def densify_pair_head(model: Any) -> bool:
    """Replace the graph's blocked all-pairs Loop (`artifact.BLOCKED_PAIR_HEAD_NODE`) in an OpenVINO
    model by the same arithmetic in one dense pass, which OpenVINO's fused kernels run faster.

    The Loop's body reads three tensors from the outer graph: ``head`` [B, E, 4D] (gathered per
    iteration), ``tail`` [B, E, 4D] (added) and ``folded`` [B, 4D, L] (multiplied); its stacked output is
    [E, B, E, L]. Returns whether a Loop was replaced.
    """
    import openvino.opset13 as ops

    replaced = False
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Loop" or op.get_friendly_name() != BLOCKED_PAIR_HEAD_NODE:
            continue
        body = op.get_function()
        parameters = list(body.get_parameters())
        outer = {d.body_parameter_index: op.input_value(d.input_index) for d in op.get_input_descriptions()}

        def outer_value(body_op_type: str, port: int) -> Any:
            node = next(b for b in body.get_ordered_ops() if b.get_type_name() == body_op_type)
            return outer[parameters.index(node.input_value(port).get_node())]

        head, tail, folded = outer_value("Gather", 0), outer_value("Add", 1), outer_value("MatMul", 1)
        hidden = ops.relu(ops.add(ops.unsqueeze(head, 2), ops.unsqueeze(tail, 1)))  # [B, E, E, 4D]
        scores = ops.matmul(hidden, ops.unsqueeze(folded, 1), False, False)  # [B, E, E, L]
        op.output(0).replace(ops.transpose(scores, [1, 0, 2, 3]).output(0))  # the Loop's layout [E, B, E, L]
        replaced = True
    if replaced:
        model.validate_nodes_and_infer_types()
    return replaced


def _graph_name(port: Any, contract: Mapping[str, Any]) -> str:
    """The name of an OpenVINO port as the artifact contract spells it (any of its names otherwise)."""
    names = port.get_names()
    return next((name for name in contract if name in names), port.get_any_name())


def _openvino_request(providers: Any) -> Optional[dict[str, Any]]:
    """OpenVINO's options when `providers` asks for OpenVINO: "openvino", ("openvino", {...}), or a list led by either."""
    if isinstance(providers, tuple) and len(providers) == 2 and isinstance(providers[1], dict):
        spec = providers  # one (name, options) pair
    elif isinstance(providers, (list, tuple)) and providers:
        spec = providers[0]
    else:
        spec = providers
    if isinstance(spec, str):
        return {} if spec.lower() == OPENVINO else None
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and spec[0].lower() == OPENVINO:
        if not isinstance(spec[1], dict):
            raise TypeError(f"OpenVINO options must be a dict, got {type(spec[1]).__name__}")
        unknown = set(spec[1]) - set(OPENVINO_OPTIONS)
        if unknown:
            raise ValueError(f"unknown OpenVINO options {sorted(unknown)} (known: {list(OPENVINO_OPTIONS)})")
        return dict(spec[1])
    return None


def _auto_picks_openvino() -> bool:
    import onnxruntime as ort

    gpu = any(name in ort.get_available_providers() for name in (CUDA, TENSORRT))
    return not gpu and has_bf16_units() and openvino_available()


def create_engine(
    model_path: Union[str, Path], providers: Union[str, Sequence[ProviderSpec]] = "auto", threads: Optional[int] = None, *,
    io_binding: Optional[bool] = None, allow_spinning: Optional[bool] = None, precision: str = "auto",
    tensorrt_options: Optional[dict[str, Any]] = None,
) -> Union[OnnxRuntimeEngine, OpenVINOEngine]:
    """The engine `providers` asks for; warns and runs onnxruntime's CPU provider when OpenVINO cannot run.

    `providers`: "openvino" / ("openvino", {"precision": ...}) for OpenVINO; "auto"; or anything
    `glirel_runtime.providers.create_session` takes. `precision` is OpenVINO's (ignored by
    onnxruntime). `allow_spinning`: whether onnxruntime's idle intra-op threads busy-wait
    (None: onnxruntime's default, on); off costs a little latency alone and saves the cores
    other processes need under contention. `io_binding`: see `OnnxRuntimeEngine`.

    Example:
        >>> engine = create_engine("model.onnx", "openvino", threads=2)  # doctest: +SKIP
        >>> engine.providers  # doctest: +SKIP
        ['OpenVINO CPU bf16']
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if io_binding is not None and not isinstance(io_binding, bool):
        raise TypeError(f"io_binding must be True, False or None, got {io_binding!r}")
    if allow_spinning is not None and not isinstance(allow_spinning, bool):
        raise TypeError(f"allow_spinning must be True, False or None, got {allow_spinning!r}")
    options = _openvino_request(providers)
    chosen_by_auto = options is None and providers == "auto" and _auto_picks_openvino()
    if chosen_by_auto:
        options = {}
    if options is not None:
        if not openvino_available():
            warnings.warn('OpenVINO was asked for but the openvino package is not installed (pip install "glirel-onnx[openvino]"); '
                          "running on onnxruntime's CPUExecutionProvider", RuntimeWarning, stacklevel=2)
            providers = [CPU]
        else:
            try:
                return OpenVINOEngine(model_path, threads, options.get("precision", precision), options.get("streams", 1))
            except (ValueError, TypeError):
                raise
            except Exception as error:  # OpenVINO cannot read or compile this graph (e.g. onnxruntime-only int8 ops)
                if not chosen_by_auto:  # "auto" quietly takes onnxruntime, as it would on any other CPU
                    lines = [line.strip(" -") for line in str(error).splitlines() if line.strip(" -")]
                    reason = lines[-1] if lines else type(error).__name__  # OpenVINO's summary comes last
                    warnings.warn(f"OpenVINO could not compile {model_path} ({reason}); running on onnxruntime's "
                                  "CPUExecutionProvider", RuntimeWarning, stacklevel=2)
                    providers = [CPU]
    session = create_session(model_path, providers, threads, tensorrt_options=tensorrt_options, allow_spinning=allow_spinning)
    return OnnxRuntimeEngine(session, io_binding=io_binding)
