"""Property tests (hypothesis) over the public API on a tiny model: whatever the text, entities, labels
and threshold, the relations point back at the input, scores are probabilities at or above the
threshold, batches keep input order, and a bad item is refused alone."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glirel_runtime.validation import InputError
from glirel_runtime.words import split_words

WORDS = ["Ada", "Lovelace", "met", "Byron", "in", "London", "Zürich", "São", "Paulo", "東京", "café", "naïve",
         "co-founder", "1976", ",", ".", "(", ")", "the", "x", "Ñuñoa", "e\u0301", "🙂"]
LABEL_POOL = ["spouse", "founded by", "located in", "place of birth", "père de", "capital of", "member of"]
TYPES = ["PER", "LOC", "ORG"]
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def texts_with_entities(draw):
    """A raw string or token list, and distinct entity spans (inclusive ends) over its words."""
    tokens = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=14))
    as_string = draw(st.booleans())
    text = " ".join(tokens) if as_string else tokens
    words = split_words(text).words if as_string else tokens
    starts = draw(st.lists(st.integers(0, len(words) - 1), max_size=5, unique=True))
    spans = [(start, min(len(words) - 1, start + draw(st.integers(0, 2)))) for start in starts]
    spans = list(dict.fromkeys(spans))
    ner = [[s, e, draw(st.sampled_from(TYPES)), " ".join(words[s:e + 1])] for s, e in spans]
    return text, words, ner


BAD_ITEMS = {
    "lone surrogate": ("Ada \ud800 met Byron", [[0, 0, "PER", "Ada"], [3, 3, "PER", "Byron"]]),
    "span outside": (["Ada", "met"], [[0, 0, "PER", "Ada"], [1, 5, "PER", "x"]]),
    "empty text": ("   ", []),
    "start after end": (["Ada", "met", "Byron"], [[2, 0, "PER", "x"], [1, 1, "PER", "met"]]),
    "duplicate span": (["Ada", "met", "Byron"], [[0, 0, "PER", "Ada"], [0, 0, "LOC", "Ada"]]),
    "ner not a list": (["Ada", "met"], "Ada:PER"),
}


@SETTINGS
@given(item=texts_with_entities(), labels=st.lists(st.sampled_from(LABEL_POOL), min_size=1, max_size=4, unique=True),
       threshold=st.floats(0.0, 1.0), top_k=st.sampled_from([-1, 1, 2]))
def test_relations_point_back_at_the_input(runtime, item, labels, threshold, top_k):
    text, words, ner = item
    relations = runtime.predict_relations(text, labels, ner=ner, threshold=threshold, top_k=top_k)
    spans = {(s, e) for s, e, _, _ in ner}
    per_pair: dict[tuple, int] = {}
    for relation in relations:
        (hs, he), (ts, te) = relation["head_pos"], relation["tail_pos"]
        assert (hs, he - 1) in spans and (ts, te - 1) in spans and (hs, he) != (ts, te)
        assert relation["head_text"] == words[hs:he] and relation["tail_text"] == words[ts:te]
        assert relation["label"] in labels
        assert 0.0 <= relation["score"] <= 1.0 and relation["score"] >= threshold
        if isinstance(text, str):
            for role in ("head", "tail"):
                start, end = relation[f"{role}_char_pos"]
                assert split_words(text[start:end]).words == relation[f"{role}_text"]
        key = (hs, he, ts, te)
        per_pair[key] = per_pair.get(key, 0) + 1
    if top_k > 0:
        assert all(count <= top_k for count in per_pair.values())
    if len(ner) < 2:
        assert relations == []


@SETTINGS
@given(items=st.lists(texts_with_entities(), min_size=1, max_size=6),
       bad=st.lists(st.tuples(st.integers(0, 6), st.sampled_from(sorted(BAD_ITEMS))), max_size=3),
       batch_size=st.integers(1, 4), chunk_size=st.integers(1, 5))
def test_batches_keep_order_and_isolate_bad_items(runtime, items, bad, batch_size, chunk_size):
    labels = LABEL_POOL[:3]
    alone = [runtime.predict_relations(text, labels, ner=ner, threshold=0.0) for text, _, ner in items]
    texts, ner_lists, expected = [text for text, _, _ in items], [ner for _, _, ner in items], list(alone)
    for position, kind in bad:
        position = min(position, len(texts))
        texts.insert(position, BAD_ITEMS[kind][0])
        ner_lists.insert(position, BAD_ITEMS[kind][1])
        expected.insert(position, kind)
    batched = runtime.batch_predict_relations(texts, labels, ner=ner_lists, threshold=0.0, batch_size=batch_size,
                                              on_error="return")
    streamed = list(runtime.predict_stream(zip(texts, ner_lists), labels, threshold=0.0, batch_size=batch_size,
                                           chunk_size=chunk_size, on_error="return"))
    assert len(batched) == len(streamed) == len(expected)
    for got_batched, got_streamed, want in zip(batched, streamed, expected):
        for got in (got_batched, got_streamed):
            if isinstance(want, str):
                assert isinstance(got, InputError), f"{want} was not refused"
                continue
            assert not isinstance(got, Exception), got
            assert [{k: v for k, v in r.items() if k != "score"} for r in got] == \
                   [{k: v for k, v in r.items() if k != "score"} for r in want]
            # padding beside other texts changes float32 round-off only
            assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-5)
    if any(isinstance(want, str) for want in expected):
        with pytest.raises(InputError) as error:
            runtime.batch_predict_relations(texts, labels, ner=ner_lists, threshold=0.0)
        assert set(error.value.errors) == {i for i, want in enumerate(expected) if isinstance(want, str)}
