"""What the pretraining model needs of an architecture (model/heads.py) and the presets."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, DistilBertConfig, ModernBertConfig, RobertaConfig

from linkbert.errors import ConfigError
from linkbert.model.heads import classification_stats, has_pooler, masked_lm_class, masked_rows, max_input_length
from linkbert.model.presets import preset_config
from linkbert.objectives import IGNORE_INDEX


def test_static_gather_reads_the_same_rows_as_the_boolean_one():
    hidden = torch.randn(3, 10, 4)
    labels = torch.full((3, 10), IGNORE_INDEX)
    labels[0, [1, 4, 7]] = torch.tensor([5, 6, 7])
    labels[2, [0, 9]] = torch.tensor([8, 9])
    rows, targets = masked_rows(hidden, labels, 0)
    fixed_rows, fixed_targets = masked_rows(hidden, labels, 4)
    assert fixed_rows.shape == (12, 4) and fixed_targets.shape == (12,)
    keep = fixed_targets != IGNORE_INDEX
    assert torch.equal(fixed_targets[keep], targets) and torch.equal(fixed_rows[keep], rows)


def test_classification_stats_on_hand_made_logits():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2, 2, IGNORE_INDEX])
    loss_sum, count, correct = classification_stats(logits, labels)
    expected = (-torch.log_softmax(logits[:3], 1)[torch.arange(3), labels[:3]]).sum()
    assert torch.allclose(loss_sum, expected)
    assert count == 3 and correct == 2


def test_roberta_inputs_stop_two_positions_before_its_table_ends():
    assert max_input_length(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert max_input_length(BertConfig(max_position_embeddings=512)) == 512


def test_which_architectures_have_a_pooler_and_a_masked_lm_class():
    assert has_pooler(BertConfig()) and has_pooler(RobertaConfig())
    assert not has_pooler(ModernBertConfig()) and not has_pooler(DistilBertConfig())
    assert masked_lm_class(RobertaConfig()).__name__ == "RobertaForMaskedLM"
    assert masked_lm_class(BertConfig()).base_model_prefix == "bert"


def test_presets():
    config = preset_config("tiny", 30522)
    assert (config.num_hidden_layers, config.hidden_size, config._attn_implementation) == (2, 128, "sdpa")
    assert preset_config("tiny", 100, hidden_dropout_prob=0.0).hidden_dropout_prob == 0.0
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("huge", 30522)


@pytest.mark.parametrize("chunk_rows", [4, 7, 64])
def test_the_chunked_loss_is_the_plain_one(chunk_rows):
    """Loss sum, count, correct and every gradient of ``chunked_classification_stats`` against
    cross-entropy of the whole logits (float32: the same up to summation order), ignored rows
    included, scaled as a trainer scales it."""
    from linkbert.model.heads import chunked_classification_stats

    g = torch.Generator().manual_seed(0)
    rows = torch.randn(23, 16, generator=g, requires_grad=True)
    decoder = torch.nn.Linear(16, 50)
    labels = torch.randint(0, 50, (23,), generator=g)
    labels[::5] = IGNORE_INDEX
    plain = classification_stats(decoder(rows), labels)
    (plain[0] / 7).backward()
    expected = [t.grad.clone() for t in (rows, decoder.weight, decoder.bias)]
    for t in (rows, decoder.weight, decoder.bias):
        t.grad = None
    chunked = chunked_classification_stats(rows, decoder.weight, decoder.bias, labels, chunk_rows=chunk_rows)
    (chunked[0] / 7).backward()
    torch.testing.assert_close(chunked[0], plain[0], rtol=1e-6, atol=1e-5)
    assert chunked[1:] == plain[1:] and chunked[1].dtype == chunked[2].dtype == torch.long
    for got, want in zip((rows.grad, decoder.weight.grad, decoder.bias.grad), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    with torch.no_grad():  # evaluation: no gradient kept
        assert chunked_classification_stats(rows, decoder.weight, decoder.bias, labels)[1:] == plain[1:]


def test_the_chunked_loss_under_bf16_autocast_is_cross_entropy_of_the_bf16_logits():
    from linkbert.model.heads import chunked_classification_stats

    g = torch.Generator().manual_seed(1)
    rows, weight, bias = torch.randn(40, 32, generator=g), torch.randn(70, 32, generator=g), torch.randn(70, generator=g)
    labels = torch.randint(0, 70, (40,), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        chunked = chunked_classification_stats(rows, weight, bias, labels, chunk_rows=16)
        plain = classification_stats(torch.nn.functional.linear(rows, weight, bias), labels)
    torch.testing.assert_close(chunked[0], plain[0], rtol=1e-5, atol=1e-4)
    assert chunked[1:] == plain[1:]
