"""Word splitting, exactly as `glirel.GLiREL.batch_predict_relations` splits raw strings."""
from __future__ import annotations

import re
from typing import NamedTuple

WORD_PATTERN = re.compile(r"\w+(?:[-_]\w+)*|\S")


class SplitText(NamedTuple):
    words: list[str]
    char_spans: list[tuple[int, int]]  # [start, end) character offsets of each word


def split_words(text: str) -> SplitText:
    """Split `text` into words with their character offsets.

    Example:
        >>> split_words("Binsey, near Oxford.").words
        ['Binsey', ',', 'near', 'Oxford', '.']
    """
    matches = list(WORD_PATTERN.finditer(text))
    return SplitText([m.group() for m in matches], [(m.start(), m.end()) for m in matches])
