"""Input checks with messages that name the item and the offending value.

Every check runs before any model call; in a batch, the messages say which
item (by index) is wrong and why.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

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
    """Labels in prompt order, with what each may carry: head/tail entity-type constraints,
    a description (the text the model reads in place of the name), its own threshold, and
    whether the relation is symmetric (one direction per entity pair is returned).

    Example:
        >>> spec = LabelSpec(["spouse", "founded by"], descriptions={"founded by": "organization founded by person"})
        >>> spec.prompts
        ['spouse', 'organization founded by person']
    """

    labels: list[str]
    allowed_head: dict[str, set[str]] = field(default_factory=dict)
    allowed_tail: dict[str, set[str]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    symmetric: set[str] = field(default_factory=set)

    @property
    def constrained(self) -> bool:
        return bool(self.allowed_head or self.allowed_tail)

    @property
    def prompts(self) -> list[str]:
        """The label texts the model reads, in label order (the description where one is given)."""
        return [self.descriptions.get(label, label) for label in self.labels]

    def subset(self, columns: Sequence[int]) -> "LabelSpec":
        """The spec restricted to the labels at `columns` (a prompt group), in that order."""
        names = [self.labels[c] for c in columns]
        keep = set(names)
        return LabelSpec(names, {k: v for k, v in self.allowed_head.items() if k in keep},
                         {k: v for k, v in self.allowed_tail.items() if k in keep},
                         {k: v for k, v in self.descriptions.items() if k in keep},
                         {k: v for k, v in self.thresholds.items() if k in keep}, self.symmetric & keep)


@dataclass
class TextItem:
    """A validated input text: its words, character offsets (raw strings only) and entities."""

    words: list[str]
    char_spans: Optional[list[tuple[int, int]]]
    spans: list[tuple[int, int]]  # word start, inclusive end
    entity_types: list[Optional[str]]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _encodes_as_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_utf8(value: str, what: str) -> str:
    """Refuse a string the tokenizer cannot take: one that is not encodable as UTF-8 (a lone surrogate).

    Example:
        >>> check_utf8("Zürich", "text")
        'Zürich'
        >>> check_utf8("bad \\ud800", "label")
        Traceback (most recent call last):
        ...
        ValueError: label 'bad \\ud800' holds '\\ud800' at character 4, which cannot be encoded as UTF-8 (a lone surrogate?)
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{what} {value!r} holds {value[error.start]!r} at character {error.start}, "
                         f"which cannot be encoded as UTF-8 (a lone surrogate?)") from None
    return value


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
        check_utf8(label, "label")
        if label in seen:
            raise ValueError(f"label {label!r} is given twice")
        seen.add(label)
    spec = LabelSpec(list(labels))
    for label, rule in constraints.items():
        if rule is None:
            continue
        if not isinstance(rule, Mapping):
            raise TypeError(f"constraints for label {label!r} must be a dict, got {rule!r}")
        unknown = set(rule) - set(LABEL_KEYS)
        if unknown:
            raise ValueError(f"label {label!r} has unknown keys {sorted(unknown)}; known: {list(LABEL_KEYS)}")
        if "description" in rule and rule["description"] is not None:
            description = rule["description"]
            if not isinstance(description, str) or not description.strip():
                raise TypeError(f"description of label {label!r} must be a non-empty string, got {description!r}")
            spec.descriptions[label] = description.strip()
        if rule.get("threshold") is not None:
            spec.thresholds[label] = check_threshold(rule["threshold"], f"threshold of label {label!r}")
        if "symmetric" in rule:
            if not isinstance(rule["symmetric"], bool):
                raise TypeError(f"symmetric of label {label!r} must be true or false, got {rule['symmetric']!r}")
            if rule["symmetric"]:
                spec.symmetric.add(label)
        for key, target in (("allowed_head", spec.allowed_head), ("allowed_tail", spec.allowed_tail)):
            if key in rule:
                types = rule[key]
                if isinstance(types, str) or not isinstance(types, Sequence):
                    raise TypeError(f"{key} of label {label!r} must be a list of entity types, got {types!r}")
                for entity_type in types:
                    if not isinstance(entity_type, str):
                        raise TypeError(f"{key} of label {label!r} must list entity types as strings, got {entity_type!r}")
                if not all(isinstance(t, str) for t in types):
                    raise TypeError(f"{key} of label {label!r} must be a list of entity type strings, got {types!r}")
                target[label] = set(types)
    prompts: dict[str, str] = {}
    for label, prompt in zip(spec.labels, spec.prompts):
        if prompt in prompts:
            raise ValueError(f"labels {prompts[prompt]!r} and {label!r} would both read {prompt!r} in the prompt")
        prompts[prompt] = label
    return spec


LABEL_KEYS = ("allowed_head", "allowed_tail", "description", "threshold", "symmetric")
"""What a label may carry in the ``{"glirel_labels": {label: {...}}}`` form."""


def check_threshold(threshold: Any, name: str = "threshold") -> float:
    """A probability threshold in [0, 1]; `name` says which one in the error.

    Example:
        >>> check_threshold(0.3)
        0.3
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {threshold!r}")
    value = float(threshold)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {threshold!r}")
    return value


DEFAULT_THRESHOLD_KEY = "*"
"""In a threshold mapping, the key whose value applies to every label not named."""


def label_thresholds(threshold: Any, spec: LabelSpec, default: float) -> np.ndarray:
    """[L] float: each label's threshold. `threshold` is None (each label's own, else `default`),
    a number (every label), or a mapping label → value, where ``"*"`` sets the value for labels
    not named. A value given in the call wins over one given with the label.

    Example:
        >>> spec = LabelSpec(["spouse", "founded by"])
        >>> label_thresholds({"spouse": 0.7, "*": 0.4}, spec, 0.5).tolist()
        [0.7, 0.4]
        >>> label_thresholds(None, spec, 0.5).tolist()
        [0.5, 0.5]
    """
    default = check_threshold(default, "default threshold")
    if threshold is None:
        values = {}
    elif isinstance(threshold, Mapping):
        unknown = sorted(str(k) for k in set(threshold) - set(spec.labels) - {DEFAULT_THRESHOLD_KEY})
        if unknown:
            raise ValueError(f"threshold names labels that are not in the label set: {unknown} "
                             f"(use {DEFAULT_THRESHOLD_KEY!r} for the value of every other label)")
        values = {k: check_threshold(v, f"threshold of label {k!r}") for k, v in threshold.items()}
        default = values.pop(DEFAULT_THRESHOLD_KEY, default)
    else:
        default, values = check_threshold(threshold), {}
        return np.full(len(spec.labels), default, dtype=np.float32)
    return np.array([values.get(label, spec.thresholds.get(label, default)) for label in spec.labels], dtype=np.float32)


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
        check_utf8(text, "text")
        split = split_words(text)
        return split.words, split.char_spans
    if isinstance(text, Sequence):
        words = list(text)
        if not words:
            raise ValueError("token list is empty")
        if all(type(word) is str for word in words) and _encodes_as_utf8("".join(words)):
            return words, None  # the common case in one pass; else find the token to name
        for position, word in enumerate(words):
            if not isinstance(word, str):
                raise TypeError(f"token {position} is {word!r} ({type(word).__name__}), not a string")
            check_utf8(word, f"token {position}")
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
        for field_index, field_name in ((2, "type"), (3, "text")):
            if len(entity) > field_index and isinstance(entity[field_index], str):
                check_utf8(entity[field_index], f"entity {position} {field_name}")
        if len(entity) >= 4 and isinstance(text, str) and isinstance(entity[3], str) and entity[3]:
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
