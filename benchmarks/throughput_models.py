"""The models ``pretrain_throughput.py`` times, and their losses: stock HF ``BertForPreTraining``
(a 3-way relation head, vocabulary logits at every position) or ``ModernBertForMaskedLM`` as its
own loss runs it, against ours (``LinkPretrainingModel``) with the settings a run would give it
(``Ours``), and the variants of ours that undo one kept change each (``VARIANTS``).

``mlm_loss="liger"`` is this benchmark's alone: liger-kernel's fused linear cross-entropy (BSD-2,
Triton; a CUDA machine with the wheel installed, ``pip install --no-deps liger-kernel``) at the
rows the model gathers, in place of ``heads.classification_stats``: a measurement of what the
library would give before any of ``linkbert``'s code depends on it.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from throughput_batches import CLS, MODERNBERT, PAD, SEP

from linkbert.model.heads import masked_rows, mlm_transform
from linkbert.model.pretraining import LinkPretrainingModel
from linkbert.model.presets import preset_config
from linkbert.objectives import IGNORE_INDEX

MLM_LOSSES = ("plain", "chunked", "liger")


@dataclasses.dataclass(frozen=True)
class Ours:
    """How ours runs: the settings a ``linkbert pretrain`` run resolves (``attention`` already
    decided for the device: ``sdpa``, ``varlen``, ...)."""

    backend: str = "transformers"
    attention: str = "sdpa"
    mlm_loss: str = "plain"
    norm_precision: str = "fp32"
    max_predictions: int = 0
    compile: bool = False

    @property
    def flattened(self) -> bool:
        from linkbert.model.attention import FLATTENED

        return self.backend == "transformers" and self.attention in FLATTENED


# variant -> what it changes in ours: each undoes (or tries) one change, timed on the same batches;
# joined with + they combine (eager+sdpa: a change timed without the compilation it would need)
VARIANTS = {
    "eager": {"compile": False},
    "compiled": {"compile": True},
    "sdpa": {"attention": "sdpa"},
    "varlen": {"attention": "varlen"},
    "plain-loss": {"mlm_loss": "plain"},
    "chunked-loss": {"mlm_loss": "chunked"},
    "liger-loss": {"mlm_loss": "liger"},
    "norms-fp32": {"norm_precision": "fp32"},
    "norms-autocast": {"norm_precision": "autocast"},
}


def variant(ours: Ours, name: str) -> Ours | None:
    """``ours`` with variant ``name``'s changes (``eager+sdpa``: both); None when it changes
    nothing (ours already runs so)."""
    changes = {}
    for part in name.split("+"):
        if part not in VARIANTS:
            raise SystemExit(f"unknown variant {part!r}: choose from {', '.join(VARIANTS)} (or join them with +)")
        changes.update(VARIANTS[part])
    changed = dataclasses.replace(ours, **changes)
    return None if changed == ours else changed


def liger_available() -> str | None:
    """None when liger-kernel's fused linear cross-entropy imports; else why not."""
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy  # noqa: F401
    except ImportError as error:  # not installed, or no triton (a CPU build of torch)
        return f"liger-kernel does not import here ({error})"
    return None


# -- stock models ------------------------------------------------------------------------------------

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


def modernbert_config(name: str):
    from transformers import ModernBertConfig

    config = ModernBertConfig(**MODERNBERT[name], pad_token_id=PAD, cls_token_id=CLS, sep_token_id=SEP,
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


# -- ours ------------------------------------------------------------------------------------------

class LigerLossModel(LinkPretrainingModel):
    """Ours with liger-kernel's fused linear cross-entropy at the gathered rows (the transformers
    backend's ``_transformers`` with its MLM statistics from liger: the loss sum, and the
    accuracy liger returns as a mean, times the count)."""

    def _transformers(self, out, input_ids, token_type_ids, attention_mask, labels, position_ids, cu_seqlens,
                      max_predictions, max_length, mlm_loss, dense_mlm):
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        hidden, first = self._encode(input_ids, token_type_ids, attention_mask, position_ids, cu_seqlens, max_length)
        per_row = max_predictions * (len(first) if cu_seqlens is not None else 1)
        rows, targets = masked_rows(hidden, labels, per_row)
        decoder = self.mlm.get_output_embeddings()
        result = liger_fused_linear_cross_entropy(mlm_transform(self.mlm)(rows), decoder.weight, targets,
                                                  decoder.bias, ignore_index=IGNORE_INDEX, reduction="sum",
                                                  return_token_accuracy=True)
        count = (targets != IGNORE_INDEX).sum()
        out.mlm_loss_sum, out.mlm_count = result.loss, count
        out.mlm_correct = (result.token_accuracy.detach() * count).round().long()
        return first


def own_model(config, ours: Ours) -> tuple[nn.Module, object]:
    """Ours as ``ours`` says (bert-cpu: BERT's forward written out for CPU speed; transformers:
    transformers' forward with the masked positions gathered, what runs on a GPU), and its loss."""
    from transformers import BertForMaskedLM, ModernBertForMaskedLM

    def loss(model, batch):
        batch = dict(batch)
        longest = batch.pop("_max_length", 0)
        return model(**batch, max_predictions=ours.max_predictions, max_length=longest,
                     mlm_loss="plain" if ours.mlm_loss == "liger" else ours.mlm_loss).loss
    config = copy.deepcopy(config)  # the stock model keeps its own (SDPA)
    config._attn_implementation = ours.attention
    mlm = (ModernBertForMaskedLM if config.model_type == "modernbert" else BertForMaskedLM)(config)
    model = (LigerLossModel if ours.mlm_loss == "liger" else LinkPretrainingModel)(mlm, 3, ours.backend)
    model.norm_precision(ours.norm_precision)
    return model, loss


def config_for(name: str, preset: str, vocab: int, attention_dropout: float | None):
    """The masked-LM config both models of configuration ``name`` share (attention dropout as
    ours runs it: the same recipe for both; None: the architecture's default)."""
    if name in MODERNBERT:
        config = modernbert_config(name)
        if attention_dropout is not None:
            config.attention_dropout = attention_dropout
        return config
    return preset_config(preset, vocab, **({} if attention_dropout is None
                                           else {"attention_probs_dropout_prob": attention_dropout}))


def stock_for(config) -> tuple[nn.Module, object]:
    """The stock model of ``config`` and its loss."""
    if config.model_type == "modernbert":
        return StockModernBert(config), stock_modernbert_loss
    return stock_model(config), stock_loss
