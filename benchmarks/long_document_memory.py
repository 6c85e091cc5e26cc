"""Peak memory and time of `GLiREL.predict_document` on a long synthetic document.

The document (default 10,000 words, 500 entities of 1–3 words, one every 20 words)
is made of generated sentences; every entity name recurs, so ``SELF`` (in the label
set by default) exercises coreference too. Peak RSS is the process's high-water
mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), reported after loading the
model and after the document, so the document's own cost is the difference.
``--scaling`` repeats the measurement in fresh processes for several lengths (one
entity per 20 words) to show that memory stays flat as documents grow.

Usage:
    python benchmarks/long_document_memory.py                      # the default model
    python benchmarks/long_document_memory.py --model DIR --words 10000 --entities 500
    python benchmarks/long_document_memory.py --scaling 2500 5000 10000 20000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_MODEL = REPO / "models" / "glirel-minilm-fewrel"
LABELS = ["place of birth", "spouse", "employer", "founded by", "member of", "located in the administrative territorial entity",
          "country", "headquarters location", "father", "educated at", "SELF"]
FILLER = ("the a of in and was with for on at by from after before which who during while near later also "
          "company city river university team war album film river government party family first new").split()
NAMES = ["Ada Lovelace", "Charles Babbage", "London", "Paris", "Marie Curie", "Warsaw", "Apple", "Steve Jobs",
         "Cupertino", "Oxford", "Thames", "Lord Byron", "Pierre Curie", "Berlin", "Germany", "Tokyo", "Japan",
         "Sorbonne", "Royal Society", "Analytical Engine"]


def synthetic_document(num_words: int, num_entities: int, seed: int = 0) -> tuple[list[str], list[list[Any]]]:
    """`num_words` words with `num_entities` entity mentions spread evenly (names recur: coreference).

    Example:
        >>> words, ner = synthetic_document(200, 10)
        >>> len(words), len(ner), ner[0][3] == " ".join(words[ner[0][0]:ner[0][1] + 1])
        (200, 10, True)
    """
    if num_entities * 4 > num_words:
        raise ValueError(f"{num_entities} entities need at least {num_entities * 4} words, got {num_words}")
    rng = random.Random(seed)
    gap = num_words / num_entities
    words: list[str] = []
    ner: list[list[Any]] = []
    for entity in range(num_entities):
        target = int(round(entity * gap)) + 1
        while len(words) < target:
            words.append(rng.choice(FILLER) if len(words) % 12 else ".")
        name = rng.choice(NAMES).split()
        ner.append([len(words), len(words) + len(name) - 1, "ENT", " ".join(name)])
        words.extend(name)
    while len(words) < num_words:
        words.append(rng.choice(FILLER))
    return words[:num_words], ner


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(model_dir: str, num_words: int, num_entities: int, threads: Optional[int], batch_size: int,
            threshold: float) -> dict[str, Any]:
    from glirel_runtime import GLiREL

    started = peak_rss_mib()
    model = GLiREL.from_pretrained(model_dir, providers="cpu", threads=threads)
    words, ner = synthetic_document(num_words, num_entities)
    loaded = peak_rss_mib()
    clock = time.perf_counter()
    result = model.predict_document(words, LABELS, ner, threshold=threshold, batch_size=batch_size, show_progress=False)
    seconds = time.perf_counter() - clock
    peak = peak_rss_mib()
    return {
        "words": num_words, "entities": num_entities, "windows": len(result["windows"]),
        "relations": len(result["relations"]), "entity_relations": len(result.get("entity_relations", [])),
        "clusters": len(result.get("clusters", [])), "unscored_pairs": result["unscored_pairs"],
        "seconds": round(seconds, 2), "rss_start_mib": round(started, 1), "rss_after_load_mib": round(loaded, 1),
        "peak_rss_mib": round(peak, 1), "document_rss_mib": round(peak - loaded, 1),
        "max_words": model.config.max_words, "max_subwords": model.config.max_subwords,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="artifact directory (default: the default model)")
    parser.add_argument("--words", type=int, default=10_000)
    parser.add_argument("--entities", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--scaling", type=int, nargs="*", default=None,
                        help="document lengths (words) to measure in fresh processes, one entity per 20 words")
    parser.add_argument("--json", action="store_true", help="print one JSON line (used by --scaling)")
    args = parser.parse_args(argv)
    if not (Path(args.model) / "glirel_artifact.json").is_file():
        raise SystemExit(f"no artifact at {args.model}: pass --model with an exported artifact directory")

    if args.scaling:
        print(f"model {Path(args.model).resolve()}, threads {args.threads}, batch {args.batch_size}; {platform.platform()}, "
              f"{os.cpu_count()} CPUs; {datetime.now(timezone.utc).isoformat(timespec='minutes')}")
        print(f"{'words':>7s} {'entities':>8s} {'windows':>7s} {'seconds':>8s} {'after load MiB':>14s} {'peak MiB':>9s} {'document MiB':>12s}")
        for words in args.scaling:
            command = [sys.executable, __file__, "--model", args.model, "--words", str(words), "--entities", str(words // 20),
                       "--batch-size", str(args.batch_size), "--threshold", str(args.threshold), "--json"]
            if args.threads:
                command += ["--threads", str(args.threads)]
            row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            print(f"{row['words']:7d} {row['entities']:8d} {row['windows']:7d} {row['seconds']:8.2f} "
                  f"{row['rss_after_load_mib']:14.1f} {row['peak_rss_mib']:9.1f} {row['document_rss_mib']:12.1f}")
        return 0

    row = measure(args.model, args.words, args.entities, args.threads, args.batch_size, args.threshold)
    if args.json:
        print(json.dumps(row))
        return 0
    print(f"model: {Path(args.model).resolve()} (max_words {row['max_words']}, max_subwords {row['max_subwords']})")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, threads {args.threads}; "
          f"{datetime.now(timezone.utc).isoformat(timespec='minutes')}")
    print(f"document: {row['words']} words, {row['entities']} entities, {len(LABELS)} labels (SELF included) → "
          f"{row['windows']} windows, {row['relations']} mention relations, {row['clusters']} clusters, "
          f"{row['entity_relations']} entity relations, {row['unscored_pairs']} entity pairs sharing no window")
    print(f"time: {row['seconds']:.2f} s")
    print(f"peak RSS: {row['peak_rss_mib']:.1f} MiB (after loading the model: {row['rss_after_load_mib']:.1f} MiB; "
          f"the document added {row['document_rss_mib']:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
