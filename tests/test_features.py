"""The label prompt is tokenized once per call to `FeatureBuilder.encode` (when a probe finds the
tokenizer's pieces independent of what precedes a word); either way the graph inputs must equal those of tokenizing ``prompt + words`` whole, text by text."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glirel_runtime import GLiREL
from glirel_runtime.features import FeatureBuilder, first_subtoken_positions

WORDS = ["Ada", "Lovelace", "met", "Byron", "in", "London", "Zürich", "São", "東京", "café", "naïve", "co-founder",
         "1976", ",", ".", "l'état", "e\u0301", "🙂", "[REL]", "[SEP]", "UNSEENWORDXYZ", "ﬁve"]
LABELS = ["spouse", "founded by", "place of birth", "père de", "headquarters location", "x"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])


def whole_sequence_inputs(builder: FeatureBuilder, labels, words):
    """What `encode` must produce: the prompt and the words tokenized as one sequence."""
    prompt = builder.prompt(labels)
    encoding = builder.tokenizer.encode(prompt + words, is_pretokenized=True)
    positions = first_subtoken_positions(encoding.word_ids, len(prompt) + len(words))
    return np.array(encoding.ids), positions[len(prompt):], positions[: 2 * len(labels)].reshape(len(labels), 2)


@pytest.fixture(scope="module")
def builders(variants):
    """Feature builders over a WordPiece and a Unigram/Metaspace tokenizer, the default model's, and one
    told its tokenizer is context-dependent (the whole-sequence path a probe failure selects)."""
    built = {name: GLiREL(variants[name].artifact).features for name in ("bert-dot", "deberta-dot")}
    built["default model"] = GLiREL.from_pretrained().features
    whole = FeatureBuilder(variants["deberta-dot"].artifact / "tokenizer.json", built["deberta-dot"].config)
    whole.__dict__["prompt_splits_exactly"] = False  # the cached probe's answer, overridden
    built["whole sequence"] = whole
    return built


@SETTINGS
@given(texts=st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), min_size=1, max_size=4),
       labels=st.lists(st.sampled_from(LABELS), min_size=1, max_size=4, unique=True))
@pytest.mark.parametrize("name", ["bert-dot", "deberta-dot", "default model", "whole sequence"])
def test_prompt_once_equals_whole_sequence(builders, name, texts, labels):
    builder = builders[name]
    spans = [[(0, len(words) - 1)] for words in texts]
    for words, encoded in zip(texts, builder.encode(labels, texts, spans)):
        input_ids, word_index, label_index = whole_sequence_inputs(builder, labels, words)
        assert encoded.input_ids.tolist() == input_ids.tolist()
        assert encoded.word_index.tolist() == word_index.tolist()
        assert encoded.label_index.tolist() == label_index.tolist()


def test_the_shipped_tokenizers_take_the_prompt_once(builders):
    """The probe accepts the WordPiece and Metaspace tokenizers the models use (else no time is saved)."""
    assert builders["bert-dot"].prompt_splits_exactly
    assert builders["deberta-dot"].prompt_splits_exactly
    assert builders["default model"].prompt_splits_exactly


@SETTINGS
@given(starts=st.lists(st.integers(0, 60), max_size=9), max_distance=st.one_of(st.none(), st.integers(0, 30)))
def test_pairs_follow_glirels_definition(starts, max_distance):
    """Every ordered pair of distinct entities, row-major; with a distance limit, pairs going backwards only when
    their start words are close. The shared all-pairs array cannot be changed by a caller."""
    from glirel_runtime.pairs import build_pairs

    expected = [[h, t] for h in range(len(starts)) for t in range(len(starts))
                if h != t and (max_distance is None or h < t or abs(starts[h] - starts[t]) <= max_distance)]
    pairs = build_pairs(np.array(starts, dtype=np.int64), max_distance)
    assert pairs.dtype == np.int64 and pairs.reshape(-1, 2).tolist() == expected
    if max_distance is None and len(pairs):
        with pytest.raises(ValueError):
            pairs[0, 0] = 5


@pytest.mark.parametrize("bad_position,bad_token,message", [
    (2, "\ud800", "token 2 .* cannot be encoded as UTF-8"),
    (1, 7, "token 1 is 7 \\(int\\), not a string"),
    (0, None, "token 0 is None"),
])
def test_a_bad_token_is_named(bad_position, bad_token, message):
    from glirel_runtime.validation import check_text

    tokens = ["Ada", "met", "Byron", "in", "London"]
    tokens[bad_position] = bad_token
    with pytest.raises((TypeError, ValueError), match=message):
        check_text(tokens)
    assert check_text(["Ada", "Zürich", "東京"])[0] == ["Ada", "Zürich", "東京"]
