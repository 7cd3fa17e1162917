"""LinkBERT's pretraining model on any transformers masked-LM encoder: :class:`LinkPretrainingModel`.

What the model is, whatever computes it:

* ``mlm``: a transformers masked-LM model (``BertForMaskedLM``, ``RobertaForMaskedLM``,
  ``ModernBertForMaskedLM``, ``DistilBertForMaskedLM``, ...) with its own MLM head;
* ``pooler``: a dense layer + tanh on the first token (BERT's pooler; for a BERT or RoBERTa
  checkpoint, its own pooler's weights);
* ``relation_head``: ``Linear(hidden, num_relations)`` on the pooled first token, as BERT's NSP
  head: 3 classes for LinkBERT's document relation prediction, 2 for NSP, none for MLM only
  (the pooler is then frozen: nothing trains it).

The MLM loss is taken at the masked positions only: their rows go through the head and one
cross-entropy, never a ``(batch, seq, vocab)`` logit tensor.

**Backends** compute the same function with the same parameters; which one runs is a choice of
speed, not part of the model (``model.backend`` may be set at any time, and a checkpoint is the
same whichever ran):

* ``transformers``: the checkpoint's own forward (``mlm.base_model``), for any architecture and
  any attention implementation transformers has; what runs on a GPU. With ``max_predictions`` the
  masked positions are a fixed ``(batch, max_predictions)`` gather (static shapes, no host sync).
  With an attention of ``attention.FLATTENED`` (``varlen``: torch's variable-length kernel) it
  takes a micro-batch's pairs flattened into one row without padding (``model/attention.py``).
* ``bert-cpu``: BERT's forward written out for CPU speed (``bert_cpu.py``: no padding, only the
  rows a loss reads in the last layer; ``kernels.py``: attention, dropout, a chunked
  linear cross-entropy, the tied embedding's two uses in one node). BERT only.

**The checkpoint format** (:meth:`save_pretrained`, :func:`read_checkpoint`): ``config.json`` is
the masked-LM model's config with ``num_relations`` and ``linkbert_format`` added;
``model.safetensors`` holds the masked-LM model's weights under their own names (``bert.*`` and
``cls.predictions.*``; ``roberta.*`` and ``lm_head.*``; ...), the pooler under the base model's
pooler name (``bert.pooler.dense.*``), and ``relation_head.*``. So ``AutoModelForMaskedLM`` loads a
checkpoint as it is (ignoring the heads), and exporting one is dropping what is not the
architecture's (``export.py``). Checkpoints written before this format (the ``linkbert``
backend's, whose names are these for BERT, and the ``hf`` backend's ``mlm.*``) are read too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from linkbert.errors import ConfigError
from linkbert.model import bert_cpu
from linkbert.model.attention import FLATTENED, rows_as_sequences
from linkbert.model.heads import (
    PretrainingOutput,
    chunked_classification_stats,
    classification_stats,
    freeze_unused_head_bias,
    masked_rows,
    max_input_length,
    mlm_head,
    mlm_transform,
    position_offset,
    relation_loss,
)
from linkbert.model.kernels import TiedWordEmbedding, linear_cross_entropy
from linkbert.objectives import IGNORE_INDEX

logger = logging.getLogger(__name__)

BACKENDS = ("transformers", "bert-cpu")
MLM_LOSSES = ("plain", "chunked")  # the transformers backend's MLM loss (forward's mlm_loss)
FORMAT = 2  # config.json's linkbert_format
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
# config keys of the pretraining model, not of the masked-LM architecture (export drops them)
PRETRAINING_CONFIG_KEYS = ("num_relations", "linkbert_format", "linkbert_backend")
# architectures whose attention reads the 2-D mask as a plain key mask (no sliding windows)
KEY_MASK_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}


class Pooler(nn.Module):
    """BERT's pooler on first-token rows: ``tanh(dense(x))``."""

    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def forward(self, first: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(first))


class LinkPretrainingModel(nn.Module):
    """A masked-LM model, a pooler and a relation head (see the module docstring), computed by
    ``backend`` (``transformers`` or ``bert-cpu``)."""

    def __init__(self, mlm: nn.Module, num_relations: int, backend: str = "transformers"):
        super().__init__()
        self.mlm = mlm
        self.num_relations = int(num_relations)
        hidden = mlm.config.hidden_size
        std = getattr(mlm.config, "initializer_range", 0.02)
        self.pooler = Pooler(hidden)
        self.relation_head = nn.Linear(hidden, self.num_relations) if self.num_relations else None
        for layer in (self.pooler.dense, self.relation_head):
            if layer is not None:
                nn.init.normal_(layer.weight, std=std)
                nn.init.zeros_(layer.bias)
        if not self.num_relations:  # nothing trains it; DistributedDataParallel must not wait for it
            self.pooler.requires_grad_(False)
        mlm_head(mlm)  # an architecture without a known head is refused here
        freeze_unused_head_bias(mlm)
        self._token_types = getattr(mlm.config, "type_vocab_size", 0) > 1 and _takes(mlm.base_model, "token_type_ids")
        self.backend = backend

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, backend: str) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
        if backend == "bert-cpu" and self.config.model_type != "bert":
            raise ConfigError(f"model_type {self.config.model_type!r}: the bert-cpu backend is BERT's forward "
                              "written out; use backend=transformers (or auto)")
        self._backend = backend

    @property
    def config(self):
        return self.mlm.config

    @property
    def _tied_weights_keys(self) -> dict:
        """The tied copies of the masked-LM model (in this model's names) that really share their
        source's storage (an untied config, ``tie_word_embeddings=False``, has none): not stored."""
        weights = self.state_dict(keep_vars=True)
        tied = {}
        for copy, source in (getattr(self.mlm, "_tied_weights_keys", None) or {}).items():
            a, b = weights.get(f"mlm.{copy}"), weights.get(f"mlm.{source}")
            if a is not None and b is not None and a.data_ptr() == b.data_ptr():
                tied[f"mlm.{copy}"] = f"mlm.{source}"
        return tied

    def tie_weights(self) -> None:
        self.mlm.tie_weights()

    def norm_precision(self, precision: str) -> None:
        """``fp32`` (autocast's rule) or ``autocast``: where the masked-LM model's LayerNorms
        compute under autocast (``model/precision.py``)."""
        from linkbert.model.precision import NORM_PRECISIONS, norms_in_autocast_dtype

        if precision not in NORM_PRECISIONS:
            raise ConfigError(f"norm_precision must be one of {', '.join(NORM_PRECISIONS)} (got {precision!r})")
        norms_in_autocast_dtype(self.mlm, precision == "autocast")

    def activation_checkpointing_enable(self) -> None:
        """Recompute each layer in the backward pass (transformers marks the layers; the bert-cpu
        backend reads the same marks)."""
        self.mlm.activation_checkpointing_enable()

    # -- the forward pass ---------------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                relation_labels: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                cu_seqlens: torch.Tensor | None = None, *, max_predictions: int = 0, max_length: int = 0,
                mlm_loss: str = "plain", dense_mlm: bool = False) -> PretrainingOutput:
        """The pretraining losses of a batch of pairs.

        ``input_ids``, ``token_type_ids``, ``attention_mask``: ``(batch, seq)``; ``labels``:
        ``(batch, seq)`` token ids at masked positions, -100 elsewhere; ``relation_labels``:
        ``(batch,)`` (-100: no loss). Or the flattened layout (``model/attention.py``: the token
        tensors ``(1, N)``, ``position_ids`` restarting per pair, ``cu_seqlens``), which a model
        whose attention reads it (:attr:`takes_flattened_pairs`) takes; ``max_length``: its
        longest pair (the kernels' bound; 0: the position embeddings' length).
        ``max_predictions`` > 0: at most that many masked positions per pair (the collator's
        cap), read by a fixed-shape gather on the transformers backend. ``mlm_loss`` (the
        transformers backend's; ``MLM_LOSSES``): ``plain``, the decoder's logits in one matmul and
        one cross-entropy; ``chunked``, ``heads.chunked_classification_stats`` (the logits never
        whole). ``dense_mlm``: logits at every position, as ``BertForPreTraining`` computes them
        (the same loss, much slower; for checking the sparse path)."""
        out = PretrainingOutput()
        if self.backend == "bert-cpu":
            if cu_seqlens is not None:
                raise RuntimeError("the bert-cpu backend takes padded batches, not the flattened layout")
            first = self._bert_cpu(out, input_ids, token_type_ids, attention_mask, labels, dense_mlm)
        else:
            if mlm_loss not in MLM_LOSSES:
                raise ConfigError(f"mlm_loss must be one of {', '.join(MLM_LOSSES)} (got {mlm_loss!r})")
            first = self._transformers(out, input_ids, token_type_ids, attention_mask, labels, position_ids,
                                       cu_seqlens, max_predictions, max_length, mlm_loss, dense_mlm)
        losses = []
        if labels is not None:
            out.mlm_loss = out.mlm_loss_sum / out.mlm_count.clamp(min=1)
            losses.append(out.mlm_loss)
        if self.relation_head is not None:
            out.relation_logits = self.relation_head(self.pooler(first))
            if relation_labels is not None:
                losses.append(relation_loss(out, relation_labels))
        if losses:
            out.loss = sum(losses)
        return out

    def _transformers(self, out, input_ids, token_type_ids, attention_mask, labels, position_ids, cu_seqlens,
                      max_predictions, max_length, mlm_loss, dense_mlm):
        hidden, first = self._encode(input_ids, token_type_ids, attention_mask, position_ids, cu_seqlens, max_length)
        if labels is not None:
            if dense_mlm:
                rows, targets = hidden.flatten(0, 1), labels.flatten()
            else:  # the flattened layout is one row: its pairs' caps add up
                per_row = max_predictions * (len(first) if cu_seqlens is not None else 1)
                rows, targets = masked_rows(hidden, labels, per_row)
            if mlm_loss == "chunked":
                decoder = self.mlm.get_output_embeddings()
                stats = chunked_classification_stats(mlm_transform(self.mlm)(rows), decoder.weight, decoder.bias,
                                                     targets)
            else:
                stats = classification_stats(self._head(rows), targets)
            out.mlm_loss_sum, out.mlm_count, out.mlm_correct = stats
        return first

    def _head(self, rows: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of final hidden rows, by the masked-LM model's own head (looked up at
        each call: a stored closure would survive ``copy.deepcopy`` pointing at the original)."""
        return mlm_head(self.mlm)(rows)

    @property
    def takes_flattened_pairs(self) -> bool:
        """Whether the forward reads the flattened layout: the transformers backend with an
        attention of ``model.attention.FLATTENED`` (a padded batch is flattened as it is)."""
        return self.backend == "transformers" and getattr(self.config, "_attn_implementation", None) in FLATTENED

    def _encode(self, input_ids, token_type_ids, attention_mask, position_ids, cu_seqlens, max_length):
        """``(final hidden states, the first token's of each pair)`` on the transformers backend:
        ``(batch, seq, hidden)`` for a padded batch (also when the attention reads the flattened
        layout: its rows are the sequences), ``(1, N, hidden)`` for a flattened one."""
        if not self.takes_flattened_pairs:
            if cu_seqlens is not None:
                raise RuntimeError(f"attention {self.config._attn_implementation!r} takes padded batches, not the "
                                   f"flattened layout (attention: one of {', '.join(FLATTENED)})")
            hidden = self.mlm.base_model(**self._inputs(input_ids, token_type_ids, attention_mask)).last_hidden_state
            return hidden, hidden[:, 0]
        shape = input_ids.shape
        padded = cu_seqlens is None
        if padded:  # right-padded rows (every batch here): no data moves, nothing is read back
            cu_seqlens, position_ids = rows_as_sequences(attention_mask, shape)
            max_length = shape[1]
        longest = int(max_length or max_input_length(self.config))
        inputs = {"input_ids": input_ids.reshape(1, -1), "position_ids": position_ids + position_offset(self.config),
                  "cu_seq_lens_q": cu_seqlens, "cu_seq_lens_k": cu_seqlens, "max_length_q": longest,
                  "max_length_k": longest}
        if self._token_types and token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids.reshape(1, -1)
        hidden = self.mlm.base_model(**inputs).last_hidden_state
        if padded:
            hidden = hidden.view(*shape, -1)
            return hidden, hidden[:, 0]
        return hidden, hidden[0].index_select(0, cu_seqlens[:-2])  # the tail is no pair

    def _bert_cpu(self, out, input_ids, token_type_ids, attention_mask, labels, dense_mlm):
        words = decoder_weight = masked = None
        if labels is not None and not dense_mlm:
            words, decoder_weight = self._tied_word_embedding(input_ids)
            masked = labels != IGNORE_INDEX
        hidden, first = bert_cpu.encode(self.mlm.bert, input_ids, token_type_ids, attention_mask,
                                        training=self.training, word_embeddings=words, positions=masked)
        if labels is not None:
            if dense_mlm:
                out.mlm_loss_sum, out.mlm_count, out.mlm_correct = classification_stats(
                    self.mlm.cls(hidden).flatten(0, 1), labels.flatten())
            else:  # hidden: the masked positions' rows only
                predictions = self.mlm.cls.predictions
                rows = predictions.transform(hidden)
                weight = predictions.decoder.weight if decoder_weight is None else decoder_weight
                out.mlm_loss_sum, out.mlm_correct = linear_cross_entropy(rows, weight, predictions.decoder.bias,
                                                                         labels[masked])
                out.mlm_count = masked.sum()
        return first

    def _tied_word_embedding(self, input_ids: torch.Tensor):
        """The input's word embeddings and the decoder weight in the compute dtype, from one node
        (``kernels.TiedWordEmbedding``) where that saves passes over the matrix; else ``(None,
        None)``: the encoder looks the words up and the decoder casts its own weight."""
        weight = self.mlm.bert.embeddings.word_embeddings.weight
        device = input_ids.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
        if (device != "cpu" or dtype == weight.dtype or torch.compiler.is_compiling() or not torch.is_grad_enabled()
                or self.mlm.cls.predictions.decoder.weight is not weight):
            return None, None
        return TiedWordEmbedding.apply(weight, input_ids, self.mlm.bert.embeddings.word_embeddings.padding_idx, dtype)

    def _inputs(self, input_ids, token_type_ids, attention_mask) -> dict:
        """The base model's inputs. BERT and RoBERTa get the attention mask as a ``(batch, 1, 1,
        seq)`` key mask, which transformers uses as it is: given the 2-D mask, it first checks on
        the device whether it is all ones (a host sync per forward). Other architectures build
        their own masks from the 2-D one (ModernBERT's sliding windows), so they get it and its
        check. Eager attention adds a mask to the scores: a boolean one would mask nothing."""
        if (attention_mask is not None and self.config.model_type in KEY_MASK_MODELS
                and getattr(self.config, "_attn_implementation", None) == "sdpa"):
            attention_mask = attention_mask[:, None, None, :].bool()
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self._token_types and token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        return inputs

    def encode(self, input_ids, token_type_ids=None, attention_mask=None, **_) -> tuple[torch.Tensor, torch.Tensor]:
        """``(last hidden states (batch, seq, hidden), the pooled first token (batch, hidden))``
        (the first: zeros at padded positions on the bert-cpu backend)."""
        if self.backend == "bert-cpu":
            hidden, first = bert_cpu.encode(self.mlm.bert, input_ids, token_type_ids, attention_mask,
                                            training=self.training)
        else:
            hidden, first = self._encode(input_ids, token_type_ids, attention_mask, None, None, 0)
        return hidden, self.pooler(first)

    # -- the checkpoint format ----------------------------------------------------------------------

    def _pooler_file_name(self) -> str:
        return f"{self.mlm.base_model_prefix}.pooler.dense."

    def checkpoint_weights(self) -> dict[str, torch.Tensor]:
        """Every weight under its checkpoint name (tied copies once), contiguous."""
        tied = self._tied_weights_keys
        pooler = self._pooler_file_name()
        weights = {}
        for name, tensor in self.state_dict().items():
            if name in tied:
                continue
            if name.startswith("mlm."):
                name = name[len("mlm."):]
            elif name.startswith("pooler.dense."):
                name = pooler + name[len("pooler.dense."):]
            weights[name] = tensor.detach().contiguous()
        return weights

    def load_checkpoint_weights(self, weights: dict[str, torch.Tensor], raw_config: dict | None = None) -> None:
        """Load a checkpoint's weights (:meth:`checkpoint_weights`' names, or an older format's
        as its ``config.json``, ``raw_config``, says); tied copies are re-tied. Weights that do
        not fit (another architecture, missing or extra tensors) are a ConfigError, not a model
        left half at its initial values."""
        if raw_config is not None:
            weights = upgrade_weights(raw_config, weights, self.mlm.base_model_prefix)
        pooler = self._pooler_file_name()
        named = {}
        for name, tensor in weights.items():
            if name.startswith("relation_head."):
                named[name] = tensor
            elif name.startswith(pooler):
                named["pooler.dense." + name[len(pooler):]] = tensor
            else:
                named["mlm." + name] = tensor
        # tied copies are not stored; an MLM-only model of the hf backend's format had no pooler
        # (frozen and unread here: it keeps its initial values)
        allowed = set(self._tied_weights_keys) | ({"pooler.dense.weight", "pooler.dense.bias"}
                                                  if not self.num_relations else set())
        own = self.state_dict()
        wrong = [f"{name} {tuple(tensor.shape)} (this model: {tuple(own[name].shape)})"
                 for name, tensor in named.items() if name in own and own[name].shape != tensor.shape]
        if wrong:
            raise ConfigError(f"the checkpoint's weights do not fit this {type(self.mlm).__name__}: "
                              f"{len(wrong)} of another shape: {', '.join(wrong[:3])}")
        result = self.load_state_dict(named, strict=False)
        self.tie_weights()
        missing = [key for key in result.missing_keys if key not in allowed]
        if missing or result.unexpected_keys:
            names = ", ".join((missing + list(result.unexpected_keys))[:4])
            raise ConfigError(f"the checkpoint's weights do not fit this {type(self.mlm).__name__} ({len(missing)} "
                              f"missing, {len(result.unexpected_keys)} unexpected: {names}, ...)")

    def checkpoint_config(self) -> dict:
        """``config.json`` of a checkpoint: the masked-LM model's config, marked as ours."""
        config = self.mlm.config.to_dict()
        config.update(num_relations=self.num_relations, linkbert_format=FORMAT,
                      architectures=[type(self.mlm).__name__])
        config.pop("linkbert_backend", None)
        return config

    def save_pretrained(self, folder, **_) -> None:
        """``config.json`` and ``model.safetensors`` in the checkpoint format."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG).write_text(json.dumps(self.checkpoint_config(), indent=2, sort_keys=True) + "\n")
        save_file(self.checkpoint_weights(), str(folder / WEIGHTS), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, folder, *, backend: str = "transformers", attention: str = "sdpa",
                        dtype=torch.float32, config=None) -> LinkPretrainingModel:
        """A checkpoint of this model (:meth:`save_pretrained`'s folder, or an older format's);
        ``config``: its masked-LM config as :func:`read_checkpoint_config` read it, edited."""
        from safetensors.torch import load_file
        from transformers import AutoModelForMaskedLM

        raw = read_config_dict(folder)
        if config is None:
            config = read_checkpoint_config(folder)
        mlm = AutoModelForMaskedLM.from_config(config, attn_implementation=attention)
        model = cls(mlm, int(raw.get("num_relations", 3)), backend)
        try:
            weights = load_file(str(Path(folder) / WEIGHTS))
        except FileNotFoundError:
            from linkbert.errors import BadInput

            raise BadInput(str(Path(folder) / WEIGHTS), "", "not_a_checkpoint", "missing") from None
        model.load_checkpoint_weights(weights, raw)
        return model.to(dtype)


def _takes(module: nn.Module, name: str) -> bool:
    import inspect

    return name in inspect.signature(module.forward).parameters


# -- reading checkpoints, this format's and older ones ------------------------------------------------

def read_config_dict(folder) -> dict:
    """A checkpoint's ``config.json`` as a dict; a file that is not one is a BadInput."""
    from linkbert.errors import BadInput

    from linkbert.json_input import load_file

    path = Path(folder) / CONFIG
    if not path.is_file():
        raise BadInput(str(path), "", "not_a_checkpoint", "missing: not a pretraining checkpoint folder")
    config = load_file(path)  # not UTF-8, not JSON, nested too deeply: a BadInput naming it
    if not isinstance(config, dict):
        raise BadInput(str(path), "", "malformed_json", "not a JSON object")
    return config


def is_checkpoint(folder) -> bool:
    """Whether ``folder`` holds a pretraining checkpoint (this format or an older one), rather
    than a plain transformers model."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        return False
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(config, dict) and any(key in config for key in PRETRAINING_CONFIG_KEYS)


def read_checkpoint_config(folder):
    """The masked-LM model's transformers config of a checkpoint."""
    from transformers import AutoConfig

    raw = read_config_dict(folder)
    fields = {k: v for k, v in raw.items() if k not in PRETRAINING_CONFIG_KEYS}
    try:
        config = AutoConfig.for_model(**fields)
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"{Path(folder) / CONFIG}: not a config transformers knows ({e})") from None
    config.architectures = fields.get("architectures")
    if raw.get("model_type") == "bert" and "linkbert_format" not in raw and "linkbert_backend" not in raw:
        config.architectures = ["BertForMaskedLM"]  # the first format: LinkBertForPreTraining
    return config


def upgrade_weights(raw_config: dict, weights: dict, base_prefix: str) -> dict:
    """A checkpoint's weights under this format's names. The first format (the ``linkbert``
    backend's ``LinkBertForPreTraining``) already used them; the ``hf`` backend's held the
    masked-LM model's under ``mlm.`` and its pooler and classifier as ``relation_head.0`` and
    ``relation_head.2``."""
    if raw_config.get("linkbert_backend") != "hf":
        return weights
    upgraded = {}
    for name, tensor in weights.items():
        if name.startswith("mlm."):
            upgraded[name[len("mlm."):]] = tensor
        elif name.startswith("relation_head.0."):
            upgraded[f"{base_prefix}.pooler.dense." + name[len("relation_head.0."):]] = tensor
        elif name.startswith("relation_head.2."):
            upgraded["relation_head." + name[len("relation_head.2."):]] = tensor
        else:
            upgraded[name] = tensor
    return upgraded
