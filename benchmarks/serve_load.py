"""Load test of the Ray Serve application on loopback: requests/s and p50/p90/p99 latency.

Starts a local Ray instance and the `glirel_runtime.integrations.serve` application on 127.0.0.1,
sends a fixed number of requests from a fixed number of client threads (each with a
keep-alive connection), prints the figures and shuts everything down. Bounded: at most
``--requests`` requests, and it stops at ``--time-limit`` seconds.

    python benchmarks/serve_load.py --model models/glirel-minilm-fewrel --requests 300 --concurrency 16
    python benchmarks/serve_load.py --model DIR --concurrency 1 --max-batch-size 1   # no batching, for comparison
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LABELS = ["place of birth", "founded by", "headquartered in", "capital of", "spouse", "employer", "country", "member of"]
REQUESTS = [
    ("Marie Curie was born in Warsaw and worked in Paris with her husband Pierre Curie at the University of Paris .",
     [[0, 1, "PER", "Marie Curie"], [5, 5, "LOC", "Warsaw"], [9, 9, "LOC", "Paris"], [13, 14, "PER", "Pierre Curie"], [17, 19, "ORG", "University of Paris"]]),
    ("Apple was founded by Steve Jobs , Steve Wozniak and Ronald Wayne in Cupertino , California , in April 1976 .",
     [[0, 0, "ORG", "Apple"], [4, 5, "PER", "Steve Jobs"], [7, 8, "PER", "Steve Wozniak"], [10, 11, "PER", "Ronald Wayne"], [13, 13, "LOC", "Cupertino"], [15, 15, "LOC", "California"], [18, 19, "DATE", "April 1976"]]),
    ("Ada Lovelace , daughter of Lord Byron , worked with Charles Babbage on the Analytical Engine in London .",
     [[0, 1, "PER", "Ada Lovelace"], [5, 6, "PER", "Lord Byron"], [10, 11, "PER", "Charles Babbage"], [14, 15, "MISC", "Analytical Engine"], [17, 17, "LOC", "London"]]),
    ("Berlin is the capital of Germany , and Tokyo is the capital of Japan .",
     [[0, 0, "LOC", "Berlin"], [5, 5, "LOC", "Germany"], [8, 8, "LOC", "Tokyo"], [13, 13, "LOC", "Japan"]]),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="artifact directory (default: the default model in models/)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="client threads sending requests")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs given to Ray (each replica reserves one)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads per replica (default: 1)")
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=120.0, help="stop sending after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line too")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be >= 1")

    import ray
    from ray import serve

    from glirel_runtime.integrations.serve import build_app

    ray.init(num_cpus=args.num_cpus, object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(args.model, num_replicas=args.replicas, max_batch_size=args.max_batch_size,
                            batch_wait_timeout_s=args.batch_wait_ms / 1000, threads=args.threads),
                  name="glirel-bench", route_prefix="/glirel")
        url = f"http://127.0.0.1:{port}/glirel"
        payloads = [{"text": text, "entities": ner, "labels": LABELS, "threshold": 0.5} for text, ner in REQUESTS]
        with requests.Session() as session:
            for i in range(args.warmup):
                session.post(url, json=payloads[i % len(payloads)], timeout=60).raise_for_status()
            before = session.get(f"{url}/health", timeout=10).json()

        latencies: list[float] = []
        errors: list[str] = []
        counter = iter(range(args.requests))
        lock = threading.Lock()
        deadline = time.perf_counter() + args.time_limit

        def client() -> None:
            with requests.Session() as session:
                while time.perf_counter() < deadline:
                    with lock:
                        index = next(counter, None)
                    if index is None:
                        return
                    started = time.perf_counter()
                    try:
                        response = session.post(url, json=payloads[index % len(payloads)], timeout=60)
                        ok = response.status_code == 200
                        message = "" if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                    except requests.RequestException as error:
                        ok, message = False, str(error)
                    elapsed = time.perf_counter() - started
                    with lock:
                        (latencies.append(elapsed) if ok else errors.append(message))

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        after = requests.get(f"{url}/health", timeout=10).json()
    finally:
        serve.shutdown()
        ray.shutdown()

    stats = {k: after["stats"][k] - before["stats"].get(k, 0) for k in ("requests", "batches")}
    figures = {
        "model": after["model"], "providers": after["providers"], "replicas": args.replicas,
        "concurrency": args.concurrency, "max_batch_size": args.max_batch_size, "batch_wait_ms": args.batch_wait_ms,
        "requests_ok": len(latencies), "errors": len(errors), "wall_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 2) if wall else 0.0,
        "p50_ms": round(1000 * percentile(latencies, 50), 2) if latencies else None,
        "p90_ms": round(1000 * percentile(latencies, 90), 2) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 99), 2) if latencies else None,
        "mean_ms": round(1000 * statistics.fmean(latencies), 2) if latencies else None,
        "mean_batch": round(stats["requests"] / stats["batches"], 2) if stats["batches"] else None,
    }
    print(f"model            {figures['model']} on {', '.join(figures['providers'])}")
    print(f"load             {figures['requests_ok']} ok / {figures['errors']} failed requests, "
          f"{args.concurrency} client threads, {args.replicas} replica(s), max_batch_size {args.max_batch_size}, "
          f"wait {args.batch_wait_ms} ms")
    print(f"throughput       {figures['requests_per_s']} requests/s over {figures['wall_s']} s")
    print(f"latency          p50 {figures['p50_ms']} ms   p90 {figures['p90_ms']} ms   p99 {figures['p99_ms']} ms   "
          f"mean {figures['mean_ms']} ms")
    print(f"server batching  mean batch {figures['mean_batch']} requests")
    if errors:
        print(f"first error      {errors[0]}")
    if args.json:
        print(json.dumps(figures))
    return 1 if errors or not latencies else 0


if __name__ == "__main__":
    sys.exit(main())
