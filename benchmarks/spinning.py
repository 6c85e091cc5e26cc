"""The runtime with onnxruntime's intra-op thread spinning on and off, alone and beside busy processes.

onnxruntime's idle intra-op threads busy-wait for the next piece of work by default
(`session.intra_op.allow_spinning`). Alone on a machine that costs nothing; when other
processes want the same cores (another replica, a tokenizer pool, a training job), the
spinning threads take CPU time from them, and from the runtime's own working threads.
This benchmark times `GLiREL(..., allow_spinning=...)` both ways, each in its own process,
round-robin, first alone and then while `--busy` processes spin on the CPU.

Usage (from the repository root; about a minute on 2 cores):

    python -m benchmarks.spinning                      # default model shape, FewRel-shaped sentences
    python -m benchmarks.spinning --busy 1 2 --sentences 128
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads as W  # noqa: E402
from benchmarks.machine import announce_machine  # noqa: E402
from benchmarks.models import build_artifact  # noqa: E402
from benchmarks.systems import SystemProcess, SystemSpec, round_robin  # noqa: E402


def _spin() -> None:
    while True:
        pass


def busy_processes(count: int) -> list:
    """`count` processes that keep one core each busy until terminated."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_spin, daemon=True, name=f"busy-{k}") for k in range(count)]
    for process in processes:
        process.start()
    return processes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, nargs="*", default=[0, 1], help="busy processes beside the runtime, per round")
    parser.add_argument("--sentences", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variant", default="fp32", choices=["fp32", "int8"])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cache-dir", default="/tmp/glirel-speed-cache")
    parser.add_argument("--no-trained", action="store_true", help="ignore checkpoints/glirel-minilm-fewrel")
    args = parser.parse_args(argv)
    announce_machine()
    data_dir = Path(args.data_dir) if (Path(args.data_dir) / "fewrel" / "val_wiki.json").is_file() else None
    workload = W.fewrel_workload(data_dir, args.sentences, m=10)
    artifact, _ = build_artifact("minilm", args.variant, Path(args.cache_dir), not args.no_trained, log=print)
    specs = {"spinning on (default)": SystemSpec("runtime", str(artifact), args.threads),
             "spinning off": SystemSpec("runtime", str(artifact), args.threads, {"spinning": False})}
    inputs = (workload.texts(), workload.labels, workload.ner())
    print(f"runtime {args.variant}, {args.threads} threads, {len(workload.sentences)} FewRel-shaped sentences, m = 10; sentences/s")
    print(f"{'busy processes':>15} | " + " | ".join(f"{name:>22}" for name in specs) + " | off / on")
    systems = [SystemProcess(name, spec) for name, spec in specs.items()]
    try:
        for busy in args.busy:
            burners = busy_processes(busy)
            try:
                timings = round_robin(systems, inputs, {"batch_size": 32}, args.repeats)
            finally:
                for process in burners:
                    process.terminate()
                    process.join()
            rates = [len(workload.sentences) / timings[s.name]["median_s"] for s in systems]
            print(f"{busy:>15} | " + " | ".join(f"{rate:>22.1f}" for rate in rates) + f" | {rates[1] / rates[0]:.2f}×", flush=True)
    finally:
        for system in systems:
            system.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
