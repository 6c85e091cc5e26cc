"""Re-DocRED document-level evaluation with gold clusters: F1 and Ign F1 (official DocRED definitions).

Every document goes through `GLiREL.predict_document` whole (overlapping windows,
max merge), with every gold mention as an entity and the gold ``vertexSet`` as
clusters; mention relations are lifted to entities with ``--aggregation`` (default
``max``) and scored against the gold triples ``(doc, h, r, t)``:

* F1: precision = correct / predicted triples, recall = correct / gold triples
  (``tot_relations``, gold triples deduplicated), as in DocRED's ``evaluation.py``.
* Ign F1: as F1, but correct triples whose (head mention name, tail mention name,
  relation) also occurs in the *training* facts are removed from both the numerator
  and the prediction count of precision (recall unchanged), as DocRED's ``evaluation.py``
  does. Re-DocRED's train file is not available offline; the default model is trained
  on Re-DocRED **dev**, so the facts come from ``dev_revised.json`` (``--train-facts``).

Labels: the 96 Re-DocRED relations (``rel2id.json`` without ``Na``) named as in
training (FewRel ``pid2name.json``, then Wiki-ZSL ``pid2name_wiki.json``, then
``all_wikidata_properties.json``). The default model was trained with at most 25
labels per prompt, so the 96 labels run as prompts of ``--labels-per-prompt``
(default 24: four prompts per window); the predictions of the prompts are united.

Usage:
    python benchmarks/redocred_eval.py                       # default model, all 500 test documents
    python benchmarks/redocred_eval.py --max-docs 20 --model path/to/artifact
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
DEFAULT_MODEL = REPO / "models" / "glirel-minilm-fewrel"
PAPER_TABLE_6 = {"GLiREL (paper, Table 6, gold clusters)": {"f1": 54.13, "ign_f1": None}}


def _datasets_module():
    """`glirel_export/datasets.py` (standard library only), loaded by path so this script needs no torch."""
    spec = importlib.util.spec_from_file_location("_glirel_datasets", REPO / "glirel_export" / "datasets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_file(data_dir: Path, *parts: str) -> Path:
    path = Path(data_dir).joinpath(*parts)
    if not path.is_file():
        raise SystemExit(f"{path} is missing: pass --data-dir pointing at the shared data folder "
                         f"(redocred/, fewrel/, glirel/; see ../shared/README.md)")
    return path


def relation_labels(data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The Re-DocRED relation ids (rel2id order, no ``Na``) and id → label name."""
    datasets = _datasets_module()
    rel2id = json.loads(data_file(data_dir, "redocred", "rel2id.json").read_text())
    for parts in (("fewrel", "pid2name.json"), ("glirel", "pid2name_wiki.json"), ("glirel", "all_wikidata_properties.json")):
        data_file(data_dir, *parts)
    names = datasets.wikidata_names(data_dir)
    ids = [r for r, _ in sorted(rel2id.items(), key=lambda item: item[1]) if r != "Na"]
    id2name = {r: datasets.label_name(r, names) for r in ids}
    if len(set(id2name.values())) != len(ids):
        raise SystemExit("two Re-DocRED relations share a label name; labels must be distinct")
    return ids, id2name


def document_inputs(doc: dict[str, Any]) -> tuple[list[str], list[list[Any]], list[list[int]], list[int]]:
    """Words, mentions (`ner`), gold clusters (lists of ner indices) and the vertexSet index of each cluster.

    A span shared by two entities is kept for the first (the runtime needs distinct spans);
    an entity left without mentions gets no cluster (its triples count as missed).

    Example:
        >>> doc = {"sents": [["Ada", "met", "Bob"]], "vertexSet": [[{"pos": [0, 1], "sent_id": 0, "type": "PER"}],
        ...        [{"pos": [2, 3], "sent_id": 0, "type": "PER"}]]}
        >>> document_inputs(doc)
        (['Ada', 'met', 'Bob'], [[0, 0, 'PER', 'Ada'], [2, 2, 'PER', 'Bob']], [[0], [1]], [0, 1])
    """
    words, offsets = [], []
    for sentence in doc["sents"]:
        offsets.append(len(words))
        words.extend(sentence)
    ner: list[list[Any]] = []
    seen: dict[tuple[int, int], int] = {}
    clusters, vertex_of_cluster = [], []
    for vertex, mentions in enumerate(doc["vertexSet"]):
        members = []
        for mention in mentions:
            start = offsets[mention["sent_id"]] + mention["pos"][0]
            end = offsets[mention["sent_id"]] + mention["pos"][1] - 1
            if end < start or (start, end) in seen:
                continue
            seen[(start, end)] = len(ner)
            members.append(len(ner))
            ner.append([start, end, mention["type"], " ".join(words[start:end + 1])])
        if members:
            clusters.append(members)
            vertex_of_cluster.append(vertex)
    return words, ner, clusters, vertex_of_cluster


def train_facts(documents: Sequence[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(head mention name, tail mention name, relation) of every triple: DocRED's `gen_train_facts`."""
    facts = set()
    for doc in documents:
        for label in doc.get("labels", []):
            for head in doc["vertexSet"][label["h"]]:
                for tail in doc["vertexSet"][label["t"]]:
                    facts.add((head["name"], tail["name"], label["r"]))
    return facts


def trained_relations(config: Any) -> Optional[set[str]]:
    """Relation ids the model was trained on, when its checkpoint recorded them (glirel-train's `split`)."""
    glirel_config = (config.source or {}).get("glirel_config", {})
    train = (glirel_config.get("split") or {}).get("train")
    return set(train) if train else None


def subset(documents: Sequence[dict[str, Any]], relations: set[str]) -> list[dict[str, Any]]:
    """The documents with only the gold triples of `relations` (for seen/unseen breakdowns)."""
    return [{**doc, "labels": [label for label in doc.get("labels", []) if label["r"] in relations]} for doc in documents]


def official_scores(
    documents: Sequence[dict[str, Any]], predictions: Sequence[tuple[int, int, int, str]], facts: set[tuple[str, str, str]],
) -> dict[str, float]:
    """DocRED's relation-extraction scores (in %), predictions as (doc, h, t, r) triples.

    Example:
        >>> docs = [{"vertexSet": [[{"name": "A"}], [{"name": "B"}]], "labels": [{"h": 0, "t": 1, "r": "P1"}]}]
        >>> s = official_scores(docs, [(0, 0, 1, "P1"), (0, 1, 0, "P1")], {("A", "B", "P1")})
        >>> round(s["f1"], 2), round(s["ign_f1"], 2), s["correct"], s["predicted"], s["gold"]
        (66.67, 0.0, 1, 2, 1)
    """
    gold = {(d, label["h"], label["t"], label["r"]) for d, doc in enumerate(documents) for label in doc.get("labels", [])}
    predicted = sorted(set(predictions))
    correct = correct_in_train = 0
    for d, h, t, r in predicted:
        if (d, h, t, r) not in gold:
            continue
        correct += 1
        vertex_set = documents[d]["vertexSet"]
        if any((n1["name"], n2["name"], r) in facts for n1 in vertex_set[h] for n2 in vertex_set[t]):
            correct_in_train += 1
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ign_precision = (correct - correct_in_train) / (len(predicted) - correct_in_train + 1e-5)
    ign_f1 = 2 * ign_precision * recall / (ign_precision + recall + 1e-5)
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1, "ign_f1": 100 * ign_f1,
            "correct": correct, "correct_in_train": correct_in_train, "predicted": len(predicted), "gold": len(gold)}


def predict(
    model: Any, documents: Sequence[dict[str, Any]], relation_ids: list[str], id2name: dict[str, str],
    threshold: float, labels_per_prompt: int, aggregation: str, window_overlap: Optional[int], batch_size: int,
) -> tuple[list[tuple[int, int, int, str, float]], dict[str, int]]:
    """Entity-level predictions (doc, h, t, relation id, score) for every document, and run statistics."""
    from tqdm.auto import tqdm

    name2id = {name: r for r, name in id2name.items()}
    labels = [id2name[r] for r in relation_ids]  # the library runs them in prompts of `labels_per_prompt`
    model.labels_per_prompt = labels_per_prompt
    triples: list[tuple[int, int, int, str, float]] = []
    stats = {"windows": 0, "mentions": 0, "unscored_mention_pairs": 0, "documents_over_one_window": 0}
    for d, doc in enumerate(tqdm(documents, desc="Re-DocRED", unit="doc")):
        words, ner, clusters, vertex_of_cluster = document_inputs(doc)
        stats["mentions"] += len(ner)
        result = model.predict_document(words, labels, ner, clusters=clusters, threshold=threshold,
                                        aggregation=aggregation, window_overlap=window_overlap,
                                        batch_size=batch_size, show_progress=False)
        for relation in result["entity_relations"]:
            h, t = relation["head"], relation["tail"]
            if h < len(vertex_of_cluster) and t < len(vertex_of_cluster):  # never false: gold clusters cover all
                triples.append((d, vertex_of_cluster[h], vertex_of_cluster[t], name2id[relation["label"]],
                                relation["score"]))
        stats["windows"] += len(result["windows"])
        stats["unscored_mention_pairs"] += result["unscored_pairs"]
        stats["documents_over_one_window"] += len(result["windows"]) > 1
    return triples, stats


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="artifact directory (default: the default model)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="shared data folder (default ../shared/data)")
    parser.add_argument("--split", default="test", choices=["test", "dev"])
    parser.add_argument("--train-facts", default="dev", choices=["dev", "none"],
                        help="facts excluded by Ign F1 (the default model trains on dev; Re-DocRED train is not available)")
    parser.add_argument("--max-docs", type=int, default=None, help="only the first N documents (quick run)")
    parser.add_argument("--threshold", type=float, default=None, help="default: the artifact's default_threshold")
    parser.add_argument("--sweep", type=float, nargs="*", default=None,
                        help="also print F1 at these thresholds (one run at the lowest; diagnostic only: "
                             "picking the best on test is not a result; max aggregation only)")
    parser.add_argument("--labels-per-prompt", type=int, default=24)
    parser.add_argument("--aggregation", default="max", choices=["max", "mean", "count"])
    parser.add_argument("--window-overlap", type=int, default=None, help="words shared by consecutive windows")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default=None, help="write the figures (and settings) as JSON here")
    args = parser.parse_args(argv)

    from glirel_runtime import GLiREL

    data_dir = Path(args.data_dir)
    if not (Path(args.model) / "glirel_artifact.json").is_file():
        raise SystemExit(f"no artifact at {args.model}: pass --model with an exported artifact directory")
    documents = json.loads(data_file(data_dir, "redocred", f"{args.split}_revised.json").read_text())
    if args.max_docs is not None:
        documents = documents[:args.max_docs]
    relation_ids, id2name = relation_labels(data_dir)
    model = GLiREL.from_pretrained(args.model, providers="cpu", threads=args.threads)
    seen = trained_relations(model.config)
    facts = set()
    if args.train_facts == "dev":
        dev = json.loads(data_file(data_dir, "redocred", "dev_revised.json").read_text())
        if seen is not None:  # the model saw only these relations' dev triples
            dev = subset(dev, seen)
        facts = train_facts(dev)
    threshold = model.config.default_threshold if args.threshold is None else args.threshold
    sweep = sorted(set(args.sweep or []))
    if sweep and args.aggregation != "max":
        raise SystemExit("--sweep needs --aggregation max (entity scores are then thresholds' maxima)")
    run_threshold = min([threshold] + sweep)

    started = time.perf_counter()
    predictions, stats = predict(model, documents, relation_ids, id2name, run_threshold, args.labels_per_prompt,
                                 args.aggregation, args.window_overlap, args.batch_size)
    seconds = time.perf_counter() - started

    def at(cut: float) -> list[tuple[int, int, int, str]]:
        # with max aggregation an entity relation's score is its best mention score, so a higher
        # threshold keeps exactly the predictions scoring above it
        return [(d, h, t, r) for d, h, t, r, score in predictions if score > cut]

    scores = official_scores(documents, at(threshold), facts)

    source = model.config.source or {}
    print(f"\nRe-DocRED {args.split}: {len(documents)} documents, {stats['mentions']} mentions, gold clusters, "
          f"{len(relation_ids)} relation labels in prompts of {args.labels_per_prompt}")
    print(f"model: {Path(args.model).resolve()} (encoder {source.get('encoder', source.get('encoder_name', '?'))}, "
          f"max_words {model.config.max_words}, max_subwords {model.config.max_subwords})")
    print(f"threshold {threshold}, aggregation {args.aggregation}, {stats['windows']} windows "
          f"({stats['documents_over_one_window']} documents over one window, last prompt's count), "
          f"{stats['unscored_mention_pairs']} mention pairs sharing no window; {seconds:.1f} s")
    fact_source = "none"
    if facts:
        fact_source = "Re-DocRED dev (the default model trains on dev; train is unavailable)"
        if seen is not None:
            fact_source += f", triples of the {len(seen)} relations the model was trained on"
    print(f"Ign F1 facts: {fact_source}")
    print()
    print(f"{'system':44s} {'Ign F1':>7s} {'F1':>7s} {'P':>7s} {'R':>7s}")
    for name, row in PAPER_TABLE_6.items():
        ign = "—" if row["ign_f1"] is None else f"{row['ign_f1']:.2f}"
        print(f"{name:44s} {ign:>7s} {row['f1']:7.2f} {'—':>7s} {'—':>7s}")
    print(f"{'glirel-onnx (this run)':44s} {scores['ign_f1']:7.2f} {scores['f1']:7.2f} "
          f"{scores['precision']:7.2f} {scores['recall']:7.2f}")
    breakdown = {}
    if seen is not None:
        kept = at(threshold)
        for name, relations in (("seen", set(relation_ids) & seen), ("unseen", set(relation_ids) - seen)):
            part = official_scores(subset(documents, relations), [p for p in kept if p[3] in relations], facts)
            breakdown[name] = part
            label = f"  {name} in training ({len(relations)} relations)"
            print(f"{label:44s} {part['ign_f1']:7.2f} {part['f1']:7.2f} {part['precision']:7.2f} {part['recall']:7.2f}")
    print(f"\n{scores['correct']} correct of {scores['predicted']} predicted, {scores['gold']} gold triples "
          f"({scores['correct_in_train']} correct ones also in the Ign facts)")
    swept = {}
    if sweep:
        print("\nthreshold sweep (diagnostic; the figure above uses the fixed threshold):")
        for cut in sweep:
            swept[cut] = official_scores(documents, at(cut), facts)
            print(f"  {cut:5.2f}: Ign F1 {swept[cut]['ign_f1']:6.2f}  F1 {swept[cut]['f1']:6.2f}  "
                  f"P {swept[cut]['precision']:6.2f}  R {swept[cut]['recall']:6.2f}")
    if args.output:
        Path(args.output).write_text(json.dumps({
            "scores": scores, "stats": stats, "seconds": seconds, "model": str(Path(args.model).resolve()),
            "split": args.split, "documents": len(documents), "threshold": threshold,
            "labels_per_prompt": args.labels_per_prompt, "aggregation": args.aggregation,
            "train_facts": args.train_facts, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.platform(), "paper": PAPER_TABLE_6, "sweep": {str(k): v for k, v in swept.items()},
            "breakdown": breakdown,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
