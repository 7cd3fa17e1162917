"""Checkpoints: written atomically, the newest found, old ones pruned, everything loaded back."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForMaskedLM

from linkbert import checkpoint


class _Tokenizer:
    def save_pretrained(self, folder):
        (folder / "tokenizer.json").write_text("{}")


def _model(seed: int):
    torch.manual_seed(seed)
    return BertForMaskedLM(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=16))


def test_save_latest_prune_and_load(tmp_path):
    model = _model(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    optimizer.step()
    torch.manual_seed(7)
    for step in (2, 4, 6):
        path = checkpoint.save(tmp_path, step, model=model, tokenizer=_Tokenizer(),
                               trainer={"optimizer": optimizer.state_dict(), **checkpoint.rng_state()},
                               state={"history": {"tokens": step}}, keep=2)
    assert path.name == "step-00000006" and checkpoint.latest(tmp_path) == path
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == ["step-00000004", "step-00000006"]
    expected_draw = torch.rand(3)

    other = _model(1)
    trainer, state = checkpoint.load(path, other)
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert state == {"step": 6, "history": {"tokens": 6}}
    restored = torch.optim.AdamW(other.parameters(), lr=0.1)
    restored.load_state_dict(trainer["optimizer"])
    assert restored.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    checkpoint.set_rng_state(trainer)
    assert torch.equal(torch.rand(3), expected_draw)


def test_an_unfinished_save_is_not_the_latest(tmp_path):
    model = _model(0)
    first = checkpoint.save(tmp_path, 1, model=model, tokenizer=_Tokenizer(), trainer={}, state={}, keep=3)
    (tmp_path / "checkpoints" / ".tmp-step-00000002").mkdir()  # a save killed half-way
    assert checkpoint.latest(tmp_path) == first
    assert checkpoint.latest(tmp_path / "elsewhere") is None
