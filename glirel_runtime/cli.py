"""`glirel-runtime`: relation extraction from the command line.

    glirel-runtime extract [--model DIR] [--text TEXT --entities "Ada Lovelace:PER" ...] [--labels ...]
    glirel-runtime predict --model DIR --input in.jsonl --output out.jsonl [--labels ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Iterator, Optional, Sequence

EXAMPLE_TEXT = "Ada Lovelace was born in London and worked with Charles Babbage on the Analytical Engine ."
EXAMPLE_ENTITIES = ["Ada Lovelace:PERSON", "London:LOC", "Charles Babbage:PERSON", "Analytical Engine:WORK"]
EXAMPLE_LABELS = {"glirel_labels": {  # labels with the entity types they allow (masked before top-k)
    "place of birth": {"allowed_head": ["PERSON"], "allowed_tail": ["LOC"]},
    "work location": {"allowed_head": ["PERSON"], "allowed_tail": ["LOC"]},
    "spouse": {"allowed_head": ["PERSON"], "allowed_tail": ["PERSON"]},
    "designed by": {"allowed_head": ["WORK"], "allowed_tail": ["PERSON"]},
    "notable work": {"allowed_head": ["PERSON"], "allowed_tail": ["WORK"]},
}}


def locate_entities(words: list[str], entities: Sequence[str]) -> list[list[Any]]:
    """Turn "surface text:TYPE" strings into glirel ner spans by finding their words in `words`.

    Example:
        >>> locate_entities(["Ada", "met", "Charles", "Babbage"], ["Charles Babbage:PER"])
        [[2, 3, 'PER', 'Charles Babbage']]
    """
    from .words import split_words

    spans = []
    for entity in entities:
        surface, _, entity_type = entity.rpartition(":")
        if not surface:
            surface, entity_type = entity_type, "ENTITY"
        target = split_words(surface).words
        for start in range(len(words) - len(target) + 1):
            if words[start:start + len(target)] == target:
                spans.append([start, start + len(target) - 1, entity_type, surface])
                break
        else:
            raise SystemExit(f"entity {surface!r} does not occur in the text")
    return spans


def _read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise SystemExit(f"{path}:{line_number}: not JSON ({error})")


def _labels_from_data(path: str) -> list[str]:
    labels: dict[str, None] = {}
    for row in _read_jsonl(path):
        for relation in row.get("relations") or []:
            labels.setdefault(relation["relation_text"], None)
    if not labels:
        raise SystemExit(f"--labels not given and {path} has no relations to take labels from")
    return list(labels)


def _load(args: argparse.Namespace):
    from .model import GLiREL

    return GLiREL.from_pretrained(args.model, providers=args.providers, threads=args.threads)


def cmd_extract(args: argparse.Namespace) -> int:
    from .words import split_words

    started = time.perf_counter()
    model = _load(args)
    text = args.text or EXAMPLE_TEXT
    entities = args.entities or (EXAMPLE_ENTITIES if not args.text else None)
    if not entities:
        raise SystemExit("--entities is required with --text (e.g. --entities 'Ada Lovelace:PER' 'London:LOC')")
    ner = locate_entities(split_words(text).words, entities)
    relations = model.predict_relations(text, args.labels or EXAMPLE_LABELS, ner=ner, threshold=args.threshold, top_k=args.top_k)
    print(f"text: {text}")
    for relation in relations:
        print(f"  {' '.join(relation['head_text'])} --[{relation['label']}]--> {' '.join(relation['tail_text'])}  ({relation['score']:.3f})")
    if not relations:
        print("  (no relation above the threshold)")
    print(f"{len(relations)} relations in {time.perf_counter() - started:.2f}s (model load included)", file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    labels = args.labels or _labels_from_data(args.input)
    model = _load(args)
    started, count, found, bad = time.perf_counter(), 0, 0, 0
    rows = list(_read_jsonl(args.input)) if args.input != "-" else [json.loads(l) for l in sys.stdin if l.strip()]
    with open(args.output, "w", encoding="utf-8") as out:
        results = model.predict_stream(rows, labels, threshold=args.threshold, top_k=args.top_k, batch_size=args.batch_size,
                                       on_error="return", show_progress=not args.quiet)
        for row, result in zip(rows, results):
            count += 1
            if isinstance(result, Exception):
                bad += 1
                record = {**row, "error": str(result)}
            else:
                found += len(result)
                record = {**row, "predicted_relations": result}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    elapsed = time.perf_counter() - started
    print(f"{count} texts, {found} relations, {bad} invalid, {elapsed:.1f}s ({count / max(elapsed, 1e-9):.1f} texts/s) → {args.output}",
          file=sys.stderr)
    return 1 if bad and args.strict else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="glirel-runtime", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("extract", "predict"):
        p = sub.add_parser(name)
        p.add_argument("--model", default=None, help="artifact directory or Hub id (default: the model in models/)")
        p.add_argument("--labels", nargs="+", default=None)
        p.add_argument("--threshold", type=float, default=0.5)
        p.add_argument("--top-k", type=int, default=-1)
        p.add_argument("--providers", default="auto", help="auto, cpu, cuda, tensorrt")
        p.add_argument("--threads", type=int, default=None)
        if name == "extract":
            p.add_argument("--text", default=None, help=f"default: {EXAMPLE_TEXT!r}")
            p.add_argument("--entities", nargs="+", default=None, help="'surface text:TYPE' for each entity")
            p.set_defaults(func=cmd_extract)
        else:
            p.add_argument("--input", required=True, help="glirel JSONL (tokenized_text, ner), or - for stdin")
            p.add_argument("--output", required=True)
            p.add_argument("--batch-size", type=int, default=32)
            p.add_argument("--quiet", action="store_true", help="no progress bar")
            p.add_argument("--strict", action="store_true", help="exit 1 when any row is invalid")
            p.set_defaults(func=cmd_predict)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"glirel-runtime: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
