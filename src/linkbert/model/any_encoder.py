"""LinkBERT's objective on any Hugging Face masked-LM encoder, through the checkpoint's own
forward: ``EncoderForLinkPretraining``. This is the device path: on a GPU it is what runs (the
written-out BERT of ``encoder.py`` is the CPU path), and ``backend=hf`` selects it on a CPU.

* the encoder is the checkpoint's base model (``AutoModelForMaskedLM(...).base_model``: BERT,
  RoBERTa and its kin, ModernBERT, DistilBERT), with its own attention implementation (SDPA, or
  flash-attention where transformers and the GPU provide it);
* the MLM loss is taken at the masked positions only: their rows go through the checkpoint's
  own MLM head and one cross-entropy, never a ``(batch, seq, vocab)`` logit tensor and never a
  loop. With ``max_predictions`` (BERT's ``max_predictions_per_seq``) the positions are a fixed
  ``(batch, max_predictions)`` gather, so shapes are static (``torch.compile`` compiles once)
  and nothing is read back to the host; without it, a boolean gather (one host sync);
* the relation head (dense + tanh + linear, as BERT's pooler and NSP head) reads the first
  token, which every pair layout starts with (``[CLS]``, ``<s>``);
* token types go to encoders that have them (``type_vocab_size`` > 1), never to RoBERTa's;
* BERT and RoBERTa get the attention mask as a ``(batch, 1, 1, seq)`` key mask, which
  transformers uses as it is: given the 2-D mask, it first checks on the device whether the
  mask is all ones (a host sync per forward). Other architectures build their own masks from
  the 2-D one (ModernBERT's sliding windows), so they get it and its check.

A checkpoint of this model is the masked-LM checkpoint (its ``config.json``, with
``linkbert_backend`` and ``num_relations`` added) whose ``model.safetensors`` holds the
wrapper's weights (``mlm.*``, ``relation_head.*``); ``export`` writes the masked-LM model alone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from linkbert.errors import ConfigError
from linkbert.objectives import IGNORE_INDEX

logger = logging.getLogger(__name__)

BACKEND = "hf"
# architectures whose attention reads the 2-D mask as a plain key mask (no sliding windows)
KEY_MASK_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}
WEIGHTS = "model.safetensors"


def mlm_head(mlm: nn.Module):
    """The function from final hidden rows ``(n, hidden)`` to vocabulary logits ``(n, vocab)``
    of a transformers masked-LM model: its own head, whatever the architecture calls it."""
    kind = type(mlm).__name__
    # bound methods and closures, not modules: an attribute holding the head module would
    # register it a second time
    if hasattr(mlm, "cls") and hasattr(mlm.cls, "predictions"):  # BERT and its kin
        return mlm.cls.__call__
    if hasattr(mlm, "lm_head"):  # RoBERTa, XLM-R, CamemBERT, ...
        return mlm.lm_head.__call__
    if hasattr(mlm, "head") and hasattr(mlm, "decoder"):  # ModernBERT
        return lambda rows: mlm.decoder(mlm.head(rows))
    if hasattr(mlm, "vocab_projector"):  # DistilBERT
        return lambda rows: mlm.vocab_projector(mlm.vocab_layer_norm(mlm.activation(mlm.vocab_transform(rows))))
    raise ConfigError(f"{kind}: no known masked-LM head (BERT's cls, RoBERTa's lm_head, ModernBERT's head and "
                      "decoder, DistilBERT's vocab_projector); this architecture is not supported yet")


def freeze_unused_head_bias(mlm: nn.Module) -> list[str]:
    """Stop training the head's ``bias`` where it is not the decoder's: BERT's and RoBERTa's heads
    add ``decoder.bias``, and keep ``bias`` as its tied source; with untied embeddings
    (``tie_word_embeddings=False``) transformers leaves the two apart, and ``bias`` takes no part
    in the forward. A parameter that gets no gradient stops DistributedDataParallel at its
    second step. Its value stays in the checkpoint, unchanged. Returns the frozen names."""
    frozen = []
    for name in ("cls.predictions", "lm_head"):
        head = mlm.get_submodule(name) if _has_submodule(mlm, name) else None
        decoder = getattr(head, "decoder", None)
        bias, decoder_bias = getattr(head, "bias", None), getattr(decoder, "bias", None)
        if isinstance(bias, nn.Parameter) and decoder_bias is not None and bias is not decoder_bias:
            bias.requires_grad_(False)
            frozen.append(f"{name}.bias")
    return frozen


def _has_submodule(module: nn.Module, name: str) -> bool:
    try:
        module.get_submodule(name)
    except AttributeError:
        return False
    return True


def _takes(module: nn.Module, name: str) -> bool:
    import inspect

    return name in inspect.signature(module.forward).parameters


class EncoderForLinkPretraining(nn.Module):
    """A transformers masked-LM model (``mlm``) and a relation head on its first token.

    Its forward takes and returns what ``LinkBertForPreTraining``'s does
    (``LinkBertPreTrainingOutput``: the loss sums, counts and correct counts a trainer
    all-reduces), so the trainer, the evaluation and the checkpoints treat both alike.
    """

    def __init__(self, mlm: nn.Module, num_relations: int):
        super().__init__()
        self.mlm = mlm
        self.num_relations = int(num_relations)
        hidden = mlm.config.hidden_size
        self.relation_head = (nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, num_relations))
                              if num_relations else None)
        if self.relation_head is not None:
            std = getattr(mlm.config, "initializer_range", 0.02)
            for layer in (self.relation_head[0], self.relation_head[2]):
                nn.init.normal_(layer.weight, std=std)
                nn.init.zeros_(layer.bias)
        self._head = mlm_head(mlm)
        freeze_unused_head_bias(mlm)
        self._token_types = getattr(mlm.config, "type_vocab_size", 0) > 1 and _takes(mlm.base_model, "token_type_ids")
        # eager attention adds a mask to the scores: a boolean one would mask nothing
        self._key_mask = (mlm.config.model_type in KEY_MASK_MODELS
                          and getattr(mlm.config, "_attn_implementation", None) == "sdpa")

    def _inputs(self, input_ids, token_type_ids, attention_mask) -> dict:
        if attention_mask is not None and self._key_mask:
            attention_mask = attention_mask[:, None, None, :].bool()
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self._token_types and token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        return inputs

    @property
    def config(self):
        return self.mlm.config

    @property
    def _tied_weights_keys(self) -> dict:
        """The tied copies (not stored in a checkpoint) of the masked-LM model, in this model's
        names: those of its class's list that really share their source's storage (an untied
        config, ``tie_word_embeddings=False``, has none)."""
        weights = self.state_dict(keep_vars=True)
        tied = {}
        for copy, source in (getattr(self.mlm, "_tied_weights_keys", None) or {}).items():
            a, b = weights.get(f"mlm.{copy}"), weights.get(f"mlm.{source}")
            if a is not None and b is not None and a.data_ptr() == b.data_ptr():
                tied[f"mlm.{copy}"] = f"mlm.{source}"
        return tied

    def tie_weights(self) -> None:
        self.mlm.tie_weights()

    def gradient_checkpointing_enable(self) -> None:
        self.mlm.gradient_checkpointing_enable()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                relation_labels: torch.Tensor | None = None, *, max_predictions: int = 0):
        """``labels``: ``(batch, seq)`` token ids at masked positions, -100 elsewhere;
        ``max_predictions`` > 0: at most that many per sequence (the collator's cap), read by a
        static gather; 0: every masked position, by a boolean gather."""
        from linkbert.model.modeling import LinkBertPreTrainingOutput, classification_stats, relation_loss

        hidden = self.mlm.base_model(**self._inputs(input_ids, token_type_ids, attention_mask)).last_hidden_state
        out = LinkBertPreTrainingOutput()
        losses = []
        if labels is not None:
            rows, targets = masked_rows(hidden, labels, max_predictions)
            logits = self._head(rows)
            out.mlm_loss_sum, out.mlm_count, out.mlm_correct = classification_stats(logits, targets)
            out.mlm_loss = out.mlm_loss_sum / out.mlm_count.clamp(min=1)
            losses.append(out.mlm_loss)
        if self.relation_head is not None:
            out.relation_logits = self.relation_head(hidden[:, 0])
            if relation_labels is not None:
                losses.append(relation_loss(out, relation_labels))
        if losses:
            out.loss = sum(losses)
        return out

    def encode(self, input_ids, token_type_ids=None, attention_mask=None, **_):
        """``(hidden states (batch, seq, hidden), first-token features (batch, hidden))``, as
        ``LinkBertForPreTraining.encode`` returns them (the second: the relation head's dense +
        tanh, this model's pooler; the first token's hidden state without a relation head)."""
        hidden = self.mlm.base_model(**self._inputs(input_ids, token_type_ids, attention_mask)).last_hidden_state
        first = hidden[:, 0] if self.relation_head is None else self.relation_head[1](self.relation_head[0](hidden[:, 0]))
        return hidden, first

    # -- a checkpoint folder ------------------------------------------------------------------------

    def save_pretrained(self, folder, **_) -> None:
        """``config.json`` (the masked-LM's, marked as this backend's) and ``model.safetensors``
        (every weight, tied ones once)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = self.mlm.config.to_dict()
        config.update(linkbert_backend=BACKEND, num_relations=self.num_relations)
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        weights = self.state_dict()
        for copy in self._tied_weights_keys:  # the copy goes, its source stays
            weights.pop(copy, None)
        save_file({name: tensor.contiguous() for name, tensor in weights.items()}, str(folder / WEIGHTS))

    @classmethod
    def from_pretrained(cls, folder, dtype=torch.float32) -> EncoderForLinkPretraining:
        """A checkpoint of this model (``save_pretrained``'s folder)."""
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModelForMaskedLM

        from linkbert.checkpoint import apply_weights

        folder = Path(folder)
        config = AutoConfig.from_pretrained(folder)
        model = cls(AutoModelForMaskedLM.from_config(config, attn_implementation="sdpa"),
                    int(getattr(config, "num_relations", 3)))
        apply_weights(model, load_file(folder / WEIGHTS))
        return model.to(dtype)


def max_input_length(config) -> int:
    """The longest input the position embeddings allow: RoBERTa and its kin number positions
    from ``pad_token_id + 1`` (514 embeddings, 512 tokens)."""
    positions = int(getattr(config, "max_position_embeddings", 512))
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        return positions - (int(config.pad_token_id) + 1)
    return positions


def is_checkpoint(folder) -> bool:
    """Whether ``folder`` holds a checkpoint of ``EncoderForLinkPretraining``."""
    config = Path(folder) / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("linkbert_backend") == BACKEND


def masked_rows(hidden: torch.Tensor, labels: torch.Tensor, max_predictions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows (n, hidden), targets (n,))`` of the masked positions. With ``max_predictions``:
    ``n = batch * max_predictions``, each sequence's masked positions first (in order), then
    unmasked ones whose target is -100 (ignored by the loss): a fixed shape and no host sync. A
    sequence with more masked positions than that would lose some: the collator caps them."""
    masked = labels != IGNORE_INDEX
    if max_predictions <= 0:
        return hidden[masked], labels[masked]
    # a stable sort of the mask: the masked positions, in order, before the rest
    order = torch.argsort((~masked).to(torch.int8), dim=1, stable=True)[:, :max_predictions]
    rows = hidden.gather(1, order[..., None].expand(-1, -1, hidden.shape[-1]))
    return rows.flatten(0, 1), labels.gather(1, order).flatten()


def attention_implementation(choice: str, device) -> str:
    """``auto``: transformers' flash-attention 2 path on a CUDA device where the flash_attn
    package is installed (padded batches are unpadded into its variable-length kernels), SDPA
    otherwise; an explicit choice is kept."""
    import importlib.util

    if choice != "auto":
        return choice
    on_cuda = getattr(device, "type", str(device)) == "cuda"
    return "flash_attention_2" if on_cuda and importlib.util.find_spec("flash_attn") is not None else "sdpa"


def from_checkpoint(folder: Path, vocab_size: int, num_relations: int, overrides: dict,
                    attention: str = "sdpa") -> EncoderForLinkPretraining:
    """A masked-LM checkpoint folder (any architecture ``AutoModelForMaskedLM`` knows, safetensors
    weights) with a fresh relation head; an encoder-only checkpoint gets a fresh MLM head, said
    in the log."""
    from transformers import AutoConfig, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    config = AutoConfig.from_pretrained(folder)
    if config.vocab_size != vocab_size:
        raise ConfigError(
            f"{folder} has a vocabulary of {config.vocab_size} tokens but the tokenizer has {vocab_size}: "
            "prepare the corpus with this checkpoint's tokenizer (prepare --tokenizer CHECKPOINT)")
    dropout_keys = {"hidden_dropout_prob": ("hidden_dropout_prob", "mlp_dropout", "embedding_dropout", "dropout"),
                    "attention_probs_dropout_prob": ("attention_probs_dropout_prob", "attention_dropout")}
    for key, value in overrides.items():
        for name in dropout_keys.get(key, (key,)):
            if hasattr(config, name):
                setattr(config, name, value)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        mlm, info = AutoModelForMaskedLM.from_pretrained(folder, config=config, use_safetensors=True,
                                                         dtype=torch.float32, attn_implementation=attention,
                                                         output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = sorted(set(info["missing_keys"]) - set(getattr(mlm, "_tied_weights_keys", None) or {}))
    if missing:
        logger.warning("%s: initialised fresh: %s", folder, ", ".join(missing))
    logger.info("%s: relation head initialised fresh", folder)
    mlm.config.architectures = [type(mlm).__name__]
    return EncoderForLinkPretraining(mlm, num_relations)


def from_preset(config, num_relations: int, attention: str = "sdpa") -> EncoderForLinkPretraining:
    """A fresh BERT of a preset's ``BertConfig``, on this backend."""
    from transformers import BertForMaskedLM

    config._attn_implementation = attention
    mlm = BertForMaskedLM(config)
    mlm.config.architectures = ["BertForMaskedLM"]
    return EncoderForLinkPretraining(mlm, num_relations)
