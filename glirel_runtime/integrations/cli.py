"""`glirel-runtime`: relation extraction from the command line.

    glirel-runtime extract [--model DIR] [--text TEXT --entities "Ada Lovelace:PER" ...] [--labels ...]
    glirel-runtime predict --model DIR --input in.jsonl --output out.jsonl [--labels ...]
"""
from __future__ import annotations

import argparse
import codecs
import itertools
import json
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional, Sequence

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
    from ..words import split_words

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


INTERRUPTED_EXIT_CODE = 130
"""Exit code of `predict` when interrupted (SIGINT): the output is left as OUTPUT.incomplete."""
INCOMPLETE_SUFFIX = ".incomplete"


@dataclass
class InputLine:
    """One non-blank line of a JSONL input: its 1-based line number and its object, or why it is unusable."""

    number: int
    row: Optional[dict[str, Any]]
    error: Optional[str] = None


def read_jsonl_lines(handle: BinaryIO, name: str) -> Iterator[InputLine]:
    """Parse JSONL bytes line by line; a bad line becomes an `InputLine` with an error naming ``name:line``.

    A UTF-8 byte-order mark on the first line is skipped; blank lines are skipped but counted.

    Example:
        >>> import io
        >>> [(l.number, l.row, l.error) for l in read_jsonl_lines(io.BytesIO(b'\\xef\\xbb\\xbf{"a": 1}\\n\\n[1]\\n'), "in.jsonl")]
        [(1, {'a': 1}, None), (3, None, 'in.jsonl:3: a JSON list, not an object with "tokenized_text" (or "text") and "ner"')]
    """
    for number, raw in enumerate(handle, 1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield InputLine(number, None, f"{name}:{number}: not UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the line)")
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield InputLine(number, None, f"{name}:{number}: not JSON ({error})")
            continue
        except RecursionError:
            yield InputLine(number, None, f"{name}:{number}: JSON nested too deeply")
            continue
        if not isinstance(row, dict):
            yield InputLine(number, None, f'{name}:{number}: a JSON {type(row).__name__ if row is not None else "null"}, '
                                          f'not an object with "tokenized_text" (or "text") and "ner"')
            continue
        yield InputLine(number, row)


def _labels_from_data(path: str) -> list[str]:
    labels: dict[str, None] = {}
    with open(path, "rb") as handle:
        for line in read_jsonl_lines(handle, path):
            relations = (line.row or {}).get("relations")
            for relation in relations if isinstance(relations, list) else []:
                if isinstance(relation, dict) and isinstance(relation.get("relation_text"), str):
                    labels.setdefault(relation["relation_text"], None)
    if not labels:
        raise SystemExit(f"--labels not given and {path} has no relations to take labels from")
    return list(labels)


def _count_rows(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(1 for raw in handle if raw.strip())


def _json_line(record: dict[str, Any]) -> str:
    try:
        return json.dumps(record, ensure_ascii=False).encode("utf-8").decode("utf-8") + "\n"
    except UnicodeEncodeError:  # a lone surrogate in the input: write it escaped, as it came
        return json.dumps(record, ensure_ascii=True) + "\n"


def _message(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    return "; ".join(errors.values()) if isinstance(errors, dict) and errors else str(error)


def _load(args: argparse.Namespace):
    from ..model import GLiREL

    return GLiREL.from_pretrained(args.model, providers=args.providers, threads=args.threads,
                                  labels_per_prompt=args.labels_per_prompt)


def _read_json_option(path: str, option: str) -> Any:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise SystemExit(f"glirel-runtime: error: {option} {path}: {error}") from None


def resolve_label_options(args: argparse.Namespace) -> None:
    """Fold --labels-file and --thresholds into args.labels and args.threshold (checked by the model)."""
    if args.labels_file is not None:
        if args.labels:
            raise SystemExit("glirel-runtime: error: give --labels or --labels-file, not both")
        data = _read_json_option(args.labels_file, "--labels-file")
        args.labels = data if isinstance(data, list) or "glirel_labels" in data else {"glirel_labels": data}
    if args.thresholds is not None:
        if args.threshold is not None:
            raise SystemExit("glirel-runtime: error: give --threshold or --thresholds, not both")
        args.threshold = _read_json_option(args.thresholds, "--thresholds")


def cmd_extract(args: argparse.Namespace) -> int:
    from ..words import split_words

    started = time.perf_counter()
    model = _load(args)
    text = args.text or EXAMPLE_TEXT
    entities = args.entities or (EXAMPLE_ENTITIES if not args.text else None)
    if entities:
        ner, labels = locate_entities(split_words(text).words, entities), args.labels or EXAMPLE_LABELS
    else:  # raw text: spaCy finds the entities; the default labels are constrained by spaCy's entity types
        from ..ner import RELATION_LABELS, find_entities

        try:
            ner, labels = find_entities(text), args.labels or RELATION_LABELS
        except ImportError as error:
            raise SystemExit(f"glirel-runtime: error: {error} (or give --entities 'Ada Lovelace:PERSON' ...)")
    relations = model.predict_relations(text, labels, ner=ner, threshold=args.threshold, top_k=args.top_k)
    print(f"text: {text}")
    print("entities: " + (", ".join(f"{entity[3]} ({entity[2]})" for entity in ner) or "(none found)"))
    for relation in relations:
        print(f"  {' '.join(relation['head_text'])} --[{relation['label']}]--> {' '.join(relation['tail_text'])}  ({relation['score']:.3f})")
    if not relations:
        print("  (no relation above the threshold)")
    print(f"{len(relations)} relations in {time.perf_counter() - started:.2f}s (model load included)", file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Relations for every row of a JSONL file (or stdin), written to OUTPUT in input order.

    Each output line is the input row plus ``predicted_relations``, or ``line`` and ``error`` for a
    row that cannot be used (its error names ``INPUT:line``); one bad row never stops the others.
    The output is written to ``OUTPUT.incomplete`` and renamed to OUTPUT only when every row is done;
    an interrupted run leaves the ``.incomplete`` file and exits with 130.
    """
    from tqdm.auto import tqdm

    from_stdin = args.input == "-"
    if from_stdin and not args.labels:
        raise SystemExit("glirel-runtime: error: --labels is required when the input is stdin")
    labels = args.labels or _labels_from_data(args.input)
    name = "<stdin>" if from_stdin else args.input
    total = None if from_stdin else _count_rows(args.input)
    model = _load(args)
    output = Path(args.output)
    partial = output.with_name(output.name + INCOMPLETE_SUFFIX)
    started, count, found, bad = time.perf_counter(), 0, 0, 0
    block_size = max(256, 4 * args.batch_size)  # rows per model call: grouped by length, progress updated per block
    progress = tqdm(total=total, desc="glirel", unit="text", disable=args.quiet, file=sys.stderr)
    try:
        source = nullcontext(sys.stdin.buffer) if from_stdin else open(args.input, "rb")
        with source as handle, open(partial, "w", encoding="utf-8") as out:
            lines = read_jsonl_lines(handle, name)
            while block := list(itertools.islice(lines, block_size)):
                valid = [line for line in block if line.row is not None]
                results = iter(model.predict_stream(
                    [line.row for line in valid], labels, threshold=args.threshold, top_k=args.top_k,
                    batch_size=args.batch_size, chunk_size=len(valid), on_error="return") if valid else ())
                for line in block:
                    result = next(results) if line.row is not None else None
                    if line.row is None:
                        bad += 1
                        record: dict[str, Any] = {"line": line.number, "error": line.error}
                    elif isinstance(result, Exception):
                        bad += 1
                        record = {**line.row, "line": line.number, "error": f"{name}:{line.number}: {_message(result)}"}
                    else:
                        found += len(result)
                        record = {**line.row, "predicted_relations": result}
                    out.write(_json_line(record))
                count += len(block)
                progress.update(len(block))
    except KeyboardInterrupt:
        progress.close()
        print(f"glirel-runtime: interrupted after {count} rows; the partial output is {partial} "
              f"({output} was not written)", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    progress.close()
    os.replace(partial, output)
    elapsed = time.perf_counter() - started
    print(f"{count} texts, {found} relations, {bad} invalid, {elapsed:.1f}s ({count / max(elapsed, 1e-9):.1f} texts/s) → {output}",
          file=sys.stderr)
    return 1 if bad and args.strict else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="glirel-runtime", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("extract", "predict"):
        p = sub.add_parser(name)
        p.add_argument("--model", default=None, help="artifact directory or Hub id (default: the model in models/)")
        p.add_argument("--labels", nargs="+", default=None, help="relation label names")
        p.add_argument("--labels-file", default=None,
                       help="JSON: a list of names, or {label: {description, threshold, symmetric, allowed_head, "
                            "allowed_tail}} for labels with their own prompt text, threshold, symmetry, type constraints")
        p.add_argument("--threshold", type=float, default=None,
                       help="one threshold for every label (default: the model's calibrated default_threshold)")
        p.add_argument("--thresholds", default=None,
                       help="JSON file mapping label → threshold (\"*\": every other label)")
        p.add_argument("--labels-per-prompt", type=int, default=None,
                       help="run the labels in prompts of this many (default: one prompt while it fits)")
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
    resolve_label_options(args)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, RuntimeError, ArithmeticError) as error:
        print(f"glirel-runtime: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
