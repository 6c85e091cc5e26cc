"""Long documents: windowing, merge rule, SELF coreference and entity-level relations.

One tiny BERT checkpoint with ``max_len=40`` makes every text over 40 words a
multi-window document; a copy of its artifact with entity markers and a pair
window (runtime-side settings) covers those code paths without a second export.
"""
from __future__ import annotations

import json
import shutil
from typing import Optional

import numpy as np
import pytest

from glirel_runtime import GLiREL, PairScores
from glirel_runtime.coref import aggregate_relations, check_clusters, cluster_index, connected_components
from glirel_runtime.decoding import select
from glirel_runtime.documents import (
    Window, WindowLimits, plan_windows, subword_costs, unscored_pair_count, window_inputs, window_limits,
)
from glirel_runtime.validation import TextItem, check_item, check_labels

LABELS = ["founded by", "spouse", "place of birth", "employer"]
VOCAB = "Marie Curie was born in Warsaw and worked in Paris with Pierre Curie . Apple was founded by Steve Jobs".split()


@pytest.fixture(scope="session")
def artifact(tmp_path_factory, encoders):
    from glirel_export import export_checkpoint
    from tiny_models import build_glirel_checkpoint

    root = tmp_path_factory.mktemp("documents")
    build_glirel_checkpoint(root / "checkpoint", encoders["bert"], seed=5, max_len=40)
    export_checkpoint(root / "checkpoint", root / "artifact")
    return root / "artifact"


@pytest.fixture(scope="session")
def marker_artifact(tmp_path_factory, artifact):
    """The same graph with entity markers and glirel's pair window switched on (both are runtime-side)."""
    path = tmp_path_factory.mktemp("documents-markers") / "artifact"
    shutil.copytree(artifact, path)
    config = json.loads((path / "glirel_artifact.json").read_text())
    config.update(add_entity_markers=True, max_entity_pair_distance=6)
    (path / "glirel_artifact.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def model(artifact):
    return GLiREL.from_pretrained(artifact, providers="cpu", threads=1)


@pytest.fixture(scope="session")
def marker_model(marker_artifact):
    return GLiREL.from_pretrained(marker_artifact, providers="cpu", threads=1)


def make_document(num_words: int, every: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    words = [VOCAB[i] for i in rng.integers(0, len(VOCAB), num_words)]
    ner = [[i, i + int(rng.integers(0, 3)), ["PER", "ORG", "LOC"][i % 3], ""] for i in range(0, num_words - 3, every)]
    return words, ner


def by_hand(model, item: TextItem, windows, labels):
    """Each window through `predict_relations` at threshold 0, positions mapped back, max-merged."""
    merged: dict[tuple, float] = {}
    for window in windows:
        words, ner = window_inputs(item, window)
        if len(ner) < 2:
            continue
        for r in model.predict_relations(words, labels, ner=ner, threshold=0.0):
            key = (r["head_pos"][0] + window.start, r["head_pos"][1] + window.start,
                   r["tail_pos"][0] + window.start, r["tail_pos"][1] + window.start, r["label"])
            merged[key] = max(merged.get(key, 0.0), r["score"])
    return merged


def as_cells(relations):
    return {(*r["head_pos"], *r["tail_pos"], r["label"]): r["score"] for r in relations}


# ----------------------------------------------------------------- end to end


def test_long_document_end_to_end(model):
    words, ner = make_document(600, 7)
    result = model.predict_document(words, LABELS, ner, threshold=0.3, batch_size=4)
    assert len(result["windows"]) > 15  # 600 words, 40 per window
    features = model.features
    for start, end in result["windows"]:
        assert end - start <= model.config.max_words
        assert features.count_subwords([features.prompt(LABELS) + words[start:end]])[0] <= model.config.max_subwords
    assert result["relations"], "a random model at threshold 0.3 predicts something"
    for relation in result["relations"]:
        assert relation["head_text"] == words[relation["head_pos"][0]:relation["head_pos"][1]]
        assert relation["score"] > 0.3 and relation["label"] in LABELS
    assert result["unscored_pairs"] > 0  # entities 500 words apart never share a 40-word window
    assert "clusters" not in result and "entity_relations" not in result


@pytest.mark.parametrize("which", ["model", "marker_model"])
def test_identical_to_windows_run_by_hand(which, request):
    model = request.getfixturevalue(which)
    words, ner = make_document(150, 5, seed=1)
    threshold = 0.45
    result = model.predict_document(words, LABELS, ner, threshold=threshold, window_overlap=15, batch_size=3)
    item = check_item(words, ner)
    spans = np.array(item.spans)
    windows = plan_windows(spans, subword_costs(model, words), window_limits(model, [LABELS]), overlap=15)
    assert result["windows"] == [[w.start, w.end] for w in windows]
    expected = {k: v for k, v in by_hand(model, item, windows, LABELS).items() if v > threshold}
    got = as_cells(result["relations"])
    assert got, "nothing to compare"
    near = {k for k, v in expected.items() if abs(v - threshold) < 1e-4}  # batching may move a score by ~1e-7
    assert set(got) - near == set(expected) - near
    for key, score in got.items():
        assert score == pytest.approx(expected[key], abs=1e-5)


def test_top_k_applies_after_merging(model):
    """Against score_pairs by hand: dense max-merge of every window, then top_k per pair."""
    words, ner = make_document(120, 4, seed=2)
    item = check_item(words, ner)
    result = model.predict_document(words, LABELS, ner, threshold=0.2, top_k=1, window_overlap=20)
    windows = [Window(s, e, np.array([i for i, (a, b) in enumerate(item.spans) if a >= s and b < e]))
               for s, e in result["windows"]]
    runnable = [w for w in windows if w.entities.size >= 2]
    inputs = [window_inputs(item, w) for w in runnable]
    scores = model.score_pairs([w for w, _ in inputs], LABELS, [n for _, n in inputs], batch_size=8)
    dense: dict[tuple[int, int], np.ndarray] = {}
    for window, score in zip(runnable, scores):
        for h, t, p in zip(window.entities[score.heads], window.entities[score.tails], score.probabilities):
            dense[(h, t)] = np.maximum(dense.get((h, t), np.zeros(len(LABELS), np.float32)), p)
    pairs = sorted(dense)
    rows, labels = select(np.stack([dense[p] for p in pairs]), 0.2, 1, None)
    expected = {(item.spans[pairs[r][0]][0], item.spans[pairs[r][0]][1] + 1, item.spans[pairs[r][1]][0],
                 item.spans[pairs[r][1]][1] + 1, LABELS[l]) for r, l in zip(rows, labels)}
    got = as_cells(result["relations"])
    assert set(got) == expected
    heads_tails = [k[:4] for k in got]
    assert len(heads_tails) == len(set(heads_tails))  # one label per pair


def test_windows_are_batched(model, monkeypatch):
    words, ner = make_document(400, 6, seed=3)
    calls = []
    original = model.score_rows

    def spy(rows, spec, batch_size=32, **options):
        calls.append(len(rows))
        return original(rows, spec, batch_size, **options)

    monkeypatch.setattr(model, "score_rows", spy)
    result = model.predict_document(words, LABELS, ner, batch_size=2, show_progress=False)
    assert max(calls) <= 2 and sum(calls) == sum(
        1 for s, e in result["windows"] if sum(1 for a, b, *_ in ner if a >= s and b < e) >= 2)


def test_single_window_matches_predict_relations(model):
    words, ner = make_document(35, 4, seed=4)
    result = model.predict_document(words, LABELS, ner, threshold=0.4)
    assert result["windows"] == [[0, 35]] and result["unscored_pairs"] == 0
    plain = model.predict_relations(words, LABELS, ner=ner, threshold=0.4)
    assert [(r["head_pos"], r["tail_pos"], r["label"]) for r in result["relations"]] == \
           [(r["head_pos"], r["tail_pos"], r["label"]) for r in plain]


def test_raw_string_gets_character_offsets(model):
    text = " ".join(["Marie Curie met Pierre Curie in Paris ."] * 12)
    ner = [[i * 8, i * 8 + 1, "PER", "Marie Curie"] for i in range(12)] + [[i * 8 + 6, i * 8 + 6, "LOC", "Paris"] for i in range(12)]
    result = model.predict_document(text, LABELS, ner, threshold=0.0)
    relation = result["relations"][0]
    start, end = relation["head_char_pos"]
    assert text[start:end] == " ".join(relation["head_text"])


# ----------------------------------------------------------------- the window planner


def brute_force_unscored(spans, windows):
    held = [set(w.entities.tolist()) for w in windows]
    return sum(1 for i in range(len(spans)) for j in range(i + 1, len(spans)) if not any(i in h and j in h for h in held))


@pytest.mark.parametrize("seed", range(25))
def test_no_entity_dropped(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    costs = rng.integers(1, 5, n)  # subwords per word
    starts = np.sort(rng.integers(0, n, int(rng.integers(0, 60))))
    spans = np.stack([starts, np.minimum(starts + rng.integers(0, 8, starts.size), n - 1)], 1) if starts.size else np.zeros((0, 2), np.int64)
    limits = WindowLimits(max_words=int(rng.integers(12, 50)), max_subwords=int(rng.integers(60, 120)), prompt_subwords=20,
                          marker_words=2 * int(rng.integers(0, 2)), marker_subwords=2, max_pairs=int(rng.integers(12, 400)))
    overlap = None if seed % 3 == 0 else int(rng.integers(0, 10))
    windows = plan_windows(spans, costs, limits, overlap)
    assert windows[0].start == 0 and windows[-1].end == n
    for before, after in zip(windows, windows[1:]):
        assert before.start < after.start <= before.end and before.end <= after.end
    held = set()
    for w in windows:
        k = w.entities.size
        assert w.end - w.start + k * limits.marker_words <= limits.max_words
        assert limits.prompt_subwords + costs[w.start:w.end].sum() + k * limits.marker_subwords <= limits.max_subwords
        assert k <= limits.max_entities
        for e in w.entities:
            assert w.start <= spans[e, 0] and spans[e, 1] < w.end
        expected = [i for i, (a, b) in enumerate(spans) if a >= w.start and b < w.end]
        assert w.entities.tolist() == expected
        held.update(w.entities.tolist())
    assert held == set(range(len(spans)))
    assert unscored_pair_count(spans, windows) == brute_force_unscored(spans, windows)


def test_subword_limit_shapes_windows(model):
    """Long rare words take many subwords: windows get shorter than max_words, and still run."""
    words = ["curiewarsawcupertino" if i % 2 else "Paris" for i in range(120)]
    ner = [[i, i, "LOC", "Paris"] for i in range(0, 120, 4)]
    labels = [f"relation {i}" for i in range(40)]  # a prompt of 365 subwords: run as two label groups
    groups = model.label_groups(check_labels(labels))
    prompts = [[labels[c] for c in columns] for columns in groups]
    assert len(prompts) == 2
    limits = window_limits(model, prompts)  # the longer group's prompt counts
    costs = subword_costs(model, words)
    assert costs[1] > 3
    result = model.predict_document(words, labels, ner, threshold=0.5)
    features = model.features
    lengths = [e - s for s, e in result["windows"]]
    assert max(lengths) < model.config.max_words
    for start, end in result["windows"]:
        sizes = features.count_subwords([features.prompt(prompt) + words[start:end] for prompt in prompts])
        assert max(sizes) == limits.prompt_subwords + costs[start:end].sum() <= model.config.max_subwords


def test_marker_windows_count_markers(marker_model):
    words, ner = make_document(200, 3, seed=6)
    result = marker_model.predict_document(words, LABELS, ner, threshold=0.5)
    for start, end in result["windows"]:
        inside = sum(1 for a, b, *_ in ner if a >= start and b < end)
        assert end - start + 2 * inside <= marker_model.config.max_words


# ----------------------------------------------------------------- coreference


def test_connected_components_chains_and_separate_components():
    assert connected_components(7, [(0, 1), (1, 2), (2, 0), (4, 6), (6, 4)]) == [[0, 1, 2], [3], [4, 6], [5]]
    assert connected_components(5, [(4, 3), (3, 2), (2, 1), (1, 0)]) == [[0, 1, 2, 3, 4]]  # a chain
    assert connected_components(3, []) == [[0], [1], [2]]
    assert connected_components(0, []) == []


def test_check_clusters():
    assert check_clusters([[3, 1], [0]], 5) == [[3, 1], [0], [2], [4]]
    assert cluster_index([[3, 1], [0], [2], [4]], 5).tolist() == [1, 0, 2, 0, 3]
    with pytest.raises(ValueError, match="mention 1 is in cluster 0 and in cluster 1"):
        check_clusters([[1], [1, 2]], 3)
    with pytest.raises(ValueError, match="mention 7, outside ner's 3"):
        check_clusters([[7]], 3)
    with pytest.raises(ValueError, match="cluster 0 is empty"):
        check_clusters([[]], 3)
    with pytest.raises(TypeError, match="'a'"):
        check_clusters([["a"]], 3)
    with pytest.raises(TypeError, match="list of lists"):
        check_clusters("0 1", 3)


def test_aggregation_modes():
    # mentions 0,1 → cluster 0; 2,3 → cluster 1; 4 → cluster 2. Label 1 is SELF.
    clusters = np.array([0, 0, 1, 1, 2])
    heads = np.array([0, 1, 0, 2, 0, 0])
    tails = np.array([2, 3, 4, 4, 1, 1])
    labels = np.array([0, 0, 0, 0, 0, 1])  # (0,1,label 0) is inside cluster 0; (0,1,SELF) is coreference
    scores = np.array([0.9, 0.6, 0.7, 0.55, 0.99, 0.95])
    scored = np.array([(h, t) for h in range(5) for t in range(5) if h != t]).T  # every pair scored

    def run(mode):
        rows = aggregate_relations(heads, tails, labels, scores, clusters, scored[0], scored[1], mode, 0.5, skip_label=1)
        return {(r["head"], r["tail"], r["label"]): (round(r["score"], 4), r["support"], r["scored_pairs"]) for r in rows}

    assert run("max") == {(0, 1, 0): (0.9, 2, 4), (0, 2, 0): (0.7, 1, 2), (1, 2, 0): (0.55, 1, 2)}
    # mean over scored mention pairs: (0.9 + 0.6) / 4 = 0.375 and 0.55 / 2 fall below 0.5; 0.7 / 2 too
    assert run("mean") == {}
    assert run("count") == {(0, 1, 0): (2.0, 2, 4), (0, 2, 0): (1.0, 1, 2), (1, 2, 0): (1.0, 1, 2)}
    rows = aggregate_relations(heads[:2], tails[:2], labels[:2], scores[:2], clusters, heads[:2], tails[:2], "mean", 0.5)
    assert [(r["score"], r["scored_pairs"]) for r in rows] == [(pytest.approx(0.75), 2)]
    with pytest.raises(ValueError, match="'median'"):
        aggregate_relations(heads, tails, labels, scores, clusters, scored[0], scored[1], "median")


class ScriptedScores:
    """Stands in for `GLiREL.score_rows`: SELF 0.9 between mentions of the same name, `rules` for the rest.

    `rename` maps the caller's label names to the scripted ones (e.g. a coreference label named otherwise).
    """

    def __init__(self, rules: dict[tuple[str, str, str], float], rename: Optional[dict[str, str]] = None):
        self.rules = rules
        self.rename = rename or {}

    def __call__(self, rows, spec, batch_size=32, **_):
        labels = [self.rename.get(label, label) for label in spec.labels]
        for row, scores in zip(rows, self.scores([r.item.words for r in rows], labels, [r.item.spans for r in rows])):
            row.scores = scores

    def scores(self, texts, labels, ner):
        out = []
        for words, spans in zip(texts, ner):
            names = [" ".join(words[s:e + 1]) for s, e, *_ in spans]
            pairs = [(h, t) for h in range(len(spans)) for t in range(len(spans)) if h != t]
            probabilities = np.full((len(pairs), len(labels)), 0.1, np.float32)
            for row, (h, t) in enumerate(pairs):
                for column, label in enumerate(labels):
                    if label == "SELF" and names[h] == names[t]:
                        probabilities[row, column] = 0.9
                    probabilities[row, column] = max(probabilities[row, column], self.rules.get((names[h], label, names[t]), 0.0))
            out.append(PairScores(np.array([h for h, _ in pairs], np.int64).reshape(-1),
                                  np.array([t for _, t in pairs], np.int64).reshape(-1), probabilities))
        return out


def coref_document():
    """'Ada' five times (a chain: neighbours share a 40-word window, the ends never do), 'Bob' twice, 'Kew' once."""
    words = ["w"] * 130
    ner = []
    for position in (2, 22, 42, 62, 82):  # windows [0, 40), [20, 60), [40, 80), …
        words[position] = "Ada"
        ner.append([position, position, "PER", "Ada"])
    for position in (10, 30):
        words[position] = "Bob"
        ner.append([position, position, "PER", "Bob"])
    words[70] = "Kew"
    ner.append([70, 70, "LOC", "Kew"])
    return words, ner


def test_self_clusters_chain_across_windows(model, monkeypatch):
    words, ner = coref_document()
    monkeypatch.setattr(model, "score_rows", ScriptedScores({("Ada", "spouse", "Bob"): 0.8, ("Ada", "place of birth", "Kew"): 0.7}))
    result = model.predict_document(words, ["spouse", "place of birth", "SELF"], ner, threshold=0.5)
    assert result["clusters"] == [[0, 1, 2, 3, 4], [5, 6], [7]]  # Ada, Bob, Kew by first mention
    assert result["unscored_pairs"] > 0  # Ada@2 and Ada@82 never share a window, the chain joins them
    entity = {(r["head"], r["tail"], r["label"]): r for r in result["entity_relations"]}
    assert set(entity) == {(0, 1, "spouse"), (0, 2, "place of birth")}  # SELF is not an entity relation
    assert entity[(0, 1, "spouse")]["score"] == pytest.approx(0.8)
    assert entity[(0, 1, "spouse")]["head_text"] == ["Ada"] and entity[(0, 1, "spouse")]["tail_text"] == ["Bob"]
    assert entity[(0, 1, "spouse")]["support"] == 5  # Ada@2, Ada@22 with Bob@10, Bob@30; Ada@42 with Bob@30
    assert any(r["label"] == "SELF" for r in result["relations"])  # mention level keeps SELF edges


def test_self_label_name_and_coreference_switch(model, monkeypatch):
    words, ner = coref_document()
    monkeypatch.setattr(model, "score_rows", ScriptedScores({}, rename={"same as": "SELF"}))
    named = model.predict_document(words, ["spouse", "same as"], ner, coreference_label="same as")
    assert named["clusters"][0] == [0, 1, 2, 3, 4]
    off = model.predict_document(words, ["spouse", "same as"], ner, coreference=False, coreference_label="same as")
    assert "clusters" not in off and any(r["label"] == "same as" for r in off["relations"])
    added = model.predict_document(words, ["spouse"], ner, coreference=True)  # appends SELF
    assert added["clusters"][1] == [5, 6]


def test_gold_clusters(model, monkeypatch):
    words = ["w"] * 80  # windows [0, 40), [20, 60), [40, 80)
    ner = []
    for position, name, kind in ((2, "Ada", "PER"), (32, "Lovelace", "PER"), (62, "Ada", "PER"),
                                 (10, "Bob", "PER"), (40, "Bob", "PER"), (70, "Kew", "LOC")):
        words[position] = name
        ner.append([position, position, kind, name])
    monkeypatch.setattr(model, "score_rows", ScriptedScores({("Bob", "spouse", "Ada"): 0.8, ("Ada", "place of birth", "Kew"): 0.7}))
    labels, gold = ["spouse", "place of birth"], [[3, 4], [0, 1, 2]]  # Kew is left out: it becomes a singleton

    def entity(aggregation):
        result = model.predict_document(words, labels, ner, clusters=gold, aggregation=aggregation, threshold=0.5)
        assert result["clusters"] == [[3, 4], [0, 1, 2], [5]]
        return {(r["head"], r["tail"], r["label"]): (round(r["score"], 4), r["support"], r["scored_pairs"])
                for r in result["entity_relations"]}

    # Bob→Ada cluster: 4 mention pairs share a window, 2 of them (Bob-Ada, not Bob-Lovelace) predict spouse
    assert entity("max") == {(0, 1, "spouse"): (0.8, 2, 4), (1, 2, "place of birth"): (0.7, 1, 1)}
    assert entity("mean") == {(1, 2, "place of birth"): (0.7, 1, 1)}  # spouse: (0.8 + 0.8) / 4 = 0.4
    assert entity("count") == {(0, 1, "spouse"): (2.0, 2, 4), (1, 2, "place of birth"): (1.0, 1, 1)}


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, error, message", [
    ({"aggregation": "median"}, ValueError, "'median'"),
    ({"window_overlap": -1}, ValueError, "window_overlap must be a non-negative integer, got -1"),
    ({"window_overlap": 40}, ValueError, "window_overlap=40 must be below the model's max_words=40"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
    ({"coreference": "yes"}, TypeError, "'yes'"),
    ({"clusters": [[0], [0]]}, ValueError, "mention 0 is in cluster 0 and in cluster 1"),
    ({"clusters": [[0]], "coreference": False}, ValueError, "coreference=False"),
    ({"threshold": 2}, ValueError, "threshold"),
    ({"ner": [[0, 1, "X"], [0, 1, "Y"]]}, ValueError, "repeats the span of entity 0"),
    ({"ner": [[0, 500, "X"]]}, ValueError, "outside the text's 100 words"),
    ({"labels": ["founded by", "relation " * 300]}, ValueError, "alone takes .* prompt subwords"),
])
def test_bad_input(model, kwargs, error, message):
    words, ner = make_document(100, 9)
    arguments = {"labels": LABELS, "ner": ner, **kwargs}
    with pytest.raises(error, match=message):
        model.predict_document(words, **arguments)


def test_entity_too_long_for_any_window(model):
    words = ["w"] * 100
    ner = [[0, 1, "X", ""], [10, 60, "X", ""], [70, 70, "X", ""]]
    with pytest.raises(ValueError, match=r"entity 1 \(words 10..60\) does not fit in any window"):
        model.predict_document(words, LABELS, ner)


def test_progress_bar(model, capsys):
    words, ner = make_document(200, 8)
    model.predict_document(words, LABELS, ner, show_progress=True)
    assert "window" in capsys.readouterr().err
