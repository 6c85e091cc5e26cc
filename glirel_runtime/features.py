"""Text + labels + entities → the graph's numpy inputs (see `artifact.GRAPH_INPUTS`).

Each text becomes the word sequence ``[REL] label_1 … [REL] label_m [SEP] word_1 … word_n``
(glirel's prompt), tokenized with `tokenizers` as pre-split words; every
element is represented by its first subtoken.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from .artifact import ArtifactConfig, load_tokenizer, prompt_words
from .pairs import build_pairs


@dataclass
class EncodedText:
    """One text's graph inputs, before padding."""

    input_ids: np.ndarray  # [S] int64
    word_index: np.ndarray  # [W] first-subtoken position of each text word, -1 if none
    label_index: np.ndarray  # [L, 2] first-subtoken positions of [REL] and of the label words
    span_index: np.ndarray  # [E, 2] word start, inclusive end (in model words, markers included)
    pair_index: np.ndarray  # [P, 2] (head, tail) indices into span_index
    entity_order: np.ndarray  # [E] position in the caller's `ner` list of each model entity


def first_subtoken_positions(word_ids: Sequence[int | None] | np.ndarray, num_words: int) -> np.ndarray:
    """Position of each word's first subtoken in an encoding, -1 for words with none. `word_ids` holds the
    word of every subtoken: None for special tokens, or -1 when it is an integer array.

    Example:
        >>> first_subtoken_positions([None, 0, 0, 1, 3, None], 4).tolist()
        [1, 3, -1, 4]
        >>> first_subtoken_positions(np.array([0, 0, 1, -1]), 2).tolist()
        [0, 2]
    """
    if isinstance(word_ids, np.ndarray) and word_ids.dtype.kind == "i":
        ids = word_ids
    else:
        ids = np.array(word_ids, dtype=np.float64)  # None → nan (special tokens)
        ids = np.where(np.isnan(ids), -1, ids).astype(np.int64)
    previous = np.concatenate([[-2], ids[:-1]])
    starts = np.flatnonzero((ids >= 0) & (ids != previous))
    positions = np.full(num_words, -1, dtype=np.int64)
    positions[ids[starts]] = starts
    return positions


def insert_entity_markers(
    words: list[str], spans: list[tuple[int, int]], start_token: str, end_token: str
) -> tuple[list[str], list[tuple[int, int]], list[int]]:
    """glirel's `add_entity_markers`: wrap each entity in markers, entities taken by start word.

    Returns the new words, the spans covering their markers, and the caller's index of each span.
    Like glirel, nothing is inserted when the words already hold a marker.

    Example:
        >>> insert_entity_markers(["Ada", "met", "Byron"], [(2, 2), (0, 0)], "[E]", "[/E]")
        (['[E]', 'Ada', '[/E]', 'met', '[E]', 'Byron', '[/E]'], [(0, 2), (4, 6)], [1, 0])
    """
    if start_token in words or end_token in words:
        return list(words), list(spans), list(range(len(spans)))
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    marked, adjusted, offset = list(words), [], 0
    for i in order:
        start, end = spans[i]
        marked.insert(start + offset, start_token)
        offset += 1
        marked.insert(end + offset + 1, end_token)
        offset += 1
        adjusted.append((start + offset - 2, end + offset))
    return marked, adjusted, order


class FeatureBuilder:
    """Builds and pads graph inputs for one artifact's tokenizer and config.

    Example:
        >>> builder = FeatureBuilder("artifact/tokenizer.json", config)  # doctest: +SKIP
        >>> encoded = builder.encode(["spouse", "founded by"], [["Ada", "met", "Byron"]], [[(0, 0), (2, 2)]])  # doctest: +SKIP
        >>> inputs = builder.pad(encoded)  # dict of numpy arrays named as the graph inputs  # doctest: +SKIP
    """

    def __init__(self, tokenizer_file: str | Path, config: ArtifactConfig):
        self.config = config
        self.tokenizer: Tokenizer = load_tokenizer(tokenizer_file)  # a missing/unreadable file is named
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def prompt(self, labels: Sequence[str]) -> list[str]:
        """The label prompt's words (`artifact.prompt_words`)."""
        return prompt_words(labels, self.config)

    def count_subwords(self, word_lists: Sequence[Sequence[str]]) -> list[int]:
        """Subword sequence length (special tokens included) of each pre-split word list."""
        return [len(e.ids) for e in self.tokenizer.encode_batch([list(w) for w in word_lists], is_pretokenized=True)]

    def word_costs(self, words: Sequence[str]) -> np.ndarray:
        """[N] subwords each word takes when it follows the prompt (tokenized in context, in one pass)."""
        encoding = self.tokenizer.encode([self.config.sep_token] + list(words), is_pretokenized=True)
        ids = np.array([-1 if w is None else w for w in encoding.word_ids], dtype=np.int64)
        return np.bincount(ids[ids >= 1] - 1, minlength=len(words)).astype(np.int64)  # word 0 is the [SEP]

    def model_words(self, words: list[str], spans: list[tuple[int, int]]) -> tuple[list[str], list[tuple[int, int]], list[int]]:
        """The words and spans the model sees (entity markers inserted when the checkpoint uses them)."""
        if self.config.add_entity_markers:
            return insert_entity_markers(words, spans, self.config.entity_start_token, self.config.entity_end_token)
        return list(words), list(spans), list(range(len(spans)))

    def encode(
        self, labels: Sequence[str], word_lists: Sequence[list[str]], span_lists: Sequence[list[tuple[int, int]]]
    ) -> list[EncodedText]:
        """Every text's graph inputs for one label prompt; the prompt is tokenized once for all texts.

        Example:
            >>> encoded = builder.encode(["spouse"], [["Ada", "met", "Byron"]], [[(0, 0), (2, 2)]])  # doctest: +SKIP
            >>> encoded[0].pair_index.tolist()  # doctest: +SKIP
            [[0, 1], [1, 0]]
        """
        prompt = self.prompt(labels)
        num_labels = len(labels)
        prepared = [self.model_words(words, spans) for words, spans in zip(word_lists, span_lists)]
        # a tokenizer whose pieces depend on what precedes a word gets each whole sequence tokenized
        encode_texts = self.encode_after_prompt if self.prompt_splits_exactly else self.encode_whole
        pieces = encode_texts(prompt, [words for words, _, _ in prepared])
        encoded = []
        for (words, spans, order), (input_ids, positions) in zip(prepared, pieces):
            span_index = np.array(spans, dtype=np.int64).reshape(-1, 2)
            encoded.append(
                EncodedText(
                    input_ids=input_ids,
                    word_index=positions[len(prompt):],
                    label_index=positions[: 2 * num_labels].reshape(num_labels, 2),
                    span_index=span_index,
                    pair_index=build_pairs(span_index[:, 0], self.config.max_entity_pair_distance),
                    entity_order=np.array(order, dtype=np.int64),
                )
            )
        return encoded

    def encode_whole(self, prompt: list[str], word_lists: Sequence[list[str]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(input_ids [S], first-subtoken position of every prompt and text word [len(prompt) + W]) per text,
        each ``prompt + words`` tokenized as one sequence."""
        encodings = self.tokenizer.encode_batch([prompt + list(words) for words in word_lists], is_pretokenized=True)
        return [(np.array(e.ids, dtype=np.int64), first_subtoken_positions(e.word_ids, len(prompt) + len(words)))
                for e, words in zip(encodings, word_lists)]

    def encode_after_prompt(self, prompt: list[str], word_lists: Sequence[list[str]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`encode_whole`'s result with the prompt tokenized once and each text after the prompt's last word
        (its context); equal to it where `prompt_splits_exactly` (probed once per tokenizer).
        """
        prompt_encoding = self.tokenizer.encode(prompt, is_pretokenized=True, add_special_tokens=False)
        prompt_ids = np.array(prompt_encoding.ids, dtype=np.int64)  # [Sp]
        prompt_word_ids = list(prompt_encoding.word_ids)
        with_specials = self.tokenizer.post_process(prompt_encoding)  # [prefix] prompt [suffix]
        special = np.array(with_specials.special_tokens_mask, dtype=bool)
        lead = int(np.argmin(special)) if not special.all() else len(special)
        prefix = np.array(with_specials.ids[:lead], dtype=np.int64)
        suffix = np.array(with_specials.ids[lead + len(prompt_ids):], dtype=np.int64)
        # each text after the prompt's last word ([SEP]), whose pieces are then dropped
        context = prompt[-1:]
        text_encodings = self.tokenizer.encode_batch([context + list(w) for w in word_lists], is_pretokenized=True,
                                                     add_special_tokens=False)
        text_start = len(prefix) + len(prompt_ids)  # where the text's first piece lands in every sequence
        prompt_positions = first_subtoken_positions([None] * len(prefix) + prompt_word_ids, len(prompt))  # [len(prompt)]
        out = []
        for words, encoding in zip(word_lists, text_encodings):
            word_ids = np.array([-1 if w is None else w for w in encoding.word_ids], dtype=np.int64)
            keep = word_ids >= 1  # pieces of the text's own words
            text_ids = np.array(encoding.ids, dtype=np.int64)[keep]
            ids = np.concatenate([prefix, prompt_ids, text_ids, suffix])  # [S]
            text_positions = first_subtoken_positions(word_ids[keep] - 1, len(words))  # [W], within the text's pieces
            text_positions[text_positions >= 0] += text_start
            out.append((ids, np.concatenate([prompt_positions, text_positions])))
        return out

    @cached_property
    def prompt_splits_exactly(self) -> bool:
        """Whether `encode_after_prompt` reproduces whole-sequence tokenization for this tokenizer (probed once)."""
        probe_prompt = self.prompt(["place of birth", "héadquarters"])
        probes = [["Ada", "Lovelace", "met", "Byron", "in", "1833", "."], ["naïve", "x", "", "Ünïcode", "l'état", "co-founder"]]
        whole = self.encode_whole(probe_prompt, probes)
        split = self.encode_after_prompt(probe_prompt, probes)
        return all(np.array_equal(a_ids, b_ids) and np.array_equal(a_pos, b_pos)
                   for (a_ids, a_pos), (b_ids, b_pos) in zip(whole, split))

    def pad(self, batch: Sequence[EncodedText]) -> dict[str, np.ndarray]:
        """Stack a batch into the graph's inputs, padding every axis to the batch maximum."""

        def stack(arrays: list[np.ndarray], fill: int) -> np.ndarray:
            longest = max((a.shape[0] for a in arrays), default=0)
            out = np.full((len(arrays), longest) + arrays[0].shape[1:], fill, dtype=np.int64)
            for row, a in enumerate(arrays):
                out[row, : a.shape[0]] = a
            return out

        input_ids = stack([e.input_ids for e in batch], self.config.pad_token_id)
        attention_mask = stack([np.ones_like(e.input_ids) for e in batch], 0)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "word_index": stack([e.word_index for e in batch], -1),
            "text_lengths": np.array([e.word_index.shape[0] for e in batch], dtype=np.int64),
            "label_index": stack([e.label_index for e in batch], -1),
            "span_index": stack([e.span_index for e in batch], 0),
            "pair_index": stack([e.pair_index for e in batch], 0),
        }
