"""glirel-train on a tiny offline encoder: the loss falls, checkpoints load in glirel and in our loader, the trained
model ranks the gold label first on its training pairs, resume is exact."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glirel_export.checkpoint import load_checkpoint
from glirel_export.train import STATE_NAME, WEIGHTS_NAME, TrainConfig, lr_lambda, sample_labels, train

WORDS = [
    ("Marie Curie was born in Warsaw and worked in Paris .", [(0, 1), (5, 5), (9, 9)],
     [((0, 1), (5, 5), "place of birth"), ((0, 1), (9, 9), "work location")]),
    ("Apple was founded by Steve Jobs in Cupertino .", [(0, 0), (4, 5), (7, 7)],
     [((0, 0), (4, 5), "founded by"), ((0, 0), (7, 7), "headquarters location")]),
    ("Ada Lovelace , daughter of Lord Byron , wrote the first program .", [(0, 1), (5, 6)],
     [((0, 1), (5, 6), "father")]),
    ("Berlin is the capital of Germany .", [(0, 0), (5, 5)], [((5, 5), (0, 0), "capital")]),
]


def _instances():
    instances = []
    for text, spans, relations in WORDS:
        words = text.split()
        ner = [[s, e, "entity", " ".join(words[s:e + 1])] for s, e in spans]
        rels = [{"head": {"position": list(h), "mention": " ".join(words[h[0]:h[1] + 1]), "type": "entity"},
                 "tail": {"position": list(t), "mention": " ".join(words[t[0]:t[1] + 1]), "type": "entity"},
                 "relation_text": label} for h, t, label in relations]
        instances.append({"tokenized_text": words, "ner": ner, "relations": rels})
    return instances


def _config(encoder, output, steps, **overrides):
    values = dict(output=str(output), encoder=str(encoder), steps=steps, batch_size=2, lr_encoder=1e-3,
                  lr_other=3e-3, warmup=0.1, max_labels=6, random_drop=False, dropout=0.0, hidden_size=32,
                  eval_every=0, save_every=5, seed=3, threads=1)
    values.update(overrides)
    return TrainConfig(**values)


def _load_in_glirel(directory):
    """The checkpoint in `directory` loaded by glirel, as its users load a local checkpoint."""
    from glirel import GLiREL as ReferenceGLiREL

    reference = ReferenceGLiREL._from_pretrained(
        model_id=str(directory), revision=None, cache_dir=None, force_download=False, proxies=None,
        resume_download=False, local_files_only=True, token=None,
    )
    reference.eval()
    return reference


@pytest.fixture(scope="module")
def trained(encoders, tmp_path_factory):
    output = tmp_path_factory.mktemp("trained")
    summary = train(_config(encoders["bert"], output, steps=40), resume=False, instances=_instances(), log=lambda _: None)
    return output, summary


def test_loss_decreases(trained):
    _, summary = trained
    history = summary["history"]
    assert len(history) == 40
    assert np.mean(history[-8:]) < 0.5 * np.mean(history[:8]), history


def test_checkpoint_loads_in_glirel_and_ours(trained):
    output, _ = trained
    config = json.loads((output / "glirel_config.json").read_text())
    assert config["hidden_size"] == 32 and config["trained_steps"] == 40
    ours = load_checkpoint(output)
    reference = _load_in_glirel(output)
    saved = torch.load(output / WEIGHTS_NAME, map_location="cpu", weights_only=True)
    reference_state = reference.state_dict()
    for key, value in saved.items():
        assert torch.equal(reference_state[key], value), key
    for key, value in ours.model.state_dict().items():
        assert torch.equal(saved[key], value), key


def test_gold_label_ranks_first_after_training(encoders, tmp_path):
    """What training is for: on its (tiny) training set, glirel running the checkpoint ranks the gold label first.

    Label-word embeddings (``label_embed_strategy="label"``): a tiny random encoder's ``[REL]``
    markers differ mostly by position, so with shuffled label sets they take far longer to tell
    labels apart. 400 steps on four sentences take seconds.
    """
    output = tmp_path / "ranked"
    train(_config(encoders["bert"], output, steps=400, label_embed_strategy="label", save_every=400),
          resume=False, instances=_instances(), log=lambda _: None)
    reference = _load_in_glirel(output)
    labels = sorted({label for _, _, relations in WORDS for _, _, label in relations})
    ranked_first, gold_pairs = 0, 0
    for instance in _instances():
        words = instance["tokenized_text"]
        # threshold -1: every cell, including those whose probability rounds to 0.0 after training
        predicted = reference.predict_relations(list(words), labels, threshold=-1.0, ner=[list(n) for n in instance["ner"]])
        assert len(predicted) == len(instance["ner"]) * (len(instance["ner"]) - 1) * len(labels)
        for relation in instance["relations"]:
            head, tail = relation["head"]["position"], relation["tail"]["position"]
            scores = {r["label"]: r["score"] for r in predicted
                      if r["head_pos"] == [head[0], head[1] + 1] and r["tail_pos"] == [tail[0], tail[1] + 1]}
            assert set(scores) == set(labels)
            gold_pairs += 1
            ranked_first += max(scores, key=scores.get) == relation["relation_text"]
    assert gold_pairs == 6
    assert ranked_first >= 5, f"gold label first for {ranked_first} of {gold_pairs} training pairs"


def test_resume_is_exact(encoders, tmp_path):
    full = train(_config(encoders["bert"], tmp_path / "full", steps=8), resume=False, instances=_instances(), log=lambda _: None)
    first = train(_config(encoders["bert"], tmp_path / "resumed", steps=8), resume=False, instances=_instances(),
                  log=lambda _: None, stop_after=3)
    assert first["steps"] == 3 and (tmp_path / "resumed" / STATE_NAME).is_file()
    second = train(_config(encoders["bert"], tmp_path / "resumed", steps=8), resume=True, instances=_instances(),
                   log=lambda _: None)
    assert second["steps"] == 8
    np.testing.assert_allclose(second["history"], full["history"], rtol=1e-4, atol=1e-5)
    a = torch.load(tmp_path / "full" / WEIGHTS_NAME, weights_only=True)
    b = torch.load(tmp_path / "resumed" / WEIGHTS_NAME, weights_only=True)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_init_from_and_kept_snapshots(trained, encoders, tmp_path):
    """--init-from starts from a checkpoint's weights (its first loss is the trained model's, not a fresh
    one's); --keep-every leaves loadable weights at those steps."""
    source, summary = trained
    fresh = train(_config(encoders["bert"], tmp_path / "fresh", steps=2), resume=False, instances=_instances(),
                  log=lambda _: None)
    continued = train(_config(encoders["bert"], tmp_path / "continued", steps=4, init_from=str(source), keep_every=2),
                      resume=False, instances=_instances(), log=lambda _: None)
    assert continued["history"][0] < 0.5 * fresh["history"][0]
    assert continued["history"][0] < 2 * np.mean(summary["history"][-5:])
    for step in (2, 4):
        kept = tmp_path / "continued" / f"step_{step}"
        assert json.loads((kept / "glirel_config.json").read_text())["trained_steps"] == step
        assert (kept / "tokenizer.json").is_file() and not (kept / STATE_NAME).exists()
        load_checkpoint(kept, encoder=encoders["bert"])
    with pytest.raises(ValueError, match="init-from"):
        train(_config(encoders["bert"], tmp_path / "wide", steps=1, hidden_size=48, init_from=str(source)),
              resume=False, instances=_instances(), log=lambda _: None)


def test_label_sampling_and_schedule():
    import random

    instance = _instances()[0]
    pool = ["place of birth", "work location", "founded by", "capital", "father", "spouse", "employer"]
    rng = random.Random(0)
    for _ in range(20):
        labels = sample_labels(instance, pool, 4, rng, random_drop=True)
        assert 1 <= len(labels) <= 4 and len(set(labels)) == len(labels) and set(labels) <= set(pool)
    full = sample_labels(instance, pool, 4, random.Random(1), random_drop=False)
    assert {"place of birth", "work location"} <= set(full) and len(full) == 4
    schedule = lr_lambda(100, 0.1)
    assert schedule(0) == 0.0 and schedule(10) == 1.0 and schedule(100) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="max_labels"):
        sample_labels(instance, pool, 0, rng)


def test_cli_rejects_missing_encoder(tmp_path, capsys):
    from glirel_export.train import main

    assert main(["--output", str(tmp_path / "out"), "--encoder", str(tmp_path / "nope"), "--steps", "1"]) == 2
    assert "never downloads" in capsys.readouterr().err
