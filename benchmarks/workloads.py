"""Benchmark workloads shaped like the GLiREL paper's Table 3 speed test.

- ``fewrel``: one gold entity pair per sentence (two entities; GLiREL scores both
  ordered pairs, as upstream always does).
- ``wikizsl``: about two gold pairs per sentence on average, up to 12, over 2–6
  entities (Wiki-ZSL groups several triples per sentence).

Sentences and entity spans come from FewRel's ``val_wiki.json`` when the data
directory has it (Wiki-ZSL itself is not in the shared data: the Wiki-ZSL-shaped
workload takes FewRel sentences and adds entities on other words, with the pair
statistics above). Without the data, sentences are generated with FewRel's length
statistics (mean ≈ 25 words). `Workload.source` says which was used.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

# Wiki-ZSL-shaped gold pairs per sentence: mean 2.0, max 12
WIKIZSL_PAIR_COUNTS = list(range(1, 13))
WIKIZSL_PAIR_WEIGHTS = [0.52, 0.22, 0.10, 0.055, 0.035, 0.022, 0.015, 0.011, 0.008, 0.006, 0.004, 0.004]
FEWREL_LENGTH_MEAN, FEWREL_LENGTH_SD, FEWREL_LENGTH_MIN, FEWREL_LENGTH_MAX = 24.9, 10.4, 5, 90

GENERIC_LABELS = [
    "place of birth", "country", "located in", "founded by", "member of", "spouse", "child", "employer",
    "part of", "headquarters location", "genre", "director", "performer", "publisher", "capital",
    "instance of", "occupation", "position held", "record label", "sibling",
]
FILLER = ("the of and in to a was is for on as by with from at that his an which were are her it be this "
          "had also first after its their new has one two city state river university national war school "
          "team album film season league county district church party family world year series game").split()
NAMES = ("London Paris Berlin Oxford Thames Curie Warsaw Apple Jobs Cupertino California Lovelace Byron Tokyo "
         "Japan Germany Mississippi Missouri Girardeau Bridge Church Faroe Islands Marco Polo Doctor Nesbitt").split()


@dataclass
class Sentence:
    tokens: list[str]
    ner: list[list]  # [start, end_inclusive, type, text]
    gold_pairs: list[tuple[int, int]]  # (head, tail) indices into ner
    gold_label: Optional[str] = None  # FewRel relation name of gold_pairs[0], when known


@dataclass
class Workload:
    name: str
    sentences: list[Sentence]
    labels: list[str]
    descriptions: dict[str, str]
    source: str
    stats: dict = field(default_factory=dict)

    def texts(self) -> list[list[str]]:
        return [list(s.tokens) for s in self.sentences]

    def ner(self) -> list[list[list]]:
        return [[list(e) for e in s.ner] for s in self.sentences]

    def compute_stats(self) -> dict:
        n = max(len(self.sentences), 1)
        ents = [len(s.ner) for s in self.sentences]
        self.stats = {
            "sentences": len(self.sentences),
            "labels": len(self.labels),
            "mean_words": round(sum(len(s.tokens) for s in self.sentences) / n, 2),
            "mean_entities": round(sum(ents) / n, 2),
            "mean_gold_pairs": round(sum(len(s.gold_pairs) for s in self.sentences) / n, 2),
            "max_gold_pairs": max((len(s.gold_pairs) for s in self.sentences), default=0),
            "mean_ordered_pairs": round(sum(e * (e - 1) for e in ents) / n, 2),
        }
        return self.stats


def _fewrel_file(data_dir: Optional[Path]) -> Optional[Path]:
    if data_dir is None:
        return None
    path = Path(data_dir) / "fewrel" / "val_wiki.json"
    return path if path.is_file() else None


def _span(indices: list[list[int]]) -> tuple[int, int]:
    first = indices[0]
    return int(min(first)), int(max(first))


def _relation_names(data_dir: Optional[Path]) -> dict[str, tuple[str, str]]:
    if data_dir is None:
        return {}
    path = Path(data_dir) / "fewrel" / "pid2name.json"
    if not path.is_file():
        return {}
    return {pid: (v[0], v[1] if len(v) > 1 else "") for pid, v in json.loads(path.read_text()).items()}


def load_fewrel(data_dir: Optional[Path]) -> Optional[tuple[list[Sentence], dict[str, str]]]:
    """FewRel val_wiki sentences (with gold relation names) and label → description, or None."""
    path = _fewrel_file(data_dir)
    if path is None:
        return None
    names = _relation_names(data_dir)
    data = json.loads(path.read_text())
    sentences, descriptions = [], {}
    for pid, rows in data.items():
        name, description = names.get(pid, (pid, ""))
        descriptions[name] = description
        for row in rows:
            tokens = list(row["tokens"])
            (hs, he), (ts, te) = _span(row["h"][2]), _span(row["t"][2])
            ner = [[hs, he, "ENT", " ".join(tokens[hs:he + 1])], [ts, te, "ENT", " ".join(tokens[ts:te + 1])]]
            sentences.append(Sentence(tokens, ner, [(0, 1)], name))
    return sentences, descriptions


def _generated_sentence(rng: random.Random) -> list[str]:
    length = int(min(max(rng.gauss(FEWREL_LENGTH_MEAN, FEWREL_LENGTH_SD), FEWREL_LENGTH_MIN), FEWREL_LENGTH_MAX))
    return [rng.choice(NAMES) if rng.random() < 0.2 else rng.choice(FILLER) for _ in range(length - 1)] + ["."]


def _free_spans(tokens: list[str], taken: list[tuple[int, int]], count: int, rng: random.Random) -> list[tuple[int, int]]:
    """Up to `count` new 1–2-word spans not overlapping `taken` (nor each other)."""
    used = set()
    for s, e in taken:
        used.update(range(s, e + 1))
    out = []
    candidates = list(range(len(tokens)))
    rng.shuffle(candidates)
    for start in candidates:
        if len(out) == count:
            break
        width = 2 if rng.random() < 0.3 else 1
        end = min(start + width - 1, len(tokens) - 1)
        if any(i in used for i in range(start, end + 1)) or tokens[start] in {".", ","}:
            continue
        used.update(range(start, end + 1))
        out.append((start, end))
    return out


def _entities_for_pairs(k: int) -> int:
    n = 2
    while n * (n - 1) // 2 < k:
        n += 1
    return n


def _base_sentences(data_dir: Optional[Path], rng: random.Random, count: int) -> tuple[list[Sentence], dict[str, str], str]:
    loaded = load_fewrel(data_dir)
    if loaded is not None:
        sentences, descriptions = loaded
        picked = rng.sample(sentences, min(count, len(sentences)))
        return picked, descriptions, f"FewRel val_wiki.json ({_fewrel_file(data_dir)})"
    out = []
    for _ in range(count):
        tokens = _generated_sentence(rng)
        spans = _free_spans(tokens, [], 2, rng)
        while len(spans) < 2:  # very short sentence: take the first words
            spans = [(0, 0), (1, 1)]
        ner = [[s, e, "ENT", " ".join(tokens[s:e + 1])] for s, e in spans]
        out.append(Sentence(tokens, ner, [(0, 1)], None))
    return out, {label: f"the relation {label}" for label in GENERIC_LABELS}, "generated (FewRel length statistics; data not found)"


def pick_labels(descriptions: dict[str, str], gold: list[Optional[str]], m: int, rng: random.Random,
                data_dir: Optional[Path] = None) -> tuple[list[str], dict[str, str]]:
    """m labels: the gold relations present first, then others (FewRel pid2name, then generic)."""
    labels: list[str] = []
    for g in gold:
        if g and g not in labels and len(labels) < m:
            labels.append(g)
    pool = [name for name in descriptions if name not in labels]
    pool += [name for name, _ in _relation_names(data_dir).values() if name not in labels and name not in pool]
    pool += [name for name in GENERIC_LABELS if name not in labels and name not in pool]
    pool = [name for name in dict.fromkeys(pool) if name and name != "None"]  # pid2name repeats some names
    rng.shuffle(pool)
    labels += pool[: m - len(labels)]
    all_names = {name: desc for name, desc in _relation_names(data_dir).values()}
    all_names.update(descriptions)
    return labels, {label: all_names.get(label) or f"the relation {label}" for label in labels}


def fewrel_workload(data_dir: Optional[Path], n: int, m: int = 10, seed: int = 0) -> Workload:
    """n sentences of the FewRel shape: two entities, one gold pair; gold relations among the m labels."""
    rng = random.Random(seed)
    loaded = load_fewrel(data_dir)
    if loaded is not None:
        sentences, descriptions = loaded
        relations = sorted({s.gold_label for s in sentences})
        chosen = set(rng.sample(relations, min(m, len(relations))))
        pool = [s for s in sentences if s.gold_label in chosen]  # the test set of m unseen relations
        picked = rng.sample(pool, min(n, len(pool)))
        source = f"FewRel val_wiki.json ({_fewrel_file(data_dir)})"
    else:
        picked, descriptions, source = _base_sentences(None, rng, n)
    labels, descs = pick_labels(descriptions, [s.gold_label for s in picked], m, rng, data_dir)
    workload = Workload("fewrel", picked, labels, descs, source)
    workload.compute_stats()
    return workload


def wikizsl_workload(data_dir: Optional[Path], n: int, m: int = 10, seed: int = 1) -> Workload:
    """n sentences of the Wiki-ZSL shape: k gold pairs (mean 2, max 12) over the fewest entities holding them."""
    rng = random.Random(seed)
    base, descriptions, source = _base_sentences(data_dir, rng, n)
    out = []
    for sentence in base:
        k = rng.choices(WIKIZSL_PAIR_COUNTS, WIKIZSL_PAIR_WEIGHTS)[0]
        entities = _entities_for_pairs(k)
        taken = [(e[0], e[1]) for e in sentence.ner]
        extra = _free_spans(sentence.tokens, taken, entities - 2, rng)
        ner = [list(e) for e in sentence.ner] + [[s, e, "ENT", " ".join(sentence.tokens[s:e + 1])] for s, e in extra]
        unordered = [(i, j) for i in range(len(ner)) for j in range(i + 1, len(ner))]
        rest = unordered[1:]
        rng.shuffle(rest)
        gold = [(0, 1)] + rest[: k - 1]
        out.append(Sentence(sentence.tokens, ner, gold, sentence.gold_label))
    labels, descs = pick_labels(descriptions, [s.gold_label for s in out], m, rng, data_dir)
    if "FewRel" in source:
        source = f"Wiki-ZSL-shaped from {source}: extra entities on other words"
    workload = Workload("wikizsl", out, labels, descs, source)
    workload.compute_stats()
    return workload


def entity_sweep_workload(data_dir: Optional[Path], entities: int, n: int, m: int = 10, words: int = 120,
                          seed: int = 2) -> Workload:
    """n texts of a fixed length (`words`, FewRel sentences joined) with `entities` entities each."""
    rng = random.Random(seed)
    base, descriptions, source = _base_sentences(data_dir, rng, 8 * n + 8)
    out, cursor = [], 0
    for _ in range(n):
        tokens: list[str] = []
        while len(tokens) < words:
            tokens += base[cursor % len(base)].tokens
            cursor += 1
        tokens = tokens[:words]
        spans = sorted(_free_spans(tokens, [], entities, rng))
        ner = [[s, e, "ENT", " ".join(tokens[s:e + 1])] for s, e in spans]
        out.append(Sentence(tokens, ner, [(0, 1)], None))
    labels, descs = pick_labels(descriptions, [], m, rng, data_dir)
    workload = Workload(f"entities={entities}", out, labels, descs, source)
    workload.compute_stats()
    return workload


def with_labels(workload: Workload, m: int, data_dir: Optional[Path], seed: int = 3) -> Workload:
    """The same sentences with m labels (gold relations first)."""
    rng = random.Random(seed)
    labels, descs = pick_labels(workload.descriptions, [s.gold_label for s in workload.sentences], m, rng, data_dir)
    out = Workload(f"{workload.name} labels={m}", workload.sentences, labels, descs, workload.source)
    out.compute_stats()
    return out
