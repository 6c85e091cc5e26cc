"""Raw strings are split into words exactly as glirel splits them, checked against glirel itself."""
from __future__ import annotations

import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glirel_runtime.words import split_words

VARIED_TEXTS = [
    "Marie Curie was born in Warsaw, and married Pierre Curie.",
    "state-of-the-art snake_case e-mail -- a- -b _x x_ a__b a--b 3.14 1,000 U.S. don't",
    "Zürich, São Paulo and Ñuñoa; café naïve résumé Kraków",
    "e\u0301t\u00e9 cafe\u0301 \u0915\u094d\u0937 \u0928\u092e\u0938\u094d\u0924\u0947",  # combining marks
    "北京是中国的首都。東京は日本の首都です。서울은 한국의 수도입니다.",
    "العاصمة هي القاهرة. שלום עולם",
    "🙂 emoji👍🏽 and 👨‍👩‍👧 family; ½ ² ٣ Ⅻ",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em-space\u3000ideographic",
    "zero\u200bwidth\u200djoiner \ufeffbom",
    "",
    "   ",
    "(parenthesised) [bracketed] {braced} <angled> \"quoted\" 'single' «guillemets»",
    "https://example.org/a_b-c?x=1&y=2 user@example.com #hashtag @mention $100 50%",
]


def glirel_split(text: str) -> list[str]:
    """The words glirel's own `batch_predict_relations` makes of `text` (its code, stopped before the model runs)."""
    from glirel import GLiREL as ReferenceGLiREL

    class Captured(Exception):
        pass

    captured: list[list[str]] = []

    def collate_fn(batch, **_):
        captured.append(batch[0]["tokenized_text"])
        raise Captured

    stand_in = types.SimpleNamespace(device="cpu", collate_fn=collate_fn)
    with pytest.raises(Captured):
        ReferenceGLiREL.batch_predict_relations(stand_in, [text], ["label"])
    return captured[0]


def check_against_glirel(text: str) -> None:
    split = split_words(text)
    assert split.words == glirel_split(text), repr(text)
    assert len(split.char_spans) == len(split.words)
    previous_end = 0
    for word, (start, end) in zip(split.words, split.char_spans):
        assert text[start:end] == word
        assert start >= previous_end and text[previous_end:start].strip() == "", repr(text)  # only whitespace between words
        previous_end = end
    assert text[previous_end:].strip() == ""


@pytest.mark.parametrize("text", VARIED_TEXTS)
def test_varied_text_splits_as_glirel_splits(text):
    check_against_glirel(text)


WORDY = st.sampled_from(list("aZé9_-.,;'’ \t\n\u00a0\u200b") + ["ß", "Ω", "字", "\u0301", "🙂", "٣", "--", "__"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(WORDY, max_size=40).map("".join)))
def test_any_text_splits_as_glirel_splits(text):
    check_against_glirel(text)


def test_stand_in_runs_glirels_splitter():
    """The glirel stand-in really runs glirel's splitter: it disagrees with a naive whitespace split."""
    text = "Warsaw, Poland's capital (pop. 1.8M)."
    assert glirel_split(text) != text.split()
    assert glirel_split(text) == split_words(text).words
