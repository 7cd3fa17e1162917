"""The settings of a pretraining run: ``PretrainConfig`` (every setting, its help and bounds,
the checks across settings) and ``load_config`` (a YAML file of ``configs/pretrain/`` plus
``key=value`` overrides). ``run.py`` runs a config; ``run_folder.RUN_IDENTITY`` names the
settings a resume may not change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from linkbert import runtime, settings
from linkbert.collator import max_predictions_for
from linkbert.errors import ConfigError
from linkbert.model.loading import ATTENTION
from linkbert.model.precision import NORM_PRECISIONS
from linkbert.model.presets import PRESETS
from linkbert.model.pretraining import MLM_LOSSES
from linkbert.objectives import OBJECTIVES
from linkbert.pairs import LINKED_SAMPLING, LINKED_SEGMENT
from linkbert.settings import setting
from linkbert.tracking import TRACKERS

log = logging.getLogger("linkbert.pretrain")

# the backends' names before they said what each is
OLD_BACKEND_NAMES = {"linkbert": "bert-cpu", "hf": "transformers"}


@dataclass
class PretrainConfig:
    """Every setting of a pretraining run; YAML files in configs/pretrain/ are its saved form."""

    # -- model
    preset: str = setting("mini", "the architecture when starting from scratch", choices=PRESETS)
    init: str = setting("scratch", '"scratch", or a local checkpoint folder (safetensors) to continue from: a '
                                   "transformers masked-LM or encoder model (BERT, RoBERTa, ModernBERT, ...), or a "
                                   "checkpoint of an earlier pretraining run")
    dropout: float = setting(0.1, "hidden dropout (BERT's 0.1): embeddings, attention output, feed-forward block",
                             minimum=0, maximum=0.99)
    attention_dropout: float | str = setting("dropout", "dropout on the attention probabilities (BERT's 0.1); "
                                             "dropout: the dropout setting's value. The variable-length kernels "
                                             "(attention=varlen, flash_attention_4) have none: they need 0",
                                             minimum=0, maximum=0.99, words=("dropout",))
    # -- data and objective
    graph: str = setting("", "document graph folder to sample linked pairs from; empty: the prepared corpus's graph/")
    objective: str = setting("linkbert", "linkbert: MLM + 3-way relation prediction; bert: MLM + NSP; "
                                         "mlm-only: LinkBERT's pairs, MLM loss only", choices=OBJECTIVES)
    p_contiguous: float = setting(1 / 3, "probability of a contiguous pair (the bert objective uses 1/2)",
                                  minimum=0, maximum=1)
    p_random: float = setting(1 / 3, "probability of a random pair (the bert objective uses 1/2)", minimum=0, maximum=1)
    p_linked: float = setting(1 / 3, "probability of a linked pair (the bert objective uses 0)", minimum=0, maximum=1)
    linked_sampling: str = setting("inverse_indegree", "how a linked document is drawn among A's out-links "
                                   "(inverse_indegree: the paper's diversity sampling)", choices=LINKED_SAMPLING)
    linked_segment: str = setting("first", "which segment of the linked document is B", choices=LINKED_SEGMENT)
    max_length: int = setting(512, "tokens per input, [CLS] A [SEP] B [SEP]; must hold two of the corpus's segments",
                              minimum=8)
    mlm_probability: float = setting(0.15, "share of the tokens selected for masked LM", above=0, maximum=1)
    whole_word_mask: bool = setting(False, "select whole words for masking, not single tokens")
    heldout_fraction: float = setting(0.01, "share of the documents held out of training, for evaluation",
                                      minimum=0, maximum=0.5)
    eval_pairs: int = setting(2048, "held-out pairs per evaluation", minimum=1)
    # -- optimisation
    batch_size: int = setting(32, "global batch: pairs per optimiser step, all ranks together", minimum=1)
    micro_batch_size: int = setting(0, "pairs per forward pass on one rank; 0: batch_size / ranks", minimum=0)
    max_steps: int = setting(1000, "optimiser steps; the learning-rate schedule ends here", minimum=1)
    lr: float = setting(1e-3, "peak learning rate", above=0)
    warmup_steps: int = setting(100, "linear warmup from 0 to lr, then linear decay to 0 at max_steps", minimum=0)
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and norm weights)", minimum=0)
    adam_beta1: float = setting(0.9, "AdamW beta1", minimum=0, maximum=0.9999)
    adam_beta2: float = setting(0.98, "AdamW beta2 (the paper's 0.98)", minimum=0, maximum=0.9999)
    adam_eps: float = setting(1e-6, "AdamW epsilon", above=0)
    max_grad_norm: float = setting(1.0, "clip the global gradient norm to this; 0: no clipping", minimum=0)
    precision: str = setting("auto", "auto: bf16 where supported, else fp16 on a GPU, fp32 on CPUs without fast bf16",
                             choices=runtime.PRECISIONS)
    compile: bool = setting(False, "torch.compile the model")
    compile_cache: str = setting("auto", "where torch.compile keeps what it compiled (TORCHINDUCTOR_CACHE_DIR), so a "
                                         "restarted run does not compile again: auto, OUT/compile-cache unless "
                                         "TORCHINDUCTOR_CACHE_DIR is set (the ranks of a node, and nodes on shared "
                                         "storage, share it); a folder; torch: inductor's own default under /tmp")
    backend: str = setting("auto", "what computes the model (the same weights and checkpoints either way): "
                                   "bert-cpu, BERT's forward written out for CPU speed (BERT only); transformers, "
                                   "the checkpoint's own transformers forward (any masked-LM encoder: BERT, "
                                   "RoBERTa, ModernBERT, DistilBERT), what runs on GPUs; auto: bert-cpu for BERT on "
                                   "a CPU, transformers otherwise", choices=("auto", "bert-cpu", "transformers"))
    attention: str = setting("auto", "the transformers backend's attention: varlen (torch's variable-length flash "
                                     "kernel on the pairs of a micro-batch flattened into one row: no padding; on a "
                                     "CPU an exact padded stand-in), flash_attention_2 or flash_attention_4 (the "
                                     "flash-attn package's, the same flattened pairs), sdpa (padded batches, a key "
                                     "mask), eager; auto: varlen on a CUDA GPU of compute capability 8.0+ with "
                                     "attention_dropout 0, sdpa otherwise", choices=ATTENTION)
    max_predictions: int | str = setting(0, "masked positions per sequence at most (BERT's max_predictions_per_seq); "
                                            "the transformers backend reads them by a fixed-shape gather (no host "
                                            "sync, torch.compile compiles once); 0: every selected position; auto: "
                                            "the smallest cap a max_length sequence exceeds with probability 1e-4 "
                                            "(108 at 512 tokens and 15%)", minimum=0, words=("auto",))
    mlm_loss: str = setting("plain", "the transformers backend's MLM loss at the gathered rows: plain (the decoder's "
                                     "logits in one matmul, then cross-entropy in float32), chunked (decoder, "
                                     "cross-entropy and their gradient 1024 rows at a time in the forward pass: the "
                                     "logits never whole, as liger-kernel's fused linear cross-entropy)",
                            choices=MLM_LOSSES)
    norm_precision: str = setting("fp32", "the LayerNorms under autocast: fp32 (autocast's "
                                          "rule: a float32 residual stream), autocast (in the autocast dtype, "
                                          "statistics still in float32: half the residual stream's memory traffic)",
                                  choices=NORM_PRECISIONS)
    # -- run
    seed: int = setting(0, "seed of the weights, the data order, the masks and dropout", minimum=0)
    budget_minutes: float = setting(0.0, "stop (with a checkpoint) after this much training time; 0: no budget",
                                    minimum=0)
    log_every: int = setting(10, "log the training figures every N steps", minimum=1)
    eval_every: int = setting(0, "evaluate on held-out pairs every N steps; 0: only at the end", minimum=0)
    save_every: int = setting(500, "checkpoint every N steps (and always at the end)", minimum=1)
    keep_checkpoints: int = setting(2, "step checkpoints kept; older ones are deleted", minimum=1)
    distributed: str = setting("auto", "auto: a process group (DDP, NCCL on GPUs, gloo on CPUs) when torchrun starts "
                                       "several processes; always: one on a single process too, so one GPU runs "
                                       "what a multi-GPU job runs", choices=runtime.DISTRIBUTED)
    collective_timeout_minutes: float = setting(runtime.TIMEOUT_MINUTES, "how long a collective waits for the other "
                                                "ranks before the job gives up (a rank that hangs; a rank that "
                                                "fails tells the others at once)", above=0)
    num_workers: int = setting(0, "DataLoader processes building batches (0: in the training process)", minimum=0)
    progress: bool = setting(True, "show a progress bar")
    tracker: str = setting("tensorboard", "where the run's scalars go besides metrics.jsonl: tensorboard "
                                          "(OUT/tensorboard, when tensorboard is installed), wandb (OUT/wandb; "
                                          "offline unless WANDB_MODE says otherwise), none (neither is imported)",
                           choices=TRACKERS)
    overwrite: bool = setting(False, "write the run into a non-empty --out that is not a pretraining run folder "
                                     "(its other files are kept)")

    def __post_init__(self) -> None:
        if self.backend in OLD_BACKEND_NAMES:  # a saved config of an earlier version
            log.warning("backend=%s is now called backend=%s", self.backend, OLD_BACKEND_NAMES[self.backend])
            self.backend = OLD_BACKEND_NAMES[self.backend]
        # the words resolved once, here: the run, its config.yaml and a resume see the numbers
        if self.attention_dropout == "dropout":
            self.attention_dropout = self.dropout
        if self.max_predictions == "auto":
            self.max_predictions = max_predictions_for(self.max_length, self.mlm_probability)

    def check(self) -> None:
        if self.objective != "bert":
            total = self.p_contiguous + self.p_random + self.p_linked
            if abs(total - 1) > 1e-6:
                raise ConfigError(f"p_contiguous + p_random + p_linked must be 1 (got {self.p_contiguous:g} + "
                                  f"{self.p_random:g} + {self.p_linked:g} = {total:g})")
        if self.micro_batch_size and self.micro_batch_size > self.batch_size:
            raise ConfigError(f"micro_batch_size {self.micro_batch_size} is more than batch_size {self.batch_size}")


def load_config(path: str | None, overrides: list[str]) -> PretrainConfig:
    """A config from a YAML file (if given) and ``key=value`` overrides, each typed by its field."""
    return settings.load(PretrainConfig, path, overrides)
