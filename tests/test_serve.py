"""The Ray Serve application over real HTTP on 127.0.0.1: results, dynamic batching, 4xx errors, health."""
from __future__ import annotations

import socket
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import run_without_torch
import ray
import requests
from ray import serve

from glirel_runtime.integrations.serve import build_app

LABELS = ["place of birth", "founded by", "capital of", "spouse"]
SENTENCES = [
    ("Marie Curie was born in Warsaw and worked in Paris with Pierre Curie .", [[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"], [9, 9, "LOC", "Paris"], [11, 12, "PER", "Pierre Curie"]]),
    ("Apple was founded by Steve Jobs in Cupertino , California , in 1976 .", [[0, 0, "ORG", "Apple"], [4, 5, "PER", "Steve Jobs"], [7, 7, "LOC", "Cupertino"], [9, 9, "LOC", "California"]]),
    ("Ada Lovelace , daughter of Lord Byron , wrote the first program .", [[0, 1, "PER", "Ada Lovelace"], [5, 6, "PER", "Lord Byron"]]),
    ("Berlin is the capital of Germany .", [[0, 0, "LOC", "Berlin"], [5, 5, "LOC", "Germany"]]),
]
MAX_BODY = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(artifact):
    assert not ray.is_initialized()
    ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(artifact, max_batch_size=8, batch_wait_timeout_s=0.05, providers="cpu", max_body_bytes=MAX_BODY),
                  name="glirel", route_prefix="/glirel")
        yield f"http://127.0.0.1:{port}/glirel"
    finally:
        serve.shutdown()
        ray.shutdown()


def post(url: str, payload, **kwargs) -> requests.Response:
    return requests.post(url, json=payload, timeout=30, **kwargs)


def test_health(url):
    response = requests.get(f"{url}/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["providers"] == ["CPUExecutionProvider"]


def test_concurrent_requests_are_batched_and_equal_the_runtime(url, runtime):
    payloads = []
    for i in range(32):
        text, ner = SENTENCES[i % len(SENTENCES)]
        payload = {"text": text, "entities": ner, "labels": LABELS, "threshold": 0.3} if i % 2 else \
                  {"tokens": text.split(), "entities": ner, "labels": LABELS[: 2 + i % 3], "threshold": 0.2, "top_k": 1}
        payloads.append(payload)
    before = requests.get(f"{url}/health", timeout=10).json()["stats"]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda p: post(url, p), payloads))
    assert time.perf_counter() - started < 60
    found = 0
    for payload, response in zip(payloads, responses):
        assert response.status_code == 200, response.text
        want = runtime.predict_relations(payload.get("text", payload.get("tokens")), payload["labels"], ner=payload["entities"],
                                         threshold=payload["threshold"], top_k=payload.get("top_k", -1))
        assert response.json()["relations"] == want
        found += len(want)
    assert found > 0
    after = requests.get(f"{url}/health", timeout=10).json()["stats"]
    assert after["requests"] - before["requests"] == 32
    assert after["batches"] - before["batches"] < 32, "concurrent requests must share batches"
    assert after["largest_batch"] > 1


def test_constraints_and_default_threshold(url, runtime):
    text, ner = SENTENCES[0]
    labels = {"place of birth": {"allowed_head": ["PER"], "allowed_tail": ["LOC"]}, "spouse": {}}
    response = post(url, {"text": text, "entities": ner, "labels": labels})
    assert response.status_code == 200
    assert response.json()["relations"] == runtime.predict_relations(text, labels, ner=ner, threshold=runtime.config.default_threshold)


def test_five_hundred_labels_and_per_label_thresholds(url, runtime):
    text, ner = SENTENCES[0]
    labels = [f"rel {i}" for i in range(500)]  # short names: the request stays under the body limit
    thresholds = {labels[0]: 0.0, "*": 1.0}
    response = post(url, {"text": text, "entities": ner, "labels": labels, "threshold": thresholds})
    assert response.status_code == 200, response.text
    relations = response.json()["relations"]
    assert relations == runtime.predict_relations(text, labels, ner=ner, threshold=thresholds)
    assert relations and {r["label"] for r in relations} == {labels[0]}
    bad = post(url, {"text": text, "entities": ner, "labels": labels, "threshold": {"no such label": 0.5}})
    assert bad.status_code == 422 and "not in the label set" in bad.json()["error"]


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    ({"text": "Ada met Byron .", "labels": ["spouse"]}, 422, "missing field 'entities'"),
    ({"text": "Ada met Byron .", "entities": [[0, 0, "PER"], [2, 2, "PER"]]}, 422, "missing field 'labels'"),
    ({"entities": [], "labels": ["spouse"]}, 422, "exactly one of 'text'"),
    ({"text": ["Ada"], "entities": [], "labels": ["spouse"]}, 422, "use 'tokens'"),
    ({"text": "Ada met Byron .", "entities": [[0, 0, "PER"], [2, 2, "PER"]], "labels": []}, 422, "labels is empty"),
    ({"text": "Ada met Byron .", "entities": [[0, 0, "PER"], [2, 2, "PER"]], "labels": ["spouse"], "threshold": 2}, 422, "threshold must be in"),
    ({"text": "Ada met Byron .", "entities": [[0, 0, "PER"], [2, 2, "PER"]], "labels": ["spouse"], "top_k": 0}, 422, "top_k"),
    ({"text": "Ada met Byron .", "entities": [[0, 0, "PER"], [2, 2, "PER"]], "labels": ["spouse"], "colour": 1}, 422, "unknown field"),
    ({"text": "Ada met Byron .", "entities": [[0, 2, "PER", "Ada"], [8, 12, "PER", "Byron"]], "labels": ["spouse"]}, 422, "character offsets"),
    ({"text": " ".join(["word"] * 400), "entities": [[0, 0, "X"], [1, 1, "Y"]], "labels": ["spouse"]}, 422, "at most 384"),
    ({"text": "x " * 15_000, "entities": [], "labels": ["spouse"]}, 413, "limit is 20000"),
])
def test_bad_requests_get_clear_4xx(url, body, status, message):
    response = requests.post(url, data=body, timeout=30) if isinstance(body, bytes) else post(url, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_wrong_method_and_route(url):
    assert requests.get(url, timeout=10).status_code == 405
    assert requests.post(f"{url}/health", timeout=10).status_code == 405
    assert requests.get(f"{url}/nothing", timeout=10).status_code == 404
    # the service still answers after all the refusals
    text, ner = SENTENCES[3]
    assert post(url, {"text": text, "entities": ner, "labels": LABELS}).status_code == 200


def test_serve_and_ray_modules_never_import_torch():
    script = textwrap.dedent("""
        import glirel_runtime.integrations.ray, glirel_runtime.integrations.serve
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")]
        print("torch-free ok")
    """)
    result = run_without_torch(script)
    assert result.returncode == 0, result.stderr
    assert "torch-free ok" in result.stdout
