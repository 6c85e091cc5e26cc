"""Ray Data bulk extraction on a real local Ray cluster, and GPU placement on a two-node cluster."""
from __future__ import annotations

import pytest
import ray
from ray.cluster_utils import Cluster

from glirel_runtime.integrations.ray import extract_dataset

RAY_ARGS = dict(object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
LABELS = ["place of birth", "founded by", "capital of", "spouse"]
SENTENCES = [
    ("Marie Curie was born in Warsaw and worked in Paris with Pierre Curie .", [[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"], [9, 9, "LOC", "Paris"], [11, 12, "PER", "Pierre Curie"]]),
    ("Apple was founded by Steve Jobs in Cupertino , California , in 1976 .", [[0, 0, "ORG", "Apple"], [4, 5, "PER", "Steve Jobs"], [7, 7, "LOC", "Cupertino"], [9, 9, "LOC", "California"], [12, 12, "DATE", "1976"]]),
    ("Ada Lovelace , daughter of Lord Byron , wrote the first program .", [[0, 1, "PER", "Ada Lovelace"], [5, 6, "PER", "Lord Byron"]]),
    ("Berlin is the capital of Germany .", [[0, 0, "LOC", "Berlin"], [5, 5, "LOC", "Germany"]]),
    ("Tokyo is the capital of Japan .", [[0, 0, "LOC", "Tokyo"], [5, 5, "LOC", "Japan"]]),
    ("Binsey lies along the Upper River Thames near Oxford .", [[0, 0, "LOC", "Binsey"], [4, 6, "LOC", "Upper River Thames"], [8, 8, "LOC", "Oxford"]]),
    ("Nobody here .", [[0, 0, "PER", "Nobody"]]),
]


def rows(count: int, tokens: bool = False) -> list[dict]:
    out = []
    for i in range(count):
        text, ner = SENTENCES[i % len(SENTENCES)]
        out.append({"id": i, "text": text.split() if tokens else text, "ner": ner})
    return out


def assert_same(got: list, want: list) -> None:
    """Relations equal the runtime's: every field exactly, scores to float32 round-off."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k != "score"} == {k: v for k, v in w.items() if k != "score"}
        assert g["score"] == pytest.approx(w["score"], rel=1e-5, abs=1e-6)


def check(output: list[dict], runtime, source: list[dict], threshold: float, top_k: int = -1) -> int:
    output = sorted(output, key=lambda row: row["id"])
    assert [row["id"] for row in output] == [row["id"] for row in source]
    want = runtime.batch_predict_relations([r["text"] for r in source], LABELS, ner=[r["ner"] for r in source],
                                           threshold=threshold, top_k=top_k)
    for row, expected in zip(output, want):
        assert_same(list(row["relations"]), expected)
    return sum(len(w) for w in want)


@pytest.fixture(scope="module")
def local_ray():
    assert not ray.is_initialized()
    ray.init(num_cpus=2, **RAY_ARGS)
    yield
    ray.shutdown()


def test_extract_dataset_equals_runtime(local_ray, artifact, runtime):
    source = rows(14)
    out = extract_dataset(ray.data.from_items(source, override_num_blocks=4), model=artifact, labels=LABELS,
                          batch_size=3, concurrency=2, threshold=0.3)
    assert check(out.take_all(), runtime, source, 0.3) > 0


def test_token_lists_constraints_and_top_k(local_ray, artifact, runtime):
    source = rows(7, tokens=True)
    constrained = {"glirel_labels": {"place of birth": {"allowed_head": ["PER"], "allowed_tail": ["LOC"]},
                                     "capital of": {"allowed_head": ["LOC"], "allowed_tail": ["LOC"]}}}
    out = extract_dataset(ray.data.from_items(source), model=str(artifact), labels=constrained, batch_size=4,
                          threshold=0.0, top_k=1).take_all()
    out = sorted(out, key=lambda row: row["id"])
    want = runtime.batch_predict_relations([r["text"] for r in source], constrained, ner=[r["ner"] for r in source],
                                           threshold=0.0, top_k=1)
    assert sum(len(w) for w in want) > 0
    for row, expected in zip(out, want):
        assert_same(list(row["relations"]), expected)
        assert list(row["text"]) == source[row["id"]]["text"]  # input columns pass through


def test_invalid_rows_are_reported_or_raised(local_ray, artifact, runtime):
    source = rows(4)
    source[2] = {"id": 2, "text": "Too short .", "ner": [[0, 0, "X", "Too"], [5, 6, "Y", "?"]]}  # outside the text
    out = extract_dataset(ray.data.from_items(source), model=artifact, labels=LABELS, on_error="return",
                          threshold=0.3).take_all()
    out = sorted(out, key=lambda row: row["id"])
    assert [row["error"] is None for row in out] == [True, True, False, True]
    assert "outside the text's 3 words" in out[2]["error"]
    assert list(out[2]["relations"]) == []
    good = [r for r in source if r["id"] != 2]
    check([r for r in out if r["id"] != 2], runtime, good, 0.3)
    with pytest.raises(Exception, match="outside the text's 3 words"):
        extract_dataset(ray.data.from_items(source), model=artifact, labels=LABELS).take_all()


def test_arguments_are_checked_before_anything_runs(artifact):
    ds = object()  # never touched: every check fails first
    with pytest.raises(ValueError, match="labels is empty"):
        extract_dataset(ds, model=artifact, labels=[])
    with pytest.raises(ValueError, match="threshold"):
        extract_dataset(ds, model=artifact, labels=LABELS, threshold=1.5)
    with pytest.raises(ValueError, match="concurrency"):
        extract_dataset(ds, model=artifact, labels=LABELS, concurrency=0)
    with pytest.raises(FileNotFoundError, match="neither an artifact directory"):
        extract_dataset(ds, model=artifact.parent / "missing", labels=LABELS)


def test_gpu_actors_land_on_the_gpu_node(artifact, runtime):
    """Two nodes, one with a logical GPU: GPU actors are placed there, see CUDA_VISIBLE_DEVICES,
    ask for TensorRT/CUDA, fall back to CPU with a warning (no GPU here) and still give the same results."""
    ray.shutdown()  # leave any local cluster for the two-node one (local_ray's teardown is then a no-op)
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, object_store_memory=RAY_ARGS["object_store_memory"]))
    try:
        gpu_node = cluster.add_node(num_cpus=1, num_gpus=1, object_store_memory=RAY_ARGS["object_store_memory"])
        ray.init(address=cluster.address, log_to_driver=False)
        assert ray.cluster_resources().get("GPU") == 1
        source = rows(8)
        out = extract_dataset(ray.data.from_items(source), model=artifact, labels=LABELS, batch_size=4,
                              num_gpus=1, threshold=0.3, info_column="where").take_all()
        assert check(out, runtime, source, 0.3) > 0
        for row in out:
            where = row["where"]
            assert where["node_id"] == gpu_node.node_id
            assert where["cuda_visible_devices"] == "0"
            assert list(where["providers"]) == ["CPUExecutionProvider"]
            assert any("CUDAExecutionProvider" in w for w in where["warnings"]), where["warnings"]
    finally:
        ray.shutdown()
        cluster.shutdown()
