"""Tiny encoders and GLiREL checkpoints built offline for tests.

Nothing here downloads: each encoder is a randomly initialised transformers
model saved to a directory together with a tokenizer trained on the spot with
`tokenizers`. `glirel` (the reference implementation) then wraps it and saves
a checkpoint exactly as its users would.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

CORPUS = [
    "Binsey lies along the Upper River Thames near Oxford .",
    "Marie Curie was born in Warsaw and worked in Paris with Pierre Curie .",
    "The Church of the Faroe Islands is one of the smallest state churches .",
    "Apple was founded by Steve Jobs in Cupertino , California , in 1976 .",
    "Ada Lovelace , daughter of Lord Byron , wrote the first program .",
    "located in or next to body of water ; country of origin ; father ; followed by",
    "headquartered in ; founded by ; spouse ; place of birth ; employer ; member of",
    "Zürich , São Paulo , Kraków and Ñuñoa are cities ; café naïve résumé .",
    "Berlin is the capital of Germany . Tokyo is the capital of Japan .",
]


SPECIAL_TOKENS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]


def train_tokenizer(kind: str):
    """A small tokenizer shaped like the encoder family's real one, identical on every run.

    `tokenizers`' trainers break frequency ties in hash-map order, so two trainings on the
    same corpus can assign different ids (Unigram) or even learn different pieces
    (WordPiece). Unigram: trained, then its pieces are re-numbered in a fixed order (the
    learned pieces and scores are the same on every run). WordPiece: the vocabulary is
    built from the corpus directly (every whole word, every character and its ``##``
    continuation): unseen words fall back to characters, as with a real WordPiece vocabulary.
    """
    import json

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    corpus = CORPUS * 20
    if kind == "deberta":  # SentencePiece-style Unigram with Metaspace, like DeBERTa-v3
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC()])
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        tokenizer.train_from_iterator(corpus, trainers.UnigramTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS,
                                                                      unk_token="[UNK]"))
        learned = json.loads(tokenizer.to_str())["model"]["vocab"]  # [[piece, score], ...]
        pieces = sorted((p for p in learned if p[0] not in SPECIAL_TOKENS), key=lambda p: (-round(p[1], 6), p[0]))
        vocab = [(t, 0.0) for t in SPECIAL_TOKENS] + [(p, s) for p, s in pieces]
        tokenizer.model = models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index("[UNK]"), byte_fallback=False)
    else:  # WordPiece with BERT normalisation, like BERT/MiniLM and MPNet
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        seen = {word for line in CORPUS
                for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(line))}
        characters = sorted({c for word in seen for c in word})
        words = sorted(w for w in seen if len(w) > 1)
        tokens = SPECIAL_TOKENS + characters + ["##" + c for c in characters] + words
        tokenizer.model = models.WordPiece({t: i for i, t in enumerate(tokens)}, unk_token="[UNK]")
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return tokenizer


def build_encoder(directory: str | Path, kind: str = "deberta", hidden_size: int = 32, seed: int = 0) -> Path:
    """Save a randomly initialised tiny encoder of `kind` (deberta, bert, mpnet) to `directory`."""
    import torch
    from transformers import BertConfig, BertModel, DebertaV2Config, DebertaV2Model, MPNetConfig, MPNetModel
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(kind)
    vocab_size = tokenizer.get_vocab_size()
    common = dict(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=hidden_size * 2, max_position_embeddings=512,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0,
    )
    torch.manual_seed(seed)
    if kind == "deberta":
        config = DebertaV2Config(
            **common, relative_attention=True, position_buckets=32, max_relative_positions=-1,
            pos_att_type=["p2c", "c2p"], position_biased_input=False, norm_rel_ebd="layer_norm", share_att_key=True,
        )
        model = DebertaV2Model(config)
    elif kind == "bert":
        model = BertModel(BertConfig(**common))
    elif kind == "mpnet":
        model = MPNetModel(MPNetConfig(**{**common, "max_position_embeddings": 514}))
    else:
        raise ValueError(f"unknown encoder kind {kind!r}")
    model.save_pretrained(directory)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=512,
    )
    fast.save_pretrained(directory)
    return directory


DEFAULT_GLIREL_CONFIG = dict(
    fine_tune=True, subtoken_pooling="first", hidden_size=32, span_mode="marker", rel_mode="marker",
    span_marker_mode="markerv1", dropout=0.1, max_width=12, max_len=384, max_types=25, shuffle_types=True,
    random_drop=True, max_neg_type_ratio=1, max_entity_pair_distance=None, num_train_rel_types=25,
    label_embed_strategy="ent_token", scorer="dot", fixed_relation_types=True, refine_prompt=False,
    refine_relation=False, ffn_mul=4, coref_classifier=False, add_entity_markers=False, loss_func="binary_cross_entropy_loss",
)


def build_glirel_checkpoint(directory: str | Path, encoder_dir: str | Path, seed: int = 0, **overrides):
    """Build `glirel.GLiREL` around a local encoder, randomise it, and `save_pretrained` it.

    Returns the glirel model (eval mode) so tests can use it as the oracle.
    """
    import torch
    from glirel import GLiREL as ReferenceGLiREL

    config = dict(DEFAULT_GLIREL_CONFIG, model_name=str(encoder_dir), device="cpu", **overrides)
    torch.manual_seed(seed)
    model = ReferenceGLiREL(argparse.Namespace(**config))
    # Random init leaves LSTM/heads at small scales: spread scores so thresholds bite.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "bert_layer" not in name and parameter.dim() >= 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    model.eval()
    model.save_pretrained(directory)
    saved = json.loads((Path(directory) / "glirel_config.json").read_text())
    assert saved["model_name"] == str(encoder_dir)
    return model
