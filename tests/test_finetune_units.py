"""Hand-checked pieces of fine-tuning: QA post-processing, answer spans, first-sub-token labels,
setting types, the optimizer's weight-decay split. No model is trained here."""

from __future__ import annotations

import numpy as np
import pytest

from linkbert import settings
from linkbert.errors import ConfigError
from linkbert.finetune.data import Split
from linkbert.finetune.qa_postprocess import (
    nbest_answers,
    postprocess_qa_predictions,
    window_candidates,
)
from linkbert.finetune.run import FinetuneConfig, plan_steps, resolve
from linkbert.finetune.tasks import (
    TaskSetupError,
    answer_token_span,
    first_subtoken_labels,
    first_subtoken_positions,
    make_task,
)
from linkbert.objectives import IGNORE_INDEX as IGNORE

# ---------------------------------------------------------------- QA post-processing

CONTEXT = "alpha beta gamma delta epsilon"
# character spans of the five context words
WORDS = [(0, 5), (6, 10), (11, 16), (17, 22), (23, 30)]


def window(words):
    """Offsets of a window [CLS] q [SEP] <words> [SEP]: non-context tokens are None."""
    return [None, None, None] + [WORDS[w] for w in words] + [None]


def logits(n, high: dict):
    values = np.full(n, -10.0)
    for position, value in high.items():
        values[position] = value
    return values


def test_best_span_in_one_window():
    offsets = window([0, 1, 2, 3, 4])
    start = logits(len(offsets), {4: 5.0, 5: 1.0})  # "beta" best start
    end = logits(len(offsets), {5: 4.0, 4: 1.0})  # "gamma" best end
    answers = postprocess_qa_predictions([{"id": "q", "context": CONTEXT}],
                                         [{"example_index": 0, "offset_mapping": offsets}], [start], [end])
    assert answers == {"q": "beta gamma"}


def test_spans_outside_the_context_or_reversed_are_never_chosen():
    offsets = window([0, 1, 2])
    # the highest logits sit on [CLS] (0) and on the question (1): both must be skipped
    start = logits(len(offsets), {0: 9.0, 1: 8.0, 5: 2.0, 4: 1.0})
    end = logits(len(offsets), {0: 9.0, 1: 8.0, 3: 3.0, 4: 2.5})
    # end 3 < start 5 is reversed; the best valid pair is start 4 ("beta") .. end 4
    assert postprocess_qa_predictions([{"id": "q", "context": CONTEXT}],
                                      [{"example_index": 0, "offset_mapping": offsets}],
                                      [start], [end]) == {"q": "beta"}


def test_max_answer_length_limits_the_span():
    offsets = window([0, 1, 2, 3, 4])
    start = logits(len(offsets), {3: 5.0, 6: 1.0})  # "alpha", "delta"
    end = logits(len(offsets), {7: 5.0})  # "epsilon"
    example, feature = [{"id": "q", "context": CONTEXT}], [{"example_index": 0, "offset_mapping": offsets}]
    assert postprocess_qa_predictions(example, feature, [start], [end]) == {"q": CONTEXT}
    # 5 tokens are too long with max_answer_length=2: "delta epsilon" (2 tokens) wins
    assert postprocess_qa_predictions(example, feature, [start], [end], max_answer_length=2) == {"q": "delta epsilon"}


def test_n_best_keeps_only_the_top_candidates():
    offsets = window([0, 1, 2, 3, 4])
    start = logits(len(offsets), {3: 3.0, 4: 2.0, 5: 1.0})
    end = logits(len(offsets), {5: 3.0, 6: 2.0, 7: 1.0})
    # with n_best=1 only start 3 and end 5 are candidates
    assert window_candidates(start, end, offsets, n_best=1) == [(6.0, 0, 16)]
    best = nbest_answers([{"id": "q", "context": CONTEXT}], [{"example_index": 0, "offset_mapping": offsets}],
                         [start], [end], n_best=3)["q"]
    assert [b["text"] for b in best] == ["alpha beta gamma", "alpha beta gamma delta", "beta gamma"]
    assert [b["score"] for b in best] == [6.0, 5.0, 5.0]


def test_the_answer_can_come_from_the_second_window():
    # two overlapping windows of one example: words 0-2, then words 2-4
    first, second = window([0, 1, 2]), window([2, 3, 4])
    features = [{"example_index": 0, "offset_mapping": first}, {"example_index": 0, "offset_mapping": second}]
    starts = [logits(len(first), {3: 1.0}), logits(len(second), {4: 4.0})]  # "delta" in window 2
    ends = [logits(len(first), {3: 1.0}), logits(len(second), {5: 4.0})]  # "epsilon" in window 2
    assert postprocess_qa_predictions([{"id": "q", "context": CONTEXT}], features, starts, ends) == \
        {"q": "delta epsilon"}


def test_no_valid_span_gives_an_empty_answer_and_every_example_is_answered():
    offsets = [None, None, None]
    examples = [{"id": "a", "context": CONTEXT}, {"id": "b", "context": CONTEXT}]
    answers = postprocess_qa_predictions(examples, [{"example_index": 0, "offset_mapping": offsets}],
                                         [np.zeros(3)], [np.zeros(3)])
    assert answers == {"a": "", "b": ""}


def test_padding_beyond_the_offsets_is_ignored():
    offsets = window([0])
    start = np.concatenate([logits(len(offsets), {3: 1.0}), [50.0, 50.0]])  # padded positions
    end = np.concatenate([logits(len(offsets), {3: 1.0}), [50.0, 50.0]])
    assert postprocess_qa_predictions([{"id": "q", "context": CONTEXT}],
                                      [{"example_index": 0, "offset_mapping": offsets}],
                                      [start], [end]) == {"q": "alpha"}


# ---------------------------------------------------------------- QA training targets


def test_answer_token_span_inside_and_outside_the_window():
    # [CLS] q [SEP] alpha beta gamma [SEP]; sequence ids mark the context with 1
    offsets = [(0, 0), (0, 1), (0, 0), (0, 5), (6, 10), (11, 16), (0, 0)]
    sequence_ids = [None, 0, None, 1, 1, 1, None]
    assert answer_token_span(offsets, sequence_ids, 6, 16, cls_index=0) == (4, 5)  # "beta gamma"
    assert answer_token_span(offsets, sequence_ids, 0, 5, cls_index=0) == (3, 3)  # "alpha"
    # "delta" (17-22) is beyond this window: the target is CLS
    assert answer_token_span(offsets, sequence_ids, 17, 22, cls_index=0) == (0, 0)
    # an answer only partly inside the window is also CLS
    assert answer_token_span(offsets, sequence_ids, 11, 22, cls_index=0) == (0, 0)


def test_answer_inside_a_sub_token_word():
    # context "hyperparathyroidism x": one word in three sub-tokens
    offsets = [(0, 0), (0, 1), (0, 0), (0, 5), (5, 11), (11, 19), (20, 21), (0, 0)]
    sequence_ids = [None, 0, None, 1, 1, 1, 1, None]
    assert answer_token_span(offsets, sequence_ids, 0, 19, cls_index=0) == (3, 5)


# ---------------------------------------------------------------- token classification


def test_label_on_the_first_sub_token_only():
    # [CLS] brca1 -> br ##ca ##1, "is", "secreted" -> se ##creted, [SEP]
    word_ids = [None, 0, 0, 0, 1, 2, 2, None]
    assert first_subtoken_labels(word_ids, [7, 8, 9]) == [IGNORE, 7, IGNORE, IGNORE, 8, 9, IGNORE, IGNORE]
    assert first_subtoken_positions(word_ids) == {0: 1, 1: 4, 2: 5}


def test_words_cut_by_truncation_have_no_position():
    word_ids = [None, 0, 1, 1, None]  # word 2 did not fit
    assert first_subtoken_labels(word_ids, [1, 2, 3]) == [IGNORE, 1, 2, IGNORE, IGNORE]
    assert 2 not in first_subtoken_positions(word_ids)


# ---------------------------------------------------------------- settings


def coerce(key: str, value, source: str):
    return settings.coerce(FinetuneConfig, key, value, source)


def test_settings_are_typed_by_their_field():
    assert coerce("lr", "2e-5", "t") == 2e-5
    assert coerce("epochs", "3", "t") == 3.0
    assert coerce("batch_size", "16", "t") == 16
    assert coerce("max_steps", "1e3", "t") == 1000
    assert coerce("save_model", "false", "t") is False
    assert coerce("select_best_on_dev", "yes", "t") is True
    assert coerce("dataset", "NCBI-disease", "t") == "NCBI-disease"
    for key, bad in [("batch_size", "2.5"), ("lr", "fast"), ("save_model", "maybe"), ("batch_size", True)]:
        with pytest.raises(ConfigError, match=key):
            coerce(key, bad, "t")
    with pytest.raises(ConfigError, match="valid settings: task, model"):
        coerce("learning_rate", "1e-5", "t")


def plan(num_batches: int, **values) -> tuple[int, int]:
    config = FinetuneConfig(**values)
    return plan_steps(num_batches, grad_accum_steps=config.grad_accum_steps, epochs=config.epochs,
                      max_steps=config.max_steps, warmup_ratio=config.warmup_ratio, warmup_steps=config.warmup_steps)


def test_step_plan():
    assert plan(5, epochs=2, grad_accum_steps=2, warmup_ratio=0.1) == (6, 1)  # 3 updates per epoch (the last with one batch)
    assert plan(5, epochs=1, max_steps=4, warmup_steps=10) == (4, 4)
    assert plan(10, epochs=0.5) == (5, 0)


RUN = {"model": "m", "data": "d/NCBI-disease_hf", "out": "o"}


def test_resolve_fills_the_task_defaults_without_building_a_task():
    config = resolve(FinetuneConfig(task="qa", **RUN))
    assert (config.max_length, config.metric, config.dataset) == (384, "squad", "NCBI-disease")
    assert resolve(FinetuneConfig(task="tokcls", **RUN)).max_length == 512


@pytest.mark.parametrize("values, message", [
    ({"task": ""}, "task must be one of seqcls, tokcls, qa, mc"),
    ({"task": "mc", "out": ""}, "out is not set"),
    ({"task": "mc", "precision": "fp8"}, "precision must be one of auto, fp32, bf16, fp16"),
    ({"task": "mc", "batch_size": 0}, "batch_size must be at least 1"),
    ({"task": "mc", "lr": 0.0}, "lr must be above 0"),
    ({"task": "mc", "epochs": -1.0}, "epochs must be at least 0"),
    ({"task": "mc", "epochs": 0.0}, "training needs epochs > 0 or max_steps > 0"),
    ({"task": "mc", "device": "gpu"}, "device must be auto, cpu, cuda or cuda:N"),
    ({"task": "mc", "metric": "pearsonr"}, "metric 'pearsonr' is not one for mc"),
    ({"task": "qa", "max_length": 64, "doc_stride": 61}, "doc_stride must be between 1 and max_length - 4"),
    ({"task": "qa", "doc_stride": 381}, r"max_length=384\)"),
])
def test_bad_combinations_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        resolve(FinetuneConfig(**{**RUN, **values}))


def test_eval_only_needs_no_epochs_and_a_task_error_is_a_config_error():
    assert resolve(FinetuneConfig(task="mc", epochs=0, eval_only=True, **RUN)).eval_only
    assert issubclass(TaskSetupError, ConfigError)
    with pytest.raises(ConfigError, match="metric 'hoc' is not one for tokcls"):
        make_task("tokcls", max_length=16, metric="hoc", model="m")


def test_the_old_name_of_max_length_is_explained():
    with pytest.raises(ConfigError, match="'max_seq_length' is now called 'max_length'"):
        settings.parse_overrides(FinetuneConfig, ["max_seq_length=128"])


def test_weight_decay_skips_the_same_parameters_as_the_name_rule():
    """``optim.adamw`` decays matrices only (ndim >= 2); for a BERT with a classification head
    that is the set the HF Trainer's name rule (no decay on biases and LayerNorm weights) chose."""
    from transformers import AutoModelForSequenceClassification, BertConfig

    from linkbert.optim import adamw

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=3)
    model = AutoModelForSequenceClassification.from_config(config)
    by_name = {id(p) for name, p in model.named_parameters()
               if not (name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name)}
    decay, no_decay = adamw(model, lr=1e-3, weight_decay=0.01).param_groups
    assert {id(p) for p in decay["params"]} == by_name and decay["weight_decay"] == 0.01
    assert no_decay["weight_decay"] == 0.0 and no_decay["params"]
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_subsets_are_random_in_file_order_and_fixed():
    split = Split("train", "train.json", [{"id": i} for i in range(100)], list(range(1, 101)))
    subset = split.subset(10, seed=0)
    ids = [r["id"] for r in subset.records]
    assert len(ids) == 10 and ids == sorted(ids) and ids != list(range(10))
    assert subset.lines == [i + 1 for i in ids]
    assert [r["id"] for r in split.subset(10, seed=0).records] == ids
    assert split.subset(-1) is split and split.subset(500) is split
