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
import os
import random
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

DEFAULT_DATA_DIR = Path(os.environ.get("GLIREL_ONNX_SHARED_DATA")
                        or Path(__file__).resolve().parent.parent.parent / "shared" / "data")
"""The shared data folder: ``$GLIREL_ONNX_SHARED_DATA``, else `../shared/data` beside the checkout."""

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
    """Write instances as JSONL (atomically: a temporary file renamed when complete); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for instance in instances:
            handle.write(json.dumps(instance, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
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


# ---------------------------------------------------------------------- training corpora from raw sources


class SourceError(ValueError):
    """A malformed row in a raw source file; the message starts with ``file:line``."""


def sentence_key(words: Sequence[str]) -> str:
    """A tokenization- and case-blind key for a sentence (letters and digits only), to find duplicates.

    Example:
        >>> sentence_key(["Ada", "Lovelace", ",", "born"]) == sentence_key(["ada lovelace", "born"])
        True
    """
    return re.sub(r"[\W_]+", "", "".join(words).lower())


def _instance(words: Sequence[str], head: tuple[int, int], tail: tuple[int, int], relation_id: str,
              names: dict[str, str], where: str, entity_type: str = "entity") -> Instance:
    """One sentence with one gold pair (spans inclusive), whitespace-only words dropped and spans remapped."""
    n = len(words)
    for side, (start, end) in (("head", head), ("tail", tail)):
        if not 0 <= start <= end < n:
            raise SourceError(f"{where}: {side} span [{start}, {end}] is outside the sentence's {n} words")
    if head == tail:
        raise SourceError(f"{where}: head and tail are the same span")
    keep = [i for i, word in enumerate(words) if isinstance(word, str) and word.strip()]
    new_index = {old: new for new, old in enumerate(keep)}
    clean = [words[i].strip() for i in keep]

    def remap(span: tuple[int, int], side: str) -> list[int]:
        inside = [new_index[i] for i in range(span[0], span[1] + 1) if i in new_index]
        if not inside:
            raise SourceError(f"{where}: the {side} span holds only whitespace")
        return [inside[0], inside[-1]]

    h, t = remap(head, "head"), remap(tail, "tail")
    if h == t:
        raise SourceError(f"{where}: head and tail are the same span")
    head_entity = {"position": h, "mention": " ".join(clean[h[0]:h[1] + 1]), "type": entity_type}
    tail_entity = {"position": t, "mention": " ".join(clean[t[0]:t[1] + 1]), "type": entity_type}
    return {
        "tokenized_text": clean,
        "ner": [[h[0], h[1], entity_type, head_entity["mention"]], [t[0], t[1], entity_type, tail_entity["mention"]]],
        "relations": [{"head": head_entity, "tail": tail_entity, "relation_id": relation_id,
                       "relation_text": label_name(relation_id, names)}],
    }


def _name_to_id(data_dir: str | Path) -> dict[str, str]:
    """FewRel relation name → Wikidata id (from FewRel's pid2name.json)."""
    table = _load_json(data_path(data_dir, "fewrel", "pid2name.json"))
    return {name: pid for pid, (name, _description) in table.items()}


def _lines(path: Path) -> Iterable[tuple[str, str]]:
    """(``file:line``, text) for every non-empty line; a byte that is not UTF-8 is refused with its line."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise SourceError(f"{where}: not UTF-8 ({error.reason} at byte {error.start})") from None
            if text.strip():
                yield where, text.rstrip("\r\n")


def read_wiki80(path: str | Path, data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Instance]:
    """Wiki80 / OpenNRE JSON lines (``token``, ``h``/``t`` with ``pos`` = [start, end), ``relation``) → instances.

    Example:
        >>> read_wiki80("../shared/data/fewrel-train/sources/wiki80/dev.txt")[0]["relations"][0]["relation_id"]  # doctest: +SKIP
        'P931'
    """
    path = Path(path)
    to_id, names = _name_to_id(data_dir), wikidata_names(data_dir)
    instances = []
    for where, text in _lines(path):
        try:
            row = json.loads(text)
            words, head, tail, relation = row["token"], row["h"]["pos"], row["t"]["pos"], row["relation"]
            if not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
                raise TypeError("`token` must be a list of strings")
            (hs, he), (ts, te) = (int(head[0]), int(head[1])), (int(tail[0]), int(tail[1]))
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise SourceError(f"{where}: not an OpenNRE row ({type(error).__name__}: {error})") from None
        if relation not in to_id:
            raise SourceError(f"{where}: unknown relation name {relation!r}")
        instances.append(_instance(words, (hs, he - 1), (ts, te - 1), to_id[relation], names, where))
    return instances


def read_fewrel_split_set(path: str | Path, data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Instance]:
    """A FewRel split-set file (tab-separated: 1-based label index, candidates, lowercased sentence,
    head, head token ids, tail, tail token ids, head id, tail id) → instances.

    The label index counts lines of ``relation_name.txt`` beside the file, which lists
    Wiki80's relations in ``wiki80/rel2id.json`` order.

    Example:
        >>> rows = read_fewrel_split_set("../shared/data/fewrel-train/sources/cfrl/10_100_10_2_train_0.txt")  # doctest: +SKIP
    """
    path = Path(path)
    rel2id = _load_json(path.parent.parent / "wiki80" / "rel2id.json")
    by_index = {index + 1: name for name, index in rel2id.items()}
    to_id, names = _name_to_id(data_dir), wikidata_names(data_dir)
    instances = []
    for where, text in _lines(path):
        columns = text.split("\t")
        if len(columns) != 9:
            raise SourceError(f"{where}: expected 9 tab-separated columns, found {len(columns)}")
        try:
            label = int(columns[0])
            head_ids = [int(x) for x in columns[4].split()]
            tail_ids = [int(x) for x in columns[6].split()]
        except ValueError as error:
            raise SourceError(f"{where}: a label index or token id is not an integer ({error})") from None
        if label not in by_index:
            raise SourceError(f"{where}: label index {label} is not a Wiki80 relation (1..{len(by_index)})")
        if not head_ids or not tail_ids:
            raise SourceError(f"{where}: empty head or tail token ids")
        words = columns[2].split(" ")
        instances.append(_instance(words, (min(head_ids), max(head_ids)), (min(tail_ids), max(tail_ids)),
                                   to_id[by_index[label]], names, where))
    return instances


WEBRED_MARKERS = re.compile(r"(SUBJ|OBJ)\{(.*?)\}")
WORDS = re.compile(r"\w+|[^\w\s]")


def read_webred(path: str | Path, data_dir: str | Path = DEFAULT_DATA_DIR) -> tuple[list[Instance], list[Instance]]:
    """WebRED JSON (sentences with ``SUBJ{…}``/``OBJ{…}`` markers, rater votes) → (positives, negatives).

    A sentence is positive when more than half its raters accepted the relation. A
    negative keeps its two entities, no relation, and the rejected relation's name in
    ``negative_labels`` (a hard negative: a label that was proposed and does not apply).

    Example:
        >>> positives, negatives = read_webred("../shared/data/webred/webred_5.json")  # doctest: +SKIP
    """
    path = Path(path)
    rows = _load_json(path)
    if not isinstance(rows, list):
        raise SourceError(f"{path}: WebRED data must be a list of sentences")
    names = wikidata_names(data_dir)
    positives, negatives = [], []
    for number, row in enumerate(rows):
        where = f"{path}: item {number}"
        try:
            sentence, relation = row["sentence"], row["relation_id"]
            positive = int(row["num_pos_raters"]) * 2 > int(row["num_raters"])
        except (KeyError, TypeError, ValueError) as error:
            raise SourceError(f"{where}: not a WebRED row ({type(error).__name__}: {error})") from None
        words: list[str] = []
        mentions: dict[str, list[tuple[int, int]]] = {"SUBJ": [], "OBJ": []}
        cursor = 0
        for marker in WEBRED_MARKERS.finditer(sentence):
            words.extend(WORDS.findall(sentence[cursor:marker.start()]))
            inner = WORDS.findall(marker.group(2))
            if not inner:
                raise SourceError(f"{where}: empty {marker.group(1)}{{}} marker")
            mentions[marker.group(1)].append((len(words), len(words) + len(inner) - 1))
            words.extend(inner)
            cursor = marker.end()
        words.extend(WORDS.findall(sentence[cursor:]))
        if not mentions["SUBJ"] or not mentions["OBJ"]:
            raise SourceError(f"{where}: needs a SUBJ{{…}} and an OBJ{{…}} marker")
        # an entity marked more than once: its mention nearest the other entity
        spans = dict(zip(("SUBJ", "OBJ"), min(
            ((s, o) for s in mentions["SUBJ"] for o in mentions["OBJ"]),
            key=lambda pair: (abs(pair[0][0] - pair[1][0]), pair))))
        instance = _instance(words, spans["SUBJ"], spans["OBJ"], relation, names, where)
        if positive:
            positives.append(instance)
        else:
            instance["negative_labels"] = [instance["relations"][0]["relation_text"]]
            instance["relations"] = []
            negatives.append(instance)
    return positives, negatives


FEWREL64_SOURCES = ("wiki80/dev.txt", "wiki80/train_0.1.txt", "wiki80/train_0.01.txt",
                    "cfrl/10_100_10_2_train_0.txt", "cfrl/10_100_10_5_train_0.txt", "cfrl/10_100_10_10_train_0.txt",
                    "cfrl/10_100_10_2_test_0.txt", "cfrl/10_100_10_5_test_0.txt", "cfrl/10_100_10_10_test_0.txt")
"""The raw files of ``fewrel-train/sources``, cased Wiki80 first (so a duplicate keeps its cased copy)."""


def fewrel64(data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Instance]:
    """FewRel's 64 training relations from the raw sources: val_wiki's relations and sentences removed,
    duplicate (sentence, pair)s removed (the first, cased, copy kept), whitespace-only words dropped.

    Example:
        >>> len(fewrel64("../shared/data"))  # doctest: +SKIP
        17281
    """
    root = data_path(data_dir, "fewrel-train", "sources")
    val_wiki = load_fewrel(data_path(data_dir, "fewrel", "val_wiki.json"))
    excluded_relations = set(val_wiki)
    val_wiki_sentences = {sentence_key(item["tokens"]) for items in val_wiki.values() for item in items}
    seen: set[tuple[str, str, str]] = set()  # (sentence, head, tail): one sentence may carry several pairs
    instances = []
    for name in FEWREL64_SOURCES:
        path = data_path(root, *name.split("/"))
        rows = read_wiki80(path, data_dir) if name.startswith("wiki80") else read_fewrel_split_set(path, data_dir)
        for instance in rows:
            relation = instance["relations"][0]
            sentence = sentence_key(instance["tokenized_text"])
            pair = (sentence, sentence_key([relation["head"]["mention"]]), sentence_key([relation["tail"]["mention"]]))
            if relation["relation_id"] in excluded_relations or sentence in val_wiki_sentences or pair in seen:
                continue
            seen.add(pair)
            instances.append(instance)
    return instances


def redocred_test_sentences(data_dir: str | Path = DEFAULT_DATA_DIR) -> set[str]:
    """`sentence_key`s of every Re-DocRED test sentence (kept out of training)."""
    documents = load_redocred(data_path(data_dir, "redocred", "test_revised.json"))
    return {sentence_key(sentence) for doc in documents for sentence in doc["sents"]}


def training_corpus(data_dir: str | Path = DEFAULT_DATA_DIR) -> dict[str, list[Instance]]:
    """The default model's training and calibration data, by source (deterministic).

    * ``fewrel64``: FewRel's training relations (MIT);
    * ``webred_positive`` / ``webred_negative``: WebRED-5 (CC BY 4.0) majority-positive
      sentences, and majority-negative ones as pairs with no relation;
    * ``redocred``: Re-DocRED dev sentences (MIT), every entity pair, triples where annotated,
      sentences without any triple kept as negatives;
    * ``calibration``: FewRel sentences of the held-out relations, never trained on, for
      choosing the default threshold.

    Kept out of training: every FewRel val_wiki relation and sentence, the Wiki-ZSL-style
    hold-out relations (`wikizsl_holdout_relations`), every sentence that occurs in
    Re-DocRED test. A sentence of a held-out relation is dropped (or, in Re-DocRED, its
    triple removed), never turned into a negative.

    Example:
        >>> corpus = training_corpus("../shared/data")  # doctest: +SKIP
        >>> sorted(corpus)  # doctest: +SKIP
        ['calibration', 'fewrel64', 'redocred', 'webred_negative', 'webred_positive']
    """
    val_wiki = set(fewrel_val_wiki_relations(data_dir))
    holdout = set(wikizsl_holdout_relations(data_dir))
    test_keys = redocred_test_sentences(data_dir)

    def allowed(instance: Instance) -> bool:
        return sentence_key(instance["tokenized_text"]) not in test_keys

    def relation_of(instance: Instance) -> Optional[str]:
        return instance["relations"][0]["relation_id"] if instance["relations"] else None

    few = [i for i in fewrel64(data_dir) if allowed(i)]
    positives, negatives = read_webred(data_path(data_dir, "webred", "webred_5.json"), data_dir)
    names = wikidata_names(data_dir)
    documents = load_redocred(data_path(data_dir, "redocred", "dev_revised.json"))
    redocred = [i for i in redocred_to_glirel(documents, names, exclude_relations=val_wiki | holdout) if allowed(i)]
    for instance in redocred:
        instance.pop("doc", None), instance.pop("sents", None)
    # a rejected WebRED label that is one of the unseen relations would teach that label: drop the sentence
    negatives = [i for i in negatives if allowed(i) and i["negative_labels"][0] not in
                 {label_name(r, names) for r in val_wiki | holdout}]
    return {
        "fewrel64": [i for i in few if relation_of(i) not in holdout],
        "webred_positive": [i for i in positives if allowed(i) and relation_of(i) not in val_wiki | holdout],
        "webred_negative": negatives,
        "redocred": redocred,
        "calibration": [i for i in few if relation_of(i) in holdout],
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m glirel_export.datasets OUT_DIR``: write the training corpus as glirel JSONL, one file per source."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m glirel_export.datasets", description=main.__doc__)
    parser.add_argument("out_dir", help="folder for train.jsonl, calibration.jsonl and one file per source")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="shared data folder (or $GLIREL_ONNX_SHARED_DATA)")
    args = parser.parse_args(argv)
    try:
        corpus = training_corpus(args.data_dir)
    except (SourceError, FileNotFoundError) as error:
        print(f"error: {error}")
        return 2
    out = Path(args.out_dir)
    train: list[Instance] = []
    for source, instances in corpus.items():
        count = write_jsonl(instances, out / f"{source}.jsonl")
        print(f"{source}: {count} sentences")
        if source != "calibration":
            train.extend(instances)
    print(f"train: {write_jsonl(train, out / 'train.jsonl')} sentences -> {out / 'train.jsonl'}")
    names = wikidata_names(args.data_dir)
    pool = sorted(label_name(r, names) for r in wikizsl_holdout_relations(args.data_dir))
    (out / "calibration_labels.json").write_text(json.dumps(pool, indent=1) + "\n")
    print(f"calibration label pool: {len(pool)} held-out relation names -> {out / 'calibration_labels.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
