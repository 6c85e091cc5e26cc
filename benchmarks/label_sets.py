"""Label sets: prompt groups vs one prompt, label descriptions, and cost per sentence vs label count.

Three experiments on one artifact (default: the default model), each printed as a table:

* ``groups``: FewRel val_wiki zero-shot argmax protocol (`zero_shot.argmax_protocol`, seeds
  40–44) at m = 15 and m = 10, all labels in one prompt vs prompts of 5 (``labels_per_prompt``);
* ``descriptions``: the same protocol at m = 10 with each label's prompt text taken from
  ``zett/templates.tsv`` (BSD-3): the name alone, "name: Wikidata description", and the
  relation's template (``[X] was born in [Y] .``);
* ``speed``: sentences/s for 10 … 500 labels on FewRel-shaped sentences, with the runtime's
  default grouping (one prompt while it fits in half the encoder's subwords).

Re-DocRED's 96 labels in prompts of 10 to 96 are measured by
``python benchmarks/redocred_eval.py --labels-per-prompt N``.

Example:
    $ python benchmarks/label_sets.py --per-relation 100 --out benchmarks/results/label_sets.json
"""
from __future__ import annotations

import argparse
import csv
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import write_json  # noqa: E402
from benchmarks.zero_shot import SEEDS, argmax_protocol, fewrel_pairs  # noqa: E402
from glirel_export.datasets import DEFAULT_DATA_DIR, data_path, wikidata_names  # noqa: E402
from glirel_runtime import GLiREL  # noqa: E402
from glirel_runtime.validation import check_labels  # noqa: E402


def zett_descriptions(data_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Relation name → "name: description" and name → template text (``[X]``/``[Y]`` → head/tail)."""
    described, templates = {}, {}
    with data_path(data_dir, "zett", "templates.tsv").open(encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if len(row) < 4:
                raise ValueError(f"{handle.name}:{line_number}: expected 4 tab-separated columns, found {len(row)}")
            _pid, name, template, description = row[:4]
            described[name] = f"{name}: {description}"
            templates[name] = template.replace("[X]", "head").replace("[Y]", "tail").rstrip(" .")
    return described, templates


def groups_experiment(model: GLiREL, pairs: dict, batch_size: int, per_relation: Optional[int]) -> list[dict[str, Any]]:
    rows = []
    for m in (15, 10):
        for size in (None, 5):
            model.labels_per_prompt = size
            result = argmax_protocol(model, pairs, m, SEEDS, batch_size, per_relation)
            rows.append({"m": m, "labels_per_prompt": size or m, "F1": result["F1"], "F1_std": result["F1_std"]})
            print(f"groups: m={m} prompts of {size or m}: macro F1 {result['F1']:.2f} ± {result['F1_std']:.2f}", flush=True)
    model.labels_per_prompt = None
    return rows


def descriptions_experiment(model: GLiREL, pairs: dict, data_dir: Path, batch_size: int,
                            per_relation: Optional[int]) -> list[dict[str, Any]]:
    described, templates = zett_descriptions(data_dir)
    rows = []
    for name, descriptions in (("name", None), ("name: description", described), ("template", templates)):
        result = argmax_protocol(model, pairs, 10, SEEDS, batch_size, per_relation, descriptions)
        rows.append({"prompt": name, "F1": result["F1"], "F1_std": result["F1_std"]})
        print(f"descriptions: {name}: macro F1 {result['F1']:.2f} ± {result['F1_std']:.2f}", flush=True)
    return rows


def speed_experiment(model: GLiREL, pairs: dict, batch_size: int, counts: Sequence[int], sentences: int,
                     names: dict[str, str]) -> list[dict[str, Any]]:
    pool = sorted(set(names.values()))
    items = [item for relation in sorted(pairs) for item in pairs[relation]]
    items = random.Random(0).sample(items, min(sentences, len(items)))
    texts = [words for words, _, _, _ in items]
    ner = [[[h[0], h[1], "E", ""], [t[0], t[1], "E", ""]] for _, h, t, _ in items]
    rows = []
    for count in counts:
        labels = random.Random(count).sample(pool, count)
        groups = model.label_groups(check_labels(labels))
        model.score_pairs(texts[:batch_size], labels, ner[:batch_size], batch_size)  # warm-up
        started = time.perf_counter()
        model.score_pairs(texts, labels, ner, batch_size)
        seconds = time.perf_counter() - started
        rows.append({"labels": count, "prompts": len(groups), "sentences_per_s": len(texts) / seconds,
                     "ms_per_sentence": 1000 * seconds / len(texts)})
        print(f"speed: {count} labels in {len(groups)} prompt(s): {len(texts) / seconds:.1f} sentences/s "
              f"({1000 * seconds / len(texts):.1f} ms each)", flush=True)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="artifact directory (default: the default model)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--per-relation", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--providers", default="cpu", help="engine (default: onnxruntime CPU, the reference)")
    parser.add_argument("--experiments", nargs="+", default=["groups", "descriptions", "speed"])
    parser.add_argument("--label-counts", type=int, nargs="+", default=[10, 25, 50, 100, 200, 500])
    parser.add_argument("--speed-sentences", type=int, default=64)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    model = GLiREL.from_pretrained(args.model, providers=args.providers, threads=args.threads)
    names = wikidata_names(data_dir)
    pairs = fewrel_pairs(data_path(data_dir, "fewrel", "val_wiki.json"), names)
    results: dict[str, Any] = {"model": str(model.artifact_dir), "cpu": platform.processor() or platform.machine(),
                               "per_relation": args.per_relation}
    if "groups" in args.experiments:
        results["groups"] = groups_experiment(model, pairs, args.batch_size, args.per_relation)
    if "descriptions" in args.experiments:
        results["descriptions"] = descriptions_experiment(model, pairs, data_dir, args.batch_size, args.per_relation)
    if "speed" in args.experiments:
        results["speed"] = speed_experiment(model, pairs, args.batch_size, args.label_counts, args.speed_sentences, names)
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
