"""Runtime sentences/s on many-entity texts for several pair budgets (padded pairs per engine run).

`GLiREL(pair_budget=...)` splits batches so that batch × widest text's pairs stays
under it; smaller budgets keep the pair head's [pairs, 4D] tensors smaller
(cache-friendlier) at the cost of smaller encoder batches.

Usage (from the repository root):

    python -m benchmarks.pair_budget                       # 50 and 20 entities, 16 texts each
    python -m benchmarks.pair_budget --entities 30 --budgets 65536 8192
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads as W  # noqa: E402
from benchmarks.models import build_artifact  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, nargs="*", default=[50, 20])
    parser.add_argument("--budgets", type=int, nargs="*", default=[65536, 16384, 8192, 4096, 2048])
    parser.add_argument("--texts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--cache-dir", default="/tmp/glirel-speed-cache")
    args = parser.parse_args(argv)
    from glirel_runtime import GLiREL

    data_dir = Path(args.data_dir)
    if not (data_dir / "fewrel" / "val_wiki.json").is_file():
        print(f"no FewRel data under {data_dir}: generated texts", file=sys.stderr)
        data_dir = None
    artifact, _ = build_artifact("minilm", "fp32", Path(args.cache_dir), use_trained=True, log=print)
    for entities in args.entities:
        workload = W.entity_sweep_workload(data_dir, entities, args.texts, m=10)
        texts, ner = workload.texts(), workload.ner()
        for budget in args.budgets:
            model = GLiREL(artifact, providers="cpu", threads=args.threads, pair_budget=budget)
            model.batch_predict_relations(texts, workload.labels, ner=ner)  # warm-up
            seconds = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                model.batch_predict_relations(texts, workload.labels, ner=ner)
                seconds.append(time.perf_counter() - started)
            print(f"{entities} entities, pair_budget {budget}: {len(texts) / statistics.median(seconds):.2f} sentences/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
