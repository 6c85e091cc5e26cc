"""Input checks with messages that name the item and the offending value.

Every check runs before any model call; in a batch, the messages say which
item (by index) is wrong and why.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from .words import split_words


class InputError(ValueError):
    """One or more batch items are invalid.

    `errors` maps item index → message; `causes` maps item index → the original
    `ValueError`/`TypeError`.
    """

    def __init__(self, errors: Mapping[int, Exception | str]):
        self.causes = {i: e if isinstance(e, Exception) else ValueError(e) for i, e in errors.items()}
        self.errors = {i: str(e) for i, e in errors.items()}
        lines = [f"item {index}: {message}" for index, message in sorted(self.errors.items())]
        super().__init__(f"{len(lines)} invalid input item(s):\n  " + "\n  ".join(lines))


@dataclass
class LabelSpec:
    """Labels in prompt order and optional head/tail entity-type constraints."""

    labels: list[str]
    allowed_head: dict[str, set[str]] = field(default_factory=dict)
    allowed_tail: dict[str, set[str]] = field(default_factory=dict)

    @property
    def constrained(self) -> bool:
        return bool(self.allowed_head or self.allowed_tail)


@dataclass
class TextItem:
    """A validated input text: its words, character offsets (raw strings only) and entities."""

    words: list[str]
    char_spans: Optional[list[tuple[int, int]]]
    spans: list[tuple[int, int]]  # word start, inclusive end
    entity_types: list[Optional[str]]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_labels(labels: Any) -> LabelSpec:
    """Accept a list of label names, or glirel's constraint form.

    Example:
        >>> check_labels(["spouse", "founded by"]).labels
        ['spouse', 'founded by']
        >>> spec = check_labels({"glirel_labels": {"founded by": {"allowed_head": ["ORG"], "allowed_tail": ["PER"]}}})
        >>> spec.allowed_head
        {'founded by': {'ORG'}}
    """
    constraints: Mapping[str, Any] = {}
    if isinstance(labels, Mapping):
        if "glirel_labels" in labels:
            labels = labels["glirel_labels"]
        if not isinstance(labels, Mapping):
            raise TypeError(f"'glirel_labels' must map label → constraints, got {type(labels).__name__}")
        constraints, labels = labels, list(labels)
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a list of strings or a {{'glirel_labels': {{...}}}} dict, got {labels!r}")
    if not labels:
        raise ValueError("labels is empty: give at least one relation label")
    seen = set()
    for label in labels:
        if not isinstance(label, str):
            raise TypeError(f"label {label!r} is a {type(label).__name__}, not a string")
        if not label.strip():
            raise ValueError(f"label {label!r} is empty")
        if label in seen:
            raise ValueError(f"label {label!r} is given twice")
        seen.add(label)
    spec = LabelSpec(list(labels))
    for label, rule in constraints.items():
        if rule is None:
            continue
        if not isinstance(rule, Mapping):
            raise TypeError(f"constraints for label {label!r} must be a dict, got {rule!r}")
        unknown = set(rule) - {"allowed_head", "allowed_tail"}
        if unknown:
            raise ValueError(f"constraints for label {label!r} have unknown keys {sorted(unknown)}")
        for key, target in (("allowed_head", spec.allowed_head), ("allowed_tail", spec.allowed_tail)):
            if key in rule:
                types = rule[key]
                if isinstance(types, str) or not isinstance(types, Sequence):
                    raise TypeError(f"{key} of label {label!r} must be a list of entity types, got {types!r}")
                target[label] = set(types)
    return spec


def check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number in [0, 1], got {threshold!r}")
    value = float(threshold)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    return value


def check_top_k(top_k: Any) -> int:
    if not _is_int(top_k):
        raise TypeError(f"top_k must be an integer (-1 for all), got {top_k!r}")
    if top_k == 0 or top_k < -1:
        raise ValueError(f"top_k must be -1 (keep all) or a positive integer, got {top_k!r}")
    return int(top_k)


def check_text(text: Any) -> tuple[list[str], Optional[list[tuple[int, int]]]]:
    """Return words and (for raw strings) character offsets."""
    if isinstance(text, str):
        if not text.strip():
            raise ValueError(f"text is empty: {text!r}")
        split = split_words(text)
        return split.words, split.char_spans
    if isinstance(text, Sequence):
        words = list(text)
        if not words:
            raise ValueError("token list is empty")
        for position, word in enumerate(words):
            if not isinstance(word, str):
                raise TypeError(f"token {position} is {word!r} ({type(word).__name__}), not a string")
        return words, None
    raise TypeError(f"text must be a string or a list of tokens, got {type(text).__name__}")


def check_entities(ner: Any, words: list[str], text: Any) -> tuple[list[tuple[int, int]], list[Optional[str]]]:
    """Validate glirel's `[start, end_inclusive, type, (text)]` entity list against the words."""
    if ner is None:
        raise ValueError("ner is missing: give the entities as [start, end_inclusive, type, text] word spans")
    if isinstance(ner, (str, bytes)) or not isinstance(ner, Sequence):
        raise TypeError(f"ner must be a list of [start, end_inclusive, type, text] spans, got {type(ner).__name__}")
    spans: list[tuple[int, int]] = []
    types: list[Optional[str]] = []
    seen: dict[tuple[int, int], int] = {}
    for position, entity in enumerate(ner):
        if isinstance(entity, (str, bytes)) or not isinstance(entity, Sequence) or len(entity) < 2:
            raise TypeError(f"entity {position} must be [start, end_inclusive, type, text], got {entity!r}")
        start, end = entity[0], entity[1]
        if not (_is_int(start) and _is_int(end)):
            raise TypeError(f"entity {position} {list(entity)!r}: start and end must be integer word indices")
        start, end = int(start), int(end)
        if start > end:
            raise ValueError(f"entity {position} {list(entity)!r}: start {start} > end {end} (ends are inclusive)")
        if start < 0 or end >= len(words):
            hint = ""
            if isinstance(text, str) and end <= len(text):
                hint = " It looks like character offsets: ner spans are word indices with an inclusive end."
            raise ValueError(
                f"entity {position} {list(entity)!r} is outside the text's {len(words)} words (indices 0..{len(words) - 1}).{hint}"
            )
        if len(entity) >= 4 and isinstance(text, str) and isinstance(entity[3], str):
            mention = entity[3]
            word_text = " ".join(words[start:end + 1])
            if mention not in (word_text, "".join(words[start:end + 1])) and mention in (text[start:end], text[start:end + 1]):
                raise ValueError(
                    f"entity {position} {list(entity)!r}: {mention!r} is the text's characters {start}..{end}, but words "
                    f"{start}..{end} are {word_text!r}. ner spans are word indices with an inclusive end, not character offsets."
                )
        if (start, end) in seen:
            raise ValueError(f"entity {position} {list(entity)!r} repeats the span of entity {seen[(start, end)]}")
        seen[(start, end)] = position
        spans.append((start, end))
        types.append(entity[2] if len(entity) >= 3 else None)
    return spans, types


def check_item(text: Any, ner: Any) -> TextItem:
    words, char_spans = check_text(text)
    spans, types = check_entities(ner, words, text)
    return TextItem(words, char_spans, spans, types)
