"""Convert public relation-extraction corpora to `glirel`'s JSONL format, and define the splits.

Torch-free (only the standard library) so the zero-shot benchmark can use it.

An instance is a dict::

    {"tokenized_text": [...words...],
     "ner": [[start, end_inclusive, type, text], ...],
     "relations": [{"head": {"position": [s, e], "mention": str, "type": str},
                    "tail": {...}, "relation_text": "place of birth", "relation_id": "P19"}, ...]}

Re-DocRED (document-level) becomes sentence windows:

* one instance per window of ``window`` consecutive sentences (default 1: single sentences);
* every mention of every entity that lies inside the window is an ``ner`` span
  (type = the entity's DocRED type, text = the mention's words);
* coreference is resolved by the annotation: a document-level triple ``(h, r, t)``
  labels *every* (head mention, tail mention) pair inside the window, so all
  mentions of an entity pair that co-occur in the window carry the relation;
  mentions of the same entity are never related to each other (DocRED has no
  coreference label) and are plain negatives;
* a triple whose head or tail has no mention inside the window is dropped
  (the window does not state it);
* windows with fewer than two entity mentions are skipped.

Example:
    >>> data = load_redocred("../shared/data/redocred/dev_revised.json")  # doctest: +SKIP
    >>> instances = redocred_to_glirel(data, wikidata_names("../shared/data"))  # doctest: +SKIP
"""
from __future__ import annotations

import json
import random
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
"""`../shared/data` relative to the repository (where the shared data lives)."""

Instance = dict[str, Any]


def data_path(data_dir: str | Path, *parts: str) -> Path:
    """A file under the shared data directory; raises FileNotFoundError naming what is missing.

    Example:
        >>> data_path("../shared/data", "fewrel", "val_wiki.json")  # doctest: +SKIP
        PosixPath('../shared/data/fewrel/val_wiki.json')
    """
    path = Path(data_dir).joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: pass --data-dir pointing at the shared data folder "
            f"(expected layout: fewrel/, redocred/, glirel/, splits/; see ../shared/README.md)"
        )
    return path


def _load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    stat = path.stat()
    return _cached_json(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _cached_json(path: str, _mtime_ns: int, _size: int) -> Any:
    # shared, read-only data files are parsed once per process; converters never mutate what they read
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_jsonl(path: str | Path) -> list[Instance]:
    """Read a glirel JSONL file."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_jsonl(instances: Iterable[Instance], path: str | Path) -> int:
    """Write instances as JSONL; returns how many were written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for instance in instances:
            handle.write(json.dumps(instance, ensure_ascii=False) + "\n")
            count += 1
    return count


# ---------------------------------------------------------------------- relation names


def wikidata_names(data_dir: str | Path = DEFAULT_DATA_DIR) -> dict[str, str]:
    """Wikidata property id → English name, from the shared name files (all CC0 Wikidata labels).

    Precedence: FewRel's ``pid2name.json`` (the names FewRel zero-shot work uses), then
    Wiki-ZSL's ``pid2name_wiki.json``, then ``all_wikidata_properties.json``.

    Example:
        >>> wikidata_names("../shared/data")["P19"]  # doctest: +SKIP
        'place of birth'
    """
    names: dict[str, str] = {}
    for row in _load_json(data_path(data_dir, "glirel", "all_wikidata_properties.json")):
        pid = row["property"].rsplit("/", 1)[-1]
        names[pid] = row["propertyLabel"]
    for pid, (name, _description) in _load_json(data_path(data_dir, "glirel", "pid2name_wiki.json")).items():
        names[pid] = name
    for pid, (name, _description) in _load_json(data_path(data_dir, "fewrel", "pid2name.json")).items():
        names[pid] = name
    names.pop("P0", None)  # Wiki-ZSL's "None"
    return names


def label_name(relation: str, names: dict[str, str]) -> str:
    """Readable label for a relation id: the Wikidata name, else the id with ``_`` → space.

    Example:
        >>> label_name("P19", {"P19": "place of birth"}), label_name("occurs_in", {})
        ('place of birth', 'occurs in')
    """
    if relation in names:
        return names[relation]
    return relation.replace("_", " ").strip()


# ---------------------------------------------------------------------- FewRel


def _span(positions: Sequence[Sequence[int]]) -> tuple[int, int]:
    first = positions[0]  # FewRel lists one mention per entity in practice; keep the first
    return int(min(first)), int(max(first))


def fewrel_to_glirel(fewrel: dict[str, list[dict[str, Any]]], names: dict[str, str]) -> list[Instance]:
    """FewRel JSON (relation id → sentences with ``h``/``t``) → one instance per sentence.

    Each instance has the two entities as ``ner`` and the gold triple; ``relation_id``
    keeps the FewRel key. Entity type is ``"entity"`` (FewRel has none).

    Example:
        >>> fewrel = {"P26": [{"tokens": ["Ada", "married", "Bob"], "h": ["ada", "Q1", [[0]]], "t": ["bob", "Q2", [[2]]]}]}
        >>> fewrel_to_glirel(fewrel, {"P26": "spouse"})[0]["relations"][0]["relation_text"]
        'spouse'
    """
    if not isinstance(fewrel, dict):
        raise ValueError("FewRel data must be a dict of relation id → list of sentences")
    instances = []
    for relation, items in fewrel.items():
        text = label_name(relation, names)
        for item in items:
            tokens = list(item["tokens"])
            (hs, he), (ts, te) = _span(item["h"][2]), _span(item["t"][2])
            head = {"position": [hs, he], "mention": " ".join(tokens[hs:he + 1]), "type": "entity"}
            tail = {"position": [ts, te], "mention": " ".join(tokens[ts:te + 1]), "type": "entity"}
            instances.append({
                "tokenized_text": tokens,
                "ner": [[hs, he, "entity", head["mention"]], [ts, te, "entity", tail["mention"]]],
                "relations": [{"head": head, "tail": tail, "relation_text": text, "relation_id": relation}],
            })
    return instances


def load_fewrel(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Read a FewRel JSON file (val_wiki, val_nyt, val_pubmed, …)."""
    return _load_json(path)


# ---------------------------------------------------------------------- Re-DocRED


def load_redocred(path: str | Path) -> list[dict[str, Any]]:
    """Read a Re-DocRED JSON file (list of documents)."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: Re-DocRED data must be a list of documents")
    return data


def redocred_to_glirel(
    documents: Sequence[dict[str, Any]],
    names: dict[str, str],
    window: int = 1,
    exclude_relations: Iterable[str] = (),
    keep_empty: bool = True,
) -> list[Instance]:
    """Re-DocRED documents → sentence-window instances (see the module docstring for mentions/coreference).

    `exclude_relations` (Wikidata ids) are removed from the triples: their pairs stay in
    the text as unlabelled pairs. `keep_empty=False` drops windows without any triple.

    Example:
        >>> doc = {"sents": [["Ada", "married", "Bob", "."]], "labels": [{"h": 0, "t": 1, "r": "P26"}],
        ...        "vertexSet": [[{"pos": [0, 1], "sent_id": 0, "type": "PER", "name": "Ada"}],
        ...                      [{"pos": [2, 3], "sent_id": 0, "type": "PER", "name": "Bob"}]]}
        >>> redocred_to_glirel([doc], {"P26": "spouse"})[0]["relations"][0]["head"]["position"]
        [0, 0]
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 sentence, got {window}")
    excluded = set(exclude_relations)
    instances = []
    for doc_index, doc in enumerate(documents):
        sents = doc["sents"]
        triples: dict[tuple[int, int], list[str]] = {}
        for label in doc.get("labels", []):
            if label["r"] in excluded:
                continue
            triples.setdefault((label["h"], label["t"]), [])
            if label["r"] not in triples[(label["h"], label["t"])]:
                triples[(label["h"], label["t"])].append(label["r"])
        for first in range(0, max(len(sents) - window + 1, 1)):
            window_sents = list(range(first, min(first + window, len(sents))))
            offsets, tokens = {}, []
            for sid in window_sents:
                offsets[sid] = len(tokens)
                tokens.extend(sents[sid])
            mentions: dict[int, list[tuple[int, int]]] = {}
            ner, seen = [], set()
            for entity_id, entity in enumerate(doc["vertexSet"]):
                for mention in entity:
                    if mention["sent_id"] not in offsets:
                        continue
                    start = offsets[mention["sent_id"]] + mention["pos"][0]
                    end = offsets[mention["sent_id"]] + mention["pos"][1] - 1
                    if (start, end) in seen or end < start:
                        continue  # two entities sharing one span: keep the first
                    seen.add((start, end))
                    mentions.setdefault(entity_id, []).append((start, end))
                    ner.append([start, end, mention["type"], " ".join(tokens[start:end + 1])])
            if len(ner) < 2:
                continue
            ner.sort(key=lambda span: (span[0], span[1]))
            relations = []
            for (h, t), rel_ids in triples.items():
                if h not in mentions or t not in mentions or h == t:
                    continue
                for hs, he in mentions[h]:
                    for ts, te in mentions[t]:
                        for rel in rel_ids:
                            relations.append({
                                "head": {"position": [hs, he], "mention": " ".join(tokens[hs:he + 1]),
                                         "type": doc["vertexSet"][h][0]["type"]},
                                "tail": {"position": [ts, te], "mention": " ".join(tokens[ts:te + 1]),
                                         "type": doc["vertexSet"][t][0]["type"]},
                                "relation_text": label_name(rel, names),
                                "relation_id": rel,
                            })
            if not relations and not keep_empty:
                continue
            instances.append({"tokenized_text": tokens, "ner": ner, "relations": relations,
                              "doc": doc_index, "sents": window_sents})
    return instances


# ---------------------------------------------------------------------- splits

HOLDOUT_SIZE = 15
HOLDOUT_SEED = 0
HOLDOUT_MIN_TEST = 15
"""A held-out relation needs at least this many intra-sentence triples in Re-DocRED test."""
HOLDOUT_MAX_DEV_SHARE = 0.05
"""…and may carry at most this share of the training triples (keeps P17/P131-sized relations in training)."""


def fewrel_val_wiki_relations(data_dir: str | Path = DEFAULT_DATA_DIR) -> list[str]:
    """The 16 Wikidata ids of FewRel val_wiki (never trained on)."""
    return sorted(load_fewrel(data_path(data_dir, "fewrel", "val_wiki.json")))


def relation_counts(instances: Iterable[Instance]) -> Counter:
    """Relation id → number of labelled (head, tail) pairs."""
    counts: Counter = Counter()
    for instance in instances:
        pairs = {(tuple(r["head"]["position"]), tuple(r["tail"]["position"]), r["relation_id"]) for r in instance["relations"]}
        counts.update(rel for _, _, rel in pairs)
    return counts


def wikizsl_holdout_relations(
    data_dir: str | Path = DEFAULT_DATA_DIR, size: int = HOLDOUT_SIZE, seed: int = HOLDOUT_SEED
) -> list[str]:
    """Re-DocRED relations held out of training for the Wiki-ZSL-style evaluation.

    Candidates: in Wiki-ZSL's label set (``glirel/pid2name_wiki.json``), present in
    Re-DocRED, not a FewRel val_wiki relation, with ≥ `HOLDOUT_MIN_TEST` sentence-level
    triples in Re-DocRED test and ≤ `HOLDOUT_MAX_DEV_SHARE` of the dev triples;
    `size` of them are drawn with `random.Random(seed)`.

    Example:
        >>> len(wikizsl_holdout_relations("../shared/data"))  # doctest: +SKIP
        15
    """
    if not 1 <= size <= 30:
        raise ValueError(f"holdout size must be between 1 and 30, got {size}")
    data_path(data_dir, "redocred", "test_revised.json")
    return list(_holdout(str(Path(data_dir).resolve()), size, seed))


@lru_cache(maxsize=4)
def _holdout(data_dir: str, size: int, seed: int) -> tuple[str, ...]:
    names = wikidata_names(data_dir)
    wiki = set(_load_json(data_path(data_dir, "glirel", "pid2name_wiki.json"))) - {"P0"}
    fewrel = set(fewrel_val_wiki_relations(data_dir))
    dev = relation_counts(redocred_to_glirel(load_redocred(data_path(data_dir, "redocred", "dev_revised.json")), names))
    test = relation_counts(redocred_to_glirel(load_redocred(data_path(data_dir, "redocred", "test_revised.json")), names))
    total = sum(dev.values())
    candidates = sorted(r for r in wiki - fewrel
                        if test[r] >= HOLDOUT_MIN_TEST and dev[r] <= HOLDOUT_MAX_DEV_SHARE * total)
    if len(candidates) < size:
        raise ValueError(f"only {len(candidates)} Re-DocRED relations qualify for the hold-out, {size} asked")
    return tuple(sorted(random.Random(seed).sample(candidates, size)))


def training_instances(
    data_dir: str | Path = DEFAULT_DATA_DIR, window: int = 1, holdout: Optional[Sequence[str]] = None,
) -> tuple[list[Instance], dict[str, list[str]]]:
    """The training set: Re-DocRED dev (MIT) without FewRel val_wiki's and the hold-out's relations.

    Returns the instances (only windows with at least one remaining triple) and the
    split description ``{"fewrel_val_wiki": [...], "wikizsl_holdout": [...], "train": [...]}``
    (Wikidata ids).

    Example:
        >>> train, split = training_instances("../shared/data")  # doctest: +SKIP
        >>> set(split["train"]) & set(split["fewrel_val_wiki"])  # doctest: +SKIP
        set()
    """
    fewrel = fewrel_val_wiki_relations(data_dir)
    holdout = list(holdout) if holdout is not None else wikizsl_holdout_relations(data_dir)
    names = wikidata_names(data_dir)
    documents = load_redocred(data_path(data_dir, "redocred", "dev_revised.json"))
    instances = redocred_to_glirel(documents, names, window=window, exclude_relations=set(fewrel) | set(holdout),
                                   keep_empty=False)
    train_relations = sorted(relation_counts(instances))
    return instances, {"fewrel_val_wiki": fewrel, "wikizsl_holdout": sorted(holdout), "train": train_relations}


def webnlg_to_glirel(path: str | Path) -> list[Instance]:
    """WebNLG (JointIE format: ``sentences``, ``ner``, ``relations``) → instances. Evaluation only.

    Relation names are DBpedia camelCase; they are split into words
    (``birthPlace`` → ``birth place``) to serve as labels.
    """
    import re

    instances = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            offset = 0
            for sent, ner, rels in zip(row["sentences"], row["ner"], row["relations"]):
                spans = {(s - offset, e - offset) for s, e, _ in ner}
                ner_out = [[s, e, "entity", " ".join(sent[s:e + 1])] for s, e in sorted(spans)]
                relations = []
                for hs, he, ts, te, rel in rels:
                    text = re.sub(r"_\(.*\)$", "", rel).replace("_", " ")
                    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text).lower().strip()
                    head = [hs - offset, he - offset]
                    tail = [ts - offset, te - offset]
                    relations.append({"head": {"position": head, "mention": " ".join(sent[head[0]:head[1] + 1]), "type": "entity"},
                                      "tail": {"position": tail, "mention": " ".join(sent[tail[0]:tail[1] + 1]), "type": "entity"},
                                      "relation_text": text, "relation_id": rel})
                if len(ner_out) >= 2:
                    instances.append({"tokenized_text": list(sent), "ner": ner_out, "relations": relations})
                offset += len(sent)
    return instances
