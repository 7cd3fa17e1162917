"""Pretraining throughput: stock HF ``BertForPreTraining`` against ``LinkPretrainingModel``.

    nice -n 5 python benchmarks/pretrain_throughput.py                 # tiny and mini, fp32 and bf16, CPU
    nice -n 5 python benchmarks/pretrain_throughput.py --configs mini --precisions bf16 --steps 5
    python benchmarks/pretrain_throughput.py --data prepared/wikispeedia   # batches from a prepared corpus
    python benchmarks/pretrain_throughput.py --gpu --max-predictions 100  # base, seq 512, bf16, CUDA, transformers backend
    python benchmarks/pretrain_throughput.py --configs tiny --own-backend transformers   # the GPU's backend on the CPU
    python benchmarks/pretrain_throughput.py --gpu --configs base,modernbert-base --max-predictions 100

Both models train on the same batches in one process: forward, backward and an AdamW step.
The stock model is ``BertForPreTraining`` with its relation head resized to 3 classes
(``cls.seq_relationship = Linear(hidden, 3)``) and its usual loss: vocabulary logits at every
position, cross-entropy with -100 labels. Ours decodes only the masked positions. Batches are
synthetic (random tokens, ``[CLS] A [SEP] B [SEP]``, lengths 90-100% of ``seq``, 15% of the
non-special tokens selected and masked 80/10/10 as ``DataCollatorForLanguageModeling`` does)
unless ``--data`` names a prepared corpus.

Reported per configuration and precision: tokens/s (non-pad tokens) of each model, their
ratio, and achieved FLOP/s as a fraction of a matmul peak measured in the same run (a large
square ``torch.matmul`` in fp32 and in bf16). FLOPs are counted analytically: 6 x (matmul
parameters touched per token) per token plus the attention score and value products
(6 x 2 x length x hidden per token per layer), over each sequence's real length. Ours does
less work for the same losses and gradients (its MLM head, and its last layer's queries,
attention and feed-forward block, run only at the masked positions and [CLS]), so its
headline figure is *useful-work* FLOP/s: the stock model's FLOP count for the batch divided
by our time; ``own_actual_peak_fraction`` counts the work ours really does. Timing alternates the two models in
rounds (the machine is shared) and reports each one's median round.

The allocator matters on CPU: ``linkbert pretrain`` makes glibc keep freed memory
(``runtime.retain_freed_memory``: no zero-filling and page faults of large buffers every step).
The stock model is timed both ways, out of the box (``stock``) and with that setting
(``stock_retained``), switched before each model's round (glibc's initial 128 KB threshold
when off); ours runs as ``linkbert pretrain`` runs it.

The last line printed is one JSON object: per ``config/precision``, ``stock_tokens_per_s``,
``stock_retained_tokens_per_s``, ``own_tokens_per_s``, ``speedup`` (against ``stock``),
``speedup_allocator_matched`` (against ``stock_retained``), ``peak_fraction`` (useful work, as
above), ``own_actual_peak_fraction`` (our own FLOP count), the stock runs' peak fractions, the
round times; and ``_meta``.

``modernbert-base`` is ModernBERT-base's geometry (22 layers, hidden 768, GLU feed-forward 1152,
alternating 128-token local and global attention, vocabulary 50,368), randomly initialised: the
stock model is ``ModernBertForMaskedLM``'s encoder, its head and decoder at every position, and a
3-way relation head on the first token; ours is ``LinkPretrainingModel`` around the same
``ModernBertForMaskedLM`` (the masked positions only), so ``--own-backend`` does not apply.
Local layers are counted as the work of their window (``L x min(L, 129)`` scores), not the
full ``L x L`` that SDPA's masked kernel computes.

``--compile`` wraps our model in ``torch.compile`` (slower than eager on the 2-core CPU:
``docs/performance.md``). Ours only (the stock model keeps SDPA on padded batches):
``--attention varlen`` (or ``flash_attention_2``/``_4``: the same batches flattened without
padding, as ``linkbert pretrain`` feeds them), ``--mlm-loss chunked``, ``--norm-precision autocast``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from linkbert.runtime import configure_waiting  # imports no torch

# how OpenMP threads wait between operations, chosen as `linkbert pretrain` chooses it (spin
# briefly on an idle machine, passive on a busy one); set before torch loads libgomp, and the
# same for both models, which run in this one process
OPENMP_WAITING = configure_waiting()

import torch
from torch import nn

from linkbert.collator import flatten_pairs, max_predictions_for
from linkbert.model.attention import FLATTENED
from linkbert.model.loading import NO_DROPOUT
from linkbert.model.presets import preset_config
from linkbert.model.pretraining import LinkPretrainingModel
from linkbert.objectives import IGNORE_INDEX
from linkbert.runtime import retain_freed_memory

# name -> (preset, sequence length, batch size); CPU sizes keep a step around a second on 2 cores
CONFIGS = {
    "tiny": ("tiny", 128, 32),
    "mini": ("mini", 128, 32),
    "base": ("base", 512, 32),
    "modernbert-base": ("modernbert-base", 512, 32),
}
# ModernBERT-base (answerdotai/ModernBERT-base's config.json), the fields that shape the work
MODERNBERT_BASE = dict(hidden_size=768, num_hidden_layers=22, num_attention_heads=12, intermediate_size=1152,
                       vocab_size=50368, max_position_embeddings=8192, global_attn_every_n_layers=3,
                       local_attention=128)
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103  # BERT uncased ids
SPECIAL = (PAD, UNK, CLS, SEP, MASK)


# -- batches --------------------------------------------------------------------------------------

def synthetic_batches(n: int, batch: int, seq: int, vocab: int, seed: int = 0) -> list[dict]:
    """``n`` batches of ``[CLS] A [SEP] B [SEP]`` with random tokens, padded to ``seq``."""
    gen = torch.Generator().manual_seed(seed)
    return [_synthetic_batch(batch, seq, vocab, gen) for _ in range(n)]


def _synthetic_batch(batch: int, seq: int, vocab: int, gen: torch.Generator) -> dict:
    lengths = torch.randint(int(0.9 * seq), seq + 1, (batch,), generator=gen)
    positions = torch.arange(seq)
    attention_mask = (positions < lengths[:, None]).long()
    ids = torch.randint(MASK + 1, vocab, (batch, seq), generator=gen)
    sep_a = lengths // 2
    ids[:, 0] = CLS
    ids[torch.arange(batch), sep_a] = SEP
    ids[torch.arange(batch), lengths - 1] = SEP
    ids[attention_mask == 0] = PAD
    token_type_ids = ((positions > sep_a[:, None]) & (attention_mask == 1)).long()
    input_ids, labels = mask_tokens(ids, vocab, gen)
    relation_labels = torch.randint(0, 3, (batch,), generator=gen)
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
                "labels": labels, "relation_labels": relation_labels}


def mask_tokens(ids: torch.Tensor, vocab: int, gen: torch.Generator, p: float = 0.15):
    """BERT's masking as ``DataCollatorForLanguageModeling.torch_mask_tokens``: select each
    non-special token with probability ``p``; of those 80% -> [MASK], 10% random, 10% kept."""
    special = torch.zeros_like(ids, dtype=torch.bool)
    for token in SPECIAL:
        special |= ids == token
    selected = (torch.rand(ids.shape, generator=gen) < p) & ~special
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
    replaced = selected & (torch.rand(ids.shape, generator=gen) < 0.8)
    randomised = selected & ~replaced & (torch.rand(ids.shape, generator=gen) < 0.5)
    inputs = ids.clone()
    inputs[replaced] = MASK
    inputs[randomised] = torch.randint(vocab, ids.shape, generator=gen)[randomised]
    return inputs, labels


def corpus_batches(folder: str, n: int, batch: int, seq: int) -> tuple[list[dict], int]:
    """``n`` batches from a prepared corpus (its pairs and collator, as pretraining builds them;
    pairs longer than ``seq`` are cut to it, as the collator cuts them, where pretraining would
    refuse a ``max_length`` that cannot hold two segments); also the vocabulary size."""
    from linkbert.pairs import PairSampler
    from linkbert.pretrain.data import open_corpus, pair_collator

    corpus = open_corpus(folder)
    sampler, collate = PairSampler(corpus.store, corpus.graph(), seed=0), pair_collator(corpus, max_length=seq)
    size = len(sampler)  # pairs per epoch; a small corpus wraps into later epochs
    batches = [collate([sampler.pair(j // size, j % size) for j in range(b * batch, (b + 1) * batch)])
               for b in range(n)]
    return batches, corpus.store.vocab_size


def config_batches(name: str, steps: int, data: str | None = None, batch: int | None = None,
                   seq: int | None = None) -> tuple[list[dict], int]:
    """``steps`` batches for configuration ``name`` (its batch size and sequence length unless
    given): from the prepared corpus ``data``, else synthetic; also the vocabulary size."""
    _, default_seq, default_batch = CONFIGS[name]
    seq, batch = seq or default_seq, batch or default_batch
    vocab = config_vocab(name, data) or 30522  # refuses modernbert-base on a corpus
    if data:
        return corpus_batches(data, steps, batch, seq)
    return synthetic_batches(steps, batch, seq, vocab), vocab


def config_vocab(name: str, data: str | None) -> int | None:
    """The vocabulary a configuration's batches must be drawn from (None: BERT's, or the data's)."""
    if name == "modernbert-base":
        if data:
            raise SystemExit("modernbert-base runs on synthetic batches only (its vocabulary is not the corpus's)")
        return MODERNBERT_BASE["vocab_size"]
    return None


# -- models and their losses ----------------------------------------------------------------------

def stock_model(config) -> nn.Module:
    """HF ``BertForPreTraining`` with a 3-way relation head."""
    from transformers import BertForPreTraining

    model = BertForPreTraining(config)
    model.cls.seq_relationship = nn.Linear(config.hidden_size, 3)
    return model


def stock_loss(model, batch: dict) -> torch.Tensor:
    """``BertForPreTraining``'s own loss, written out because its NSP term assumes 2 classes."""
    out = model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                attention_mask=batch["attention_mask"])
    ce = nn.CrossEntropyLoss()
    mlm = ce(out.prediction_logits.view(-1, model.config.vocab_size), batch["labels"].view(-1))
    return mlm + ce(out.seq_relationship_logits.view(-1, 3), batch["relation_labels"].view(-1))


def own_loss(model, batch: dict) -> torch.Tensor:
    return model(**batch).loss


def modernbert_config():
    from transformers import ModernBertConfig

    config = ModernBertConfig(**MODERNBERT_BASE, pad_token_id=PAD, cls_token_id=CLS, sep_token_id=SEP,
                              bos_token_id=CLS, eos_token_id=SEP)
    config._attn_implementation = "sdpa"
    return config


class StockModernBert(nn.Module):
    """``ModernBertForMaskedLM`` as its own loss runs it (vocabulary logits at every position)
    and a 3-way relation head on the first token."""

    def __init__(self, config):
        from transformers import ModernBertForMaskedLM

        super().__init__()
        self.mlm = ModernBertForMaskedLM(config)
        self.relation = nn.Linear(config.hidden_size, 3)

    def forward(self, batch: dict) -> torch.Tensor:
        hidden = self.mlm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        logits = self.mlm.decoder(self.mlm.head(hidden))
        ce = nn.CrossEntropyLoss()
        return (ce(logits.view(-1, logits.shape[-1]), batch["labels"].view(-1))
                + ce(self.relation(hidden[:, 0]), batch["relation_labels"]))


def stock_modernbert_loss(model, batch: dict) -> torch.Tensor:
    return model(batch)


def own_model(config, backend: str, max_predictions: int, attention: str = "sdpa", mlm_loss: str = "plain",
              norm_precision: str = "fp32") -> tuple[nn.Module, object]:
    """Ours on ``backend`` (bert-cpu: BERT's forward written out for CPU speed; transformers:
    transformers' forward with the masked positions gathered, what runs on a GPU), and its loss."""
    import copy

    from transformers import BertForMaskedLM, ModernBertForMaskedLM

    def loss(model, batch):
        batch = dict(batch)
        longest = batch.pop("_max_length", 0)
        return model(**batch, max_predictions=max_predictions, max_length=longest, mlm_loss=mlm_loss).loss
    config = copy.deepcopy(config)  # the stock model keeps its own (SDPA)
    config._attn_implementation = attention
    mlm = (ModernBertForMaskedLM if config.model_type == "modernbert" else BertForMaskedLM)(config)
    model = LinkPretrainingModel(mlm, 3, backend)
    model.norm_precision(norm_precision)
    return model, loss


def models_for(name: str, vocab: int, args):
    """``(config, (stock model, its loss), (our model, its loss))`` for configuration ``name``
    (both without attention dropout where ours has none: the same recipe)."""
    options = dict(max_predictions=args.max_predictions, attention=args.attention, mlm_loss=args.mlm_loss,
                   norm_precision=args.norm_precision)
    if name == "modernbert-base":
        config = modernbert_config()
        return config, (StockModernBert(config), stock_modernbert_loss), own_model(config, "transformers", **options)
    config = preset_config(CONFIGS[name][0], vocab, **({"attention_probs_dropout_prob": 0.0}
                                                      if args.attention in NO_DROPOUT else {}))
    return config, (stock_model(config), stock_loss), own_model(config, args.own_backend, **options)


def flattened(batch: dict, seq: int, device: str) -> dict:
    """``batch`` (host tensors) flattened as ``linkbert pretrain`` feeds varlen attention."""
    flat = flatten_pairs(*(batch[k].numpy() for k in ("input_ids", "token_type_ids", "attention_mask", "labels")),
                         pad_id=PAD, max_length=seq)
    return {**{k: v.to(device) for k, v in flat.items()}, "relation_labels": batch["relation_labels"].to(device),
            "_max_length": seq}


# -- FLOPs and peak --------------------------------------------------------------------------------

def batch_flops(config, batch: dict, dense_mlm: bool, pruned_last_layer: bool = False,
                max_predictions: int = 0) -> float:
    """Training FLOPs (forward + backward = 3 x forward) of one batch, counted analytically.

    Per token: 2 x (per-layer attention projections 4h^2 and feed-forward) x layers, the MLM
    transform h^2 and decoder h V (at every token when ``dense_mlm``; else at the masked ones,
    or at ``batch x max_predictions`` gathered rows), and attention 2 x 2 L h per layer (scores
    and weighted values over the sequence's own length L; a ModernBERT local layer over its
    window). The feed-forward block is 2 h ffn for BERT, 3 h ffn for ModernBERT's GLU. With
    ``pruned_last_layer`` (the written-out BERT) the last layer computes keys and values at
    every token but queries, attention, output projection and feed-forward block only at the
    masked tokens and [CLS].
    """
    h, ffn, layers, vocab = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    modernbert = config.model_type == "modernbert"
    feed_forward = (3 if modernbert else 2) * h * ffn
    if "cu_seqlens" in batch:  # flattened: the pairs' lengths, not the row's (the tail is no pair)
        lengths = batch["cu_seqlens"].diff()[:-1].double()
    else:
        lengths = batch["attention_mask"].sum(1).double()
    tokens = lengths.sum().item()
    selected = batch["labels"] != IGNORE_INDEX
    masked = selected.sum().item()
    layer = 2 * (4 * h * h + feed_forward)  # per token
    full = 2 * 2 * h * (lengths ** 2).sum().item()  # per layer
    if modernbert:  # every global_attn_every_n_layers-th layer is global, the rest see +-window/2
        window = config.local_attention + 1
        local = 2 * 2 * h * (lengths * lengths.clamp(max=window)).sum().item()
        globals_ = sum(1 for i in range(layers) if i % config.global_attn_every_n_layers == 0)
        attention = (globals_ * full + (layers - globals_) * local) / layers
    else:
        attention = full
    if dense_mlm or not pruned_last_layer:
        encoder = layers * (layer * tokens + attention)
    else:
        kept = selected.clone()
        kept[:, 0] = True
        rows, rows_by_length = kept.sum().item(), (kept.sum(1) * lengths).sum().item()
        last = 2 * 2 * h * h * tokens + 2 * (2 * h * h + feed_forward) * rows + 2 * 2 * h * rows_by_length
        encoder = (layers - 1) * (layer * tokens + attention) + last
    head_rows = tokens if dense_mlm else (len(lengths) * max_predictions if max_predictions else masked)
    head = 2 * (h * h + h * vocab) * head_rows
    return 3 * (encoder + head)


def matmul_peak(dtype: torch.dtype, device: str, n: int, repeats: int = 20) -> float:
    """Best FLOP/s of an ``n x n`` by ``n x n`` matmul (the denominator of ``peak_fraction``)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# -- timing ---------------------------------------------------------------------------------------

class Trainer:
    """One model, its loss and an AdamW; ``run(batches)`` times a round of steps."""

    def __init__(self, model, loss_fn, precision: str, device: str):
        self.model = model.to(device).train()
        self.loss_fn, self.device = loss_fn, device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        # fused AdamW (CPU and CUDA): one kernel over all parameters, as a trainer would use
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01,
                                           fused=True)

    def step(self, batch: dict) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            loss = self.loss_fn(self.model, batch)
        loss.backward()
        self.optimizer.step()

    def run(self, batches: list[dict]) -> float:
        _sync(self.device)
        start = time.perf_counter()
        for batch in batches:
            self.step(batch)
        _sync(self.device)
        return time.perf_counter() - start


# trainer -> whether glibc keeps freed memory during its rounds (linkbert pretrain does, on CPU)
RETAINS = {"stock": False, "stock_retained": True, "own": True}


def compare(name: str, args, batches: list[dict], vocab: int, precision: str, device: str, peak: float,
            own_batches: list[dict] | None = None) -> dict:
    """Alternate rounds of the stock model and ours on ``batches``; return the figures.

    The stock model runs twice: as it runs out of the box (glibc's default malloc thresholds,
    so its 500 MB of dense MLM logits per step are fresh ``mmap``s, zero-filled and page-faulted
    every step) and with the allocator setting ``linkbert pretrain`` applies (``stock_retained``).
    ``speedup`` is against the first, ``speedup_allocator_matched`` against the second: the part
    of the gain that is the model and its loss alone.
    """
    torch.manual_seed(0)
    config, (stock, stock_loss_fn), (own, own_loss_fn) = models_for(name, vocab, args)
    trainers = {"stock": Trainer(stock, stock_loss_fn, precision, device),
                "stock_retained": Trainer(stock, stock_loss_fn, precision, device),
                "own": Trainer(own, own_loss_fn, precision, device)}
    if args.default_malloc or device != "cpu":
        trainers.pop("stock_retained")
    if args.compile:
        trainers["own"].model.compile()
    times = {key: [] for key in trainers}
    for round_ in range(args.rounds + 1):  # round 0 warms up: allocator, kernels (and compilation)
        for key, trainer in trainers.items():
            if device == "cpu" and not args.default_malloc:
                retain_freed_memory(RETAINS[key])
            taken = own_batches if key == "own" and own_batches else batches
            seconds = trainer.run(taken[:args.warmup] if round_ == 0 else taken)
            if round_:
                times[key].append(seconds)
    tokens = sum(b["attention_mask"].sum().item() for b in batches)
    stock_flops = sum(batch_flops(config, b, dense_mlm=True) for b in batches)
    backend = "transformers" if config.model_type == "modernbert" else args.own_backend
    own_flops = sum(batch_flops(config, b, dense_mlm=False, pruned_last_layer=backend == "bert-cpu",
                                max_predictions=args.max_predictions if backend == "transformers" else 0)
                    for b in batches)
    seconds = {key: statistics.median(values) for key, values in times.items()}
    result = {f"{key}_tokens_per_s": round(tokens / s, 1) for key, s in seconds.items()}
    result["speedup"] = round(seconds["stock"] / seconds["own"], 2)
    if "stock_retained" in seconds:
        result["speedup_allocator_matched"] = round(seconds["stock_retained"] / seconds["own"], 2)
    result.update({
        "peak_fraction": round(stock_flops / seconds["own"] / peak, 4),  # useful work, stock FLOP count
        "own_actual_peak_fraction": round(own_flops / seconds["own"] / peak, 4),
        **{f"{key}_peak_fraction": round(stock_flops / seconds[key] / peak, 4) for key in seconds if key != "own"},
        **{f"{key}_round_s": [round(t, 3) for t in values] for key, values in times.items()},
        "tokens_per_round": tokens,
        "attention": args.attention, "mlm_loss": args.mlm_loss, "norm_precision": args.norm_precision,
    })
    if args.peak_tflops:  # against a datasheet figure (the GPU's dense bf16 peak), not a measured one
        result["peak_fraction_datasheet"] = round(stock_flops / seconds["own"] / (args.peak_tflops * 1e12), 4)
        result["stock_peak_fraction_datasheet"] = round(stock_flops / seconds["stock"] / (args.peak_tflops * 1e12), 4)
    if device == "cuda":
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 1)
        torch.cuda.reset_peak_memory_stats()
    matched = (f"  (allocator-matched stock {result['stock_retained_tokens_per_s']:.0f} tok/s, "
               f"x{result['speedup_allocator_matched']:.2f})" if "stock_retained" in seconds else "")
    print(f"{name:>5} {precision:>4}: stock {result['stock_tokens_per_s']:>9.0f} tok/s  "
          f"ours {result['own_tokens_per_s']:>9.0f} tok/s  x{result['speedup']:.2f}{matched}  "
          f"useful {stock_flops / seconds['own'] / 1e9:.1f} GFLOP/s = {result['peak_fraction']:.1%} of peak "
          f"(actual {own_flops / seconds['own'] / 1e9:.1f} = {result['own_actual_peak_fraction']:.1%})", flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,mini", help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, fp16")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch", type=int, help="override the configuration's batch size")
    parser.add_argument("--seq", type=int, help="override the configuration's sequence length")
    parser.add_argument("--data", help="a prepared corpus folder instead of synthetic batches")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model (slower on CPU, see above)")
    parser.add_argument("--gpu", action="store_true", help="base at seq 512 (unless --configs), bf16, on CUDA")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: the same as --gpu")
    parser.add_argument("--peak-tflops", type=float,
                        help="also report fractions of this peak (e.g. 989: an H100/H200's dense bf16 datasheet figure)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, the number of cores)")
    parser.add_argument("--own-backend", choices=("bert-cpu", "transformers"),
                        help="ours: BERT's forward written out (bert-cpu, the CPU default) or transformers' forward "
                             "with the masked rows gathered (transformers, what runs on GPUs; the --gpu default)")
    parser.add_argument("--max-predictions", default="0",
                        help="transformers backend: masked positions per sequence read (0: every one; auto: "
                             "collator.max_predictions_for(seq, 0.15), what max_predictions=auto reads)")
    parser.add_argument("--attention", default="sdpa", choices=("sdpa", *FLATTENED, "eager"),
                        help="ours, transformers backend: varlen and flash_attention_* take the batches flattened")
    parser.add_argument("--mlm-loss", default="plain", choices=("plain", "chunked"), help="ours, transformers backend")
    parser.add_argument("--norm-precision", default="fp32", choices=("fp32", "autocast"),
                        help="ours: LayerNorms under autocast in float32 (autocast's rule) or the autocast dtype")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds alone for every model (no allocator-matched stock run)")
    args = parser.parse_args(argv)
    args.max_predictions_arg = args.max_predictions
    args.gpu = args.gpu or args.device == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if args.gpu else "cpu"
    args.own_backend = args.own_backend or ("transformers" if args.gpu or args.attention != "sdpa" else "bert-cpu")
    if args.own_backend == "bert-cpu" and (args.attention, args.mlm_loss) != ("sdpa", "plain"):
        parser.error("--attention and --mlm-loss are the transformers backend's (--own-backend transformers)")
    if args.gpu:
        if not torch.cuda.is_available():
            parser.error("--gpu needs CUDA")
        args.precisions = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if args.configs == parser.get_default("configs"):
            args.configs = "base"
    precisions = args.precisions.split(",")
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OpenMP waiting: {OPENMP_WAITING}; "
          f"device {device}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    peaks = {p: matmul_peak(_dtype(p), device, 8192 if args.gpu else 2048) for p in precisions}
    print("matmul peak: " + ", ".join(f"{p} {v / 1e9:.0f} GFLOP/s" for p, v in peaks.items()), flush=True)
    results = {}
    for name in args.configs.split(","):
        batches, vocab = config_batches(name, args.steps, args.data, args.batch, args.seq)
        seq = args.seq or CONFIGS[name][1]
        args.max_predictions = max_predictions_for(seq, 0.15) if args.max_predictions_arg == "auto" else int(
            args.max_predictions_arg)
        own_batches = [flattened(b, seq, device) for b in batches] if args.attention in FLATTENED else None
        batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
        for precision in precisions:
            results[f"{name}/{precision}"] = compare(name, args, batches, vocab, precision, device, peaks[precision],
                                                     own_batches)
    results["_meta"] = {"device": device, "own_backend": args.own_backend, "max_predictions": args.max_predictions, "threads": torch.get_num_threads(), "openmp_waiting": OPENMP_WAITING,
                        "attention": args.attention, "mlm_loss": args.mlm_loss, "norm_precision": args.norm_precision,
                        "allocator_setting_per_model": not args.default_malloc and device == "cpu",
                        "load_average_start": load,
                        "load_average_end": os.getloadavg(), "matmul_peak_flops": peaks}
    print(json.dumps(results))
    return 0


def _dtype(precision: str) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


if __name__ == "__main__":
    raise SystemExit(main())
