"""The CPU kernels against the plain PyTorch computations they replace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from linkbert.model.kernels import (
    TiedWordEmbedding,
    attention,
    dropout,
    linear_cross_entropy,
)


def test_linear_cross_entropy_matches_cross_entropy_over_chunks():
    torch.manual_seed(0)
    x = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(30, 8, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(30, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 30, (50,))
    # 16 rows of 30 float32 logits per chunk -> 3 full chunks and a short one
    loss, correct = linear_cross_entropy(x, weight, bias, labels, chunk_bytes=16 * 30 * 4)
    logits = F.linear(x, weight, bias)
    expected = F.cross_entropy(logits, labels, reduction="sum")
    assert torch.allclose(loss, expected, atol=1e-10)
    assert correct == (logits.argmax(1) == labels).sum()
    got = torch.autograd.grad(loss * 0.3, (x, weight, bias))
    want = torch.autograd.grad(expected * 0.3, (x, weight, bias))
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-10)


@pytest.mark.parametrize("grad", [True, False])
def test_linear_cross_entropy_in_bf16_is_cross_entropy_of_the_bf16_logits(grad):
    """Under autocast the logits are a bf16 matmul, their softmax float32, as autocast's
    ``F.linear`` + ``F.cross_entropy`` do; the same figures with and without a gradient."""
    torch.manual_seed(0)
    x, weight, bias = torch.randn(40, 16), torch.randn(300, 16), torch.randn(300)
    labels = torch.randint(0, 300, (40,))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(grad):
        inputs = [t.clone().requires_grad_(grad) for t in (x, weight, bias)]
        loss, correct = linear_cross_entropy(*inputs, labels, chunk_bytes=7 * 300 * 4)
        logits = F.linear(x, weight, bias)
    assert logits.dtype == torch.bfloat16
    expected = F.cross_entropy(logits.float(), labels, reduction="sum")
    assert torch.allclose(loss, expected, rtol=1e-5)
    assert correct == (logits.float().argmax(1) == labels).sum()


def test_linear_cross_entropy_takes_huge_losses_exactly():
    """A label whose probability underflows float32 (loss above ~100 nats) still gets its loss
    and a finite gradient."""
    x = torch.tensor([[1.0], [1.0]], requires_grad=True)
    weight = torch.tensor([[0.0], [150.0], [-150.0]], requires_grad=True)
    bias = torch.zeros(3, requires_grad=True)
    labels = torch.tensor([2, 1])
    loss, _ = linear_cross_entropy(x, weight, bias, labels)
    expected = F.cross_entropy(F.linear(x, weight, bias), labels, reduction="sum")
    assert expected > 250 and torch.allclose(loss, expected)
    loss.backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(weight.grad).all()


@pytest.mark.parametrize("padding_idx", [0, None])
def test_tied_word_embedding_node_gives_autograds_gradient(padding_idx):
    """One node for the lookup and the decoder's cast: the gradient autograd would give the two uses."""
    torch.manual_seed(0)
    weight = torch.randn(50, 8, requires_grad=True)
    ids = torch.randint(0, 50, (4, 12))
    ids[0, :3] = 0  # padding tokens, and repeated ids
    grad_words, grad_decoder = torch.randn(4, 12, 8), torch.randn(50, 8).bfloat16()
    words, decoder = TiedWordEmbedding.apply(weight, ids, padding_idx, torch.bfloat16)
    assert decoder.dtype == torch.bfloat16 and torch.equal(words, F.embedding(ids, weight))
    (ours,) = torch.autograd.grad([words, decoder], weight, [grad_words, grad_decoder])
    reference = (F.embedding(ids, weight, padding_idx), weight.to(torch.bfloat16))
    (expected,) = torch.autograd.grad(reference, weight, [grad_words, grad_decoder])
    assert ours.layout == torch.strided and torch.allclose(ours, expected, atol=1e-6)


def test_dropout_keeps_the_rate_and_scale():
    torch.manual_seed(0)
    x = torch.ones(200, 500)
    y = dropout(x, 0.1, training=True)
    assert abs((y == 0).float().mean().item() - 0.1) < 0.005
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.9))
    assert dropout(x, 0.1, training=False) is x
    x.requires_grad_()
    y = dropout(x, 0.5, training=True)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2)


def test_dropout_masks_follow_torchs_seed():
    x = torch.ones(64, 64)
    masks = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        masks.append([dropout(x, 0.1, training=True) == 0 for _ in range(2)])
    assert all(torch.equal(a, b) for a, b in zip(masks[0], masks[1]))  # same seed, same masks
    assert not torch.equal(masks[0][0], masks[0][1])  # successive calls differ
    assert not torch.equal(masks[0][0], masks[2][0])  # another seed differs


@pytest.mark.parametrize("masked", [True, False])
def test_attention_with_tiny_dropout_matches_sdpa(masked):
    torch.manual_seed(0)
    # permuted views of one projection, as the encoder makes them
    qkv = torch.randn(2, 10, 3, 2, 8).permute(2, 0, 3, 1, 4).requires_grad_()
    mask = torch.ones(2, 1, 1, 10, dtype=torch.bool)
    mask[1, ..., 7:] = False
    mask = mask if masked else None
    ours = attention(*qkv.unbind(0), mask, 1e-9)  # the CPU dropout path, which keeps everything
    (grad_ours,) = torch.autograd.grad(ours.square().sum(), qkv)
    sdpa = F.scaled_dot_product_attention(*qkv.unbind(0), attn_mask=mask)
    (grad_sdpa,) = torch.autograd.grad(sdpa.square().sum(), qkv)
    assert torch.allclose(ours, sdpa, atol=1e-6)
    assert torch.allclose(grad_ours, grad_sdpa, atol=1e-5)
