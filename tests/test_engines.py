"""The engines behind the runtime: OpenVINO against onnxruntime on the same artifact, engine choice and fallbacks."""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from glirel_runtime import engines
from glirel_runtime.engines import OnnxRuntimeEngine, OpenVINOEngine, create_engine, cpu_flags, has_bf16_units
from glirel_runtime.providers import create_session

import openvino  # noqa: F401  (the dev environment has the extra: a missing package is a failure, not a skip)

LABELS = ["founded by", "located in", "spouse", "place of birth"]
TEXTS = [
    ("Ada Lovelace was born in London and married William King .".split(), [(0, 1), (5, 5), (8, 9)]),
    ("Apple was founded by Steve Jobs in Cupertino .".split(), [(0, 0), (4, 5), (7, 7)]),
    ("Marie Curie worked in Paris with Pierre Curie , her husband , for many years .".split(), [(0, 1), (4, 4), (6, 7)]),
    ("Berlin is in Germany .".split(), [(0, 0), (3, 3)]),
]


def padded_batches(variant, cuts=((0, 3), (3, 4))) -> list[dict[str, np.ndarray]]:
    """One batch of TEXTS[i:j] per (i, j) in `cuts`; by default two batches of different shapes (the
    graph's axes are dynamic)."""
    runtime = variant.runtime()
    encoded = runtime.features.encode(LABELS, [w for w, _ in TEXTS], [s for _, s in TEXTS])
    return [runtime.features.pad(encoded[i:j]) for i, j in cuts]


def run_in_threads(work, workers: int) -> None:
    """`work(worker)` for each worker index, all at once in their own threads; any error is raised here."""
    errors: list[BaseException] = []

    def guarded(worker: int) -> None:
        try:
            work(worker)
        except BaseException as error:  # noqa: BLE001 - raised below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module", params=["bert-dot", "deberta-coref"])
def variant(request, variants):
    return variants[request.param]


def test_openvino_f32_matches_onnxruntime_fp32(variant):
    model_path = variant.artifact / "model.onnx"
    reference = OnnxRuntimeEngine(create_session(model_path, "cpu", threads=1))
    engine = OpenVINOEngine(model_path, threads=1, precision="f32")
    assert engine.providers == ["OpenVINO CPU f32"]
    assert sorted(engine.input_names) == sorted(reference.input_names)
    assert engine.output_names == reference.output_names
    for inputs in padded_batches(variant):
        expected, got = reference.run(inputs), engine.run(inputs)
        assert set(got) == set(expected)
        for name in expected:
            assert got[name].shape == expected[name].shape, name
            np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-4, err_msg=name)


def test_openvino_bf16_runs_and_reports_its_agreement(variants):
    """bf16 is approximate by design: the agreement is printed, not asserted (a tolerance picked from it would mean nothing)."""
    model_path = variants["bert-dot"].artifact / "model.onnx"
    engine = OpenVINOEngine(model_path, threads=1, precision="bf16")
    assert engine.precision == ("bf16" if has_bf16_units() else "f32")
    reference = OnnxRuntimeEngine(create_session(model_path, "cpu", threads=1))
    same, total, largest = 0, 0, 0.0
    for inputs in padded_batches(variants["bert-dot"]):
        expected, got = reference.run(inputs)["logits"], engine.run(inputs)["logits"]
        assert got.shape == expected.shape and got.dtype == np.float32 and np.isfinite(got).all()
        same += int((got.argmax(-1) == expected.argmax(-1)).sum())
        total += expected.shape[0] * expected.shape[1]
        largest = max(largest, float(np.abs(1 / (1 + np.exp(-got)) - 1 / (1 + np.exp(-expected))).max()))
    print(f"OpenVINO {engine.precision} vs onnxruntime fp32 (tiny random model): same top-1 label for {same}/{total} "
          f"padded pair rows; max |Δp| {largest:.4f}")


def test_openvino_engine_is_thread_safe(variants):
    """Each thread has its own infer request: concurrent calls give each caller its own result."""
    variant = variants["bert-dot"]
    engine = OpenVINOEngine(variant.artifact / "model.onnx", threads=1, precision="f32")
    batches = padded_batches(variant)
    expected = [engine.run(inputs)["logits"] for inputs in batches]
    results: dict[tuple[int, int], np.ndarray] = {}

    def work(worker: int) -> None:
        for repeat in range(5):
            k = (worker + repeat) % len(batches)
            results[(worker, repeat)] = engine.run(batches[k])["logits"]

    run_in_threads(work, 4)
    for (worker, repeat), logits in results.items():
        np.testing.assert_array_equal(logits, expected[(worker + repeat) % len(batches)])


def test_outputs_are_copies(variants):
    variant = variants["bert-dot"]
    engine = OpenVINOEngine(variant.artifact / "model.onnx", threads=1, precision="f32")
    first, second = padded_batches(variant)
    kept = engine.run(first)["logits"]
    snapshot = kept.copy()
    engine.run(second)
    np.testing.assert_array_equal(kept, snapshot)


@pytest.mark.parametrize("make", [lambda p: OpenVINOEngine(p, threads=1, precision="f32"),
                                  lambda p: OnnxRuntimeEngine(create_session(p, "cpu", threads=1))])
def test_wrong_inputs_name_the_input(variants, make):
    variant = variants["bert-dot"]
    engine = make(variant.artifact / "model.onnx")
    inputs = padded_batches(variant)[0]
    del inputs["span_index"]
    with pytest.raises(ValueError, match="missing \\['span_index'\\]"):
        engine.run(inputs)
    inputs = padded_batches(variant)[0]
    inputs["spans"] = inputs["span_index"]
    with pytest.raises(ValueError, match="unexpected \\['spans'\\]"):
        engine.run(inputs)


def test_create_engine_maps_providers(variants):
    model_path = variants["bert-dot"].artifact / "model.onnx"
    assert isinstance(create_engine(model_path, "openvino", threads=1), OpenVINOEngine)
    assert create_engine(model_path, ("openvino", {"precision": "f32"}), threads=1).precision == "f32"
    assert create_engine(model_path, [("OpenVINO", {"precision": "f32"})], threads=1).precision == "f32"
    assert create_engine(model_path, "openvino", threads=1, precision="f32").providers == ["OpenVINO CPU f32"]
    cpu = create_engine(model_path, "cpu", threads=1, allow_spinning=False)
    assert isinstance(cpu, OnnxRuntimeEngine) and cpu.providers == ["CPUExecutionProvider"] and cpu.io_binding is False
    assert cpu.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(ValueError, match="precision"):
        create_engine(model_path, "openvino", precision="fp8")
    with pytest.raises(ValueError, match="unknown OpenVINO options"):
        create_engine(model_path, ("openvino", {"device": "GPU"}))
    for providers in ("cpu", "openvino"):
        with pytest.raises(TypeError, match="io_binding"):
            create_engine(model_path, providers, io_binding="yes")
        with pytest.raises(TypeError, match="allow_spinning"):
            create_engine(model_path, providers, allow_spinning=1)


def test_missing_openvino_warns_and_runs_onnxruntime(variants, monkeypatch):
    monkeypatch.setattr(engines, "openvino_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="openvino package is not installed"):
        engine = create_engine(variants["bert-dot"].artifact / "model.onnx", "openvino", threads=1)
    assert isinstance(engine, OnnxRuntimeEngine) and engine.providers == ["CPUExecutionProvider"]


def test_graph_openvino_cannot_compile_warns_and_runs_onnxruntime(variants, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:84:\nModel wasn't fully converted.\nSummary:\n"
                           "-- No conversion rule found for operations: com.microsoft.QAttention\n\n")

    monkeypatch.setattr(engines, "OpenVINOEngine", refuse)
    with pytest.warns(RuntimeWarning, match=r"OpenVINO could not compile .*\(No conversion rule found for operations: com.microsoft.QAttention\)"):
        engine = create_engine(variants["bert-dot"].artifact / "model.onnx", "openvino", threads=1)
    assert isinstance(engine, OnnxRuntimeEngine)
    # "auto" made that choice itself: it takes onnxruntime without a warning (e.g. an int8 artifact)
    monkeypatch.setattr(engines, "has_bf16_units", lambda flags=None: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine = create_engine(variants["bert-dot"].artifact / "model.onnx", "auto", threads=1)
    assert isinstance(engine, OnnxRuntimeEngine) and engine.providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize("bf16, installed, expected", [(True, True, OpenVINOEngine), (True, False, OnnxRuntimeEngine),
                                                       (False, True, OnnxRuntimeEngine)])
def test_auto_picks_openvino_only_on_bf16_cpus_with_openvino(variants, monkeypatch, bf16, installed, expected):
    monkeypatch.setattr(engines, "has_bf16_units", lambda flags=None: bf16)
    monkeypatch.setattr(engines, "openvino_available", lambda: installed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" never warns about a choice it made itself
        engine = create_engine(variants["bert-dot"].artifact / "model.onnx", "auto", threads=1)
    assert isinstance(engine, expected)
    if expected is OpenVINOEngine:
        assert engine.precision in ("bf16", "f32")


def test_allow_spinning_session_option(variants):
    model_path = variants["bert-dot"].artifact / "model.onnx"
    entry = "session.intra_op.allow_spinning"
    assert create_session(model_path, "cpu", 1, allow_spinning=True).get_session_options().get_session_config_entry(entry) == "1"
    assert create_session(model_path, "cpu", 1, allow_spinning=False).get_session_options().get_session_config_entry(entry) == "0"
    with pytest.raises(TypeError, match="allow_spinning"):
        create_session(model_path, "cpu", 1, allow_spinning="no")


def test_cpu_flags_and_bf16_units(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_int8\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    flags = cpu_flags(info)
    assert {"avx2", "avx512f", "amx_bf16", "amx_int8"} <= flags and "fpu" in flags
    assert has_bf16_units(flags) and not has_bf16_units(frozenset({"avx2", "avx512_vnni"}))
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_openvino_keeps_the_graph_output_names_of_an_fp16_export(variants, tmp_path):
    """fp16 exports end in a Cast to float32; OpenVINO names that tensor twice, the engine keeps the contract's name."""
    from glirel_export import ExportOptions, export_checkpoint

    variant = variants["bert-dot"]
    export_checkpoint(variant.checkpoint, tmp_path / "fp16", ExportOptions(fp16=True))
    model_path = tmp_path / "fp16" / "model.onnx"
    reference = OnnxRuntimeEngine(create_session(model_path, "cpu", threads=1))
    engine = OpenVINOEngine(model_path, threads=1, precision="f32")
    assert engine.output_names == reference.output_names == ["logits"]
    assert sorted(engine.input_names) == sorted(reference.input_names)
    inputs = padded_batches(variant)[0]
    got, expected = engine.run(inputs), reference.run(inputs)
    assert set(got) == {"logits"} and got["logits"].shape == expected["logits"].shape


def test_int8_artifact_with_onnxruntime_only_ops_falls_back_to_onnxruntime(variants, tmp_path):
    """An --optimize --quantize int8 export holds QAttention, which OpenVINO cannot convert: warned, then onnxruntime runs it."""
    from glirel_export import ExportOptions, export_checkpoint

    variant = variants["bert-dot"]
    export_checkpoint(variant.checkpoint, tmp_path / "int8", ExportOptions(optimize=True, quantize="int8"))
    model_path = tmp_path / "int8" / "model.onnx"
    with pytest.warns(RuntimeWarning, match="OpenVINO could not compile .*QAttention"):
        engine = create_engine(model_path, "openvino", threads=1)
    assert isinstance(engine, OnnxRuntimeEngine)
    expected = OnnxRuntimeEngine(create_session(model_path, "cpu", threads=1)).run(padded_batches(variant)[0])["logits"]
    np.testing.assert_array_equal(engine.run(padded_batches(variant)[0])["logits"], expected)


def several_batches(variant) -> list[dict[str, np.ndarray]]:
    """Five batches of different shapes: enough to fill every throughput stream and reuse its requests."""
    return padded_batches(variant, ((0, 1), (1, 3), (3, 4), (0, 4), (2, 3)))


@pytest.mark.parametrize("threads, streams", [(2, "auto"), (2, 2), (2, 1), (1, "auto")])
def test_openvino_run_many_matches_run_in_order(variant, threads, streams):
    """Several batches in flight on the throughput streams give each batch its own outputs, in order (f32: within 1e-4)."""
    model_path = variant.artifact / "model.onnx"
    engine = OpenVINOEngine(model_path, threads=threads, precision="f32", streams=streams)
    reference = OnnxRuntimeEngine(create_session(model_path, "cpu", threads=1))
    batches = several_batches(variant)
    got = list(engine.run_many(iter(batches)))  # any iterable, consumed once
    assert len(got) == len(batches)
    for inputs, outputs in zip(batches, got):
        expected = reference.run(inputs)
        assert set(outputs) == set(expected)
        for name in expected:
            assert outputs[name].shape == expected[name].shape, name
            np.testing.assert_allclose(outputs[name], expected[name], rtol=0, atol=1e-4, err_msg=name)
    assert list(engine.run_many([])) == []
    np.testing.assert_allclose(next(engine.run_many([batches[1]]))["logits"], reference.run(batches[1])["logits"], rtol=0, atol=1e-4)


def test_openvino_run_many_takes_the_streams_only_when_it_can_fill_them(variants, monkeypatch):
    """Fewer batches than the streams take run one at a time on the latency stream (every thread on each)."""
    variant = variants["bert-dot"]
    engine = OpenVINOEngine(variant.artifact / "model.onnx", threads=2, precision="f32", streams=2)
    latency_calls = []
    run = engine.run
    monkeypatch.setattr(engine, "run", lambda inputs: latency_calls.append(1) or run(inputs))
    batches = several_batches(variant)
    in_flight = engine.batches_in_flight()
    assert 2 <= in_flight < len(batches)
    assert OpenVINOEngine(variant.artifact / "model.onnx", threads=1, precision="f32", streams=1).batches_in_flight() == 1
    expected = [run(inputs)["logits"] for inputs in batches]
    for count, on_latency_stream in ((1, 1), (in_flight - 1, in_flight - 1), (in_flight, 0), (len(batches), 0)):
        latency_calls.clear()
        got = [out["logits"] for out in engine.run_many(batches[:count])]
        assert len(latency_calls) == on_latency_stream, count
        for logits, want in zip(got, expected[:count]):
            np.testing.assert_allclose(logits, want, rtol=0, atol=1e-4)


def test_openvino_run_many_closed_early_or_failing_leaves_the_engine_usable(variants):
    variant = variants["bert-dot"]
    engine = OpenVINOEngine(variant.artifact / "model.onnx", threads=2, precision="f32", streams=2)
    batches = several_batches(variant)
    expected = [engine.run(inputs)["logits"] for inputs in batches]
    results = engine.run_many(batches)
    np.testing.assert_allclose(next(results)["logits"], expected[0], rtol=0, atol=1e-4)
    results.close()  # batches still in flight are waited for, not left running into the next call
    broken = dict(batches[2])
    del broken["span_index"]
    with pytest.raises(ValueError, match="missing \\['span_index'\\]"):
        list(engine.run_many(batches[:2] + [broken] + batches[3:]))
    for got, want in zip(engine.run_many(batches), expected):
        np.testing.assert_allclose(got["logits"], want, rtol=0, atol=1e-4)


def test_openvino_run_many_from_several_threads(variants):
    variant = variants["bert-dot"]
    engine = OpenVINOEngine(variant.artifact / "model.onnx", threads=2, precision="f32", streams=2)
    batches = several_batches(variant)
    expected = [engine.run(inputs)["logits"] for inputs in batches]
    results: dict[int, list[np.ndarray]] = {}

    def work(worker: int) -> None:
        order = batches[worker:] + batches[:worker]
        results[worker] = [out["logits"] for out in engine.run_many(order)]

    run_in_threads(work, 3)
    for worker, got in results.items():
        for logits, want in zip(got, expected[worker:] + expected[:worker]):
            np.testing.assert_allclose(logits, want, rtol=0, atol=1e-4)


def test_openvino_streams_option_is_checked(variants):
    model_path = variants["bert-dot"].artifact / "model.onnx"
    assert create_engine(model_path, ("openvino", {"precision": "f32"}), threads=1).streams == 1  # the default
    assert create_engine(model_path, ("openvino", {"precision": "f32", "streams": "auto"}), threads=1).streams == "auto"
    for bad in (0, -1, 1.5, True, "2", None):
        with pytest.raises(ValueError, match="streams must be a positive integer"):
            OpenVINOEngine(model_path, threads=1, precision="f32", streams=bad)
    with pytest.raises(ValueError, match="known: \\['precision', 'streams'\\]"):
        create_engine(model_path, ("openvino", {"stream": 2}))


def test_pipeline_over_many_batches_on_openvino_matches_onnxruntime(variant):
    """The whole pipeline with one text per batch on two OpenVINO streams (batches overlap): the same
    relations as onnxruntime at a real threshold, scores within 1e-4."""
    from glirel_runtime import GLiREL

    texts = [words for words, _ in TEXTS]
    ner = [[[s, e, "ENT", " ".join(words[s:e + 1])] for s, e in spans] for words, spans in TEXTS]
    onnxruntime_model = GLiREL(variant.artifact, providers="cpu", threads=1)
    openvino_model = GLiREL(variant.artifact, providers=("openvino", {"precision": "f32", "streams": 2}), threads=2)
    expected = onnxruntime_model.score_pairs(texts, LABELS, ner, batch_size=1)
    got = openvino_model.score_pairs(texts, LABELS, ner, batch_size=1)
    for want, have in zip(expected, got):
        np.testing.assert_array_equal(have.heads, want.heads)
        np.testing.assert_array_equal(have.tails, want.tails)
        np.testing.assert_allclose(have.probabilities, want.probabilities, rtol=0, atol=1e-4)
    threshold = onnxruntime_model.config.default_threshold

    def decisions(model):
        found = model.batch_predict_relations(texts, LABELS, ner=ner, threshold=threshold, batch_size=1)
        return [[(r["head_pos"], r["tail_pos"], r["label"]) for r in relations] for relations in found]

    assert decisions(openvino_model) == decisions(onnxruntime_model)
