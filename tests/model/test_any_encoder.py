"""The device path / any-encoder backend (``model/any_encoder.py``): its losses against the
BERT path's, the static gather, the pair layouts of other tokenizers, and tiny in-process
RoBERTa and ModernBERT checkpoints pretrained, resumed, exported and loaded back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_TEXTS
from safetensors.torch import load_file

from linkbert.collator import PretrainingCollator, pair_arrays
from linkbert.model import any_encoder, init_model
from linkbert.model.any_encoder import EncoderForLinkPretraining, masked_rows
from linkbert.objectives import IGNORE_INDEX

TEXTS = [text + " " + TINY_TEXTS[(i + 1) % 5] for i, text in enumerate(TINY_TEXTS)] * 4


def _batch(vocab_size: int, batch: int = 4, seq: int = 24, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab_size, (batch, seq), generator=g)
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    attention_mask[1, 18:] = 0
    labels = torch.where(torch.rand(batch, seq, generator=g) < 0.2, input_ids, IGNORE_INDEX)
    labels[attention_mask == 0] = IGNORE_INDEX
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, seq // 2:] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
            "labels": labels, "relation_labels": torch.tensor([0, 1, 2, IGNORE_INDEX])[:batch]}


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


def test_the_bert_checkpoint_gives_the_same_mlm_loss_on_both_backends():
    """The device path runs transformers' BertForMaskedLM; the CPU path the written-out BERT:
    with the same weights, the same masked-LM loss and counts."""
    from linkbert.model.modeling import preset_config

    config = preset_config("tiny", vocab_size=120, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    fast = init_model("tiny", vocab_size=120, num_relations=3, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0).eval()
    device_path = any_encoder.from_preset(config, 3).eval()
    device_path.mlm.bert.load_state_dict(fast.bert.state_dict(), strict=False)
    device_path.mlm.cls.load_state_dict(fast.cls.state_dict())
    batch = _batch(120)
    with torch.no_grad():
        a = fast(**batch)
        b = device_path(**batch)
        c = device_path(**batch, max_predictions=8)
    assert int(a.mlm_count) == int(b.mlm_count) == int(c.mlm_count)
    torch.testing.assert_close(b.mlm_loss_sum, a.mlm_loss_sum, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(c.mlm_loss_sum, a.mlm_loss_sum, rtol=1e-4, atol=1e-4)
    assert b.relation_logits.shape == (4, 3) and int(b.relation_count) == 3


def test_the_collator_caps_the_masked_positions_per_sequence():
    pairs_a = [np.arange(10, 60) for _ in range(6)]
    collator = PretrainingCollator(cls_id=2, sep_id=3, pad_id=0, mask_id=4, vocab_size=100, max_length=128,
                                   mlm_probability=0.5, max_predictions=7)
    from linkbert.pairs import Pair

    batch = collator([Pair(a, a[::-1], 0, 0, 1, (0, 0, i)) for i, a in enumerate(pairs_a)])
    per_row = (batch["labels"] != IGNORE_INDEX).sum(1)
    assert per_row.max() == 7 and per_row.min() > 0
    uncapped = PretrainingCollator(cls_id=2, sep_id=3, pad_id=0, mask_id=4, vocab_size=100, max_length=128,
                                   mlm_probability=0.5)([Pair(a, a[::-1], 0, 0, 1, (0, 0, i)) for i, a in enumerate(pairs_a)])
    kept = batch["labels"] != IGNORE_INDEX
    assert torch.equal(batch["labels"][kept], uncapped["labels"][kept])  # a subset of the same selection


def test_roberta_pairs_have_two_separators_between_the_segments():
    ids, types, mask = pair_arrays([np.array([7, 8])], [np.array([9])], cls_id=0, sep_id=2, pad_id=1, max_length=16,
                                   separators_between=2)
    assert ids[0].tolist() == [0, 7, 8, 2, 2, 9, 2]
    assert mask[0].tolist() == [1] * 7


# -- tiny RoBERTa and ModernBERT checkpoints, end to end ---------------------------------------------

def roberta_tokenizer(folder):
    """A byte-level BPE tokenizer in RoBERTa's layout (``<s> A </s></s> B </s>``), trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=260, special_tokens=specials,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                        sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
    tokenizer.save_pretrained(folder)
    return tokenizer


def wordpiece_tokenizer(folder):
    from linkbert.tokenization import train_wordpiece

    tokenizer = train_wordpiece(TEXTS * 10, vocab_size=200)
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_checkpoint(kind: str, folder):
    """A randomly initialised masked-LM checkpoint folder of ``kind`` with its tokenizer."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM, RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    if kind == "roberta":
        tokenizer = roberta_tokenizer(folder)
        config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
                               pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2)
        model = RobertaForMaskedLM(config)
    else:
        tokenizer = wordpiece_tokenizer(folder)
        config = ModernBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                                  pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
                                  sep_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
                                  eos_token_id=tokenizer.sep_token_id, global_attn_every_n_layers=2,
                                  local_attention=16)
        model = ModernBertForMaskedLM(config)
    model.save_pretrained(folder)
    return folder


def test_a_tokenizers_pair_layout_is_read_from_it(tmp_path):
    from linkbert.tokenization import separators_between

    assert separators_between(roberta_tokenizer(tmp_path / "r")) == 2
    assert separators_between(wordpiece_tokenizer(tmp_path / "w")) == 1


def _prepare(tokenizer_dir, out):
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    corpus = out.parent / f"{out.name}.jsonl"
    docs = [{"id": str(i), "title": f"doc {i}", "text": " ".join(TEXTS[(i + j) % len(TEXTS)] for j in range(3)),
             "links": [str((i * 3 + 1) % 24), str((i * 5 + 2) % 24)]} for i in range(24)]
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    prepare(PrepareConfig(format="jsonl", input=str(corpus), tokenizer=str(tokenizer_dir), out=str(out),
                          segment_budget=20, progress=False))
    return out


def _pretrain(data, out, init, extra=()):
    settings = ["preset=tiny", f"init={init}", "max_length=64", "batch_size=8", "warmup_steps=1", "lr=0.003",
                "log_every=1", "save_every=3", "eval_pairs=16", "progress=false", "tensorboard=false",
                "precision=fp32", "heldout_fraction=0.1", "max_predictions=12", *extra]
    result = subprocess.run([sys.executable, "-m", "linkbert.cli", "pretrain", "--data", str(data), "--out", str(out),
                             *settings], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["roberta", "modernbert"])
def test_a_non_bert_checkpoint_pretrains_resumes_exports_and_loads(kind, tmp_path):
    from transformers import AutoModel, AutoModelForMaskedLM

    from linkbert.checkpoint import latest

    init = tiny_checkpoint(kind, tmp_path / "init")
    data = _prepare(init, tmp_path / "prepared")
    _pretrain(data, tmp_path / "straight", init, ["max_steps=6"])
    # the run as a kill after step 3 leaves it: its step-3 checkpoint, no later one, no summary
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    checkpoints = tmp_path / "resumed" / "checkpoints"
    shutil.rmtree(checkpoints / "step-00000006")
    (checkpoints / "latest").write_text("step-00000003")
    (tmp_path / "resumed" / "summary.json").unlink()
    resumed = _pretrain(data, tmp_path / "resumed", init, ["max_steps=6"])
    assert "resumed from" in resumed.stderr
    straight_weights = load_file(latest(tmp_path / "straight") / "model.safetensors")
    resumed_weights = load_file(latest(tmp_path / "resumed") / "model.safetensors")
    assert straight_weights.keys() == resumed_weights.keys()
    assert all(torch.equal(straight_weights[k], resumed_weights[k]) for k in straight_weights)
    lines = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert any(line["kind"] == "eval" and "relation_accuracy" in line for line in lines)

    exported = tmp_path / "exported"
    result = subprocess.run([sys.executable, "-m", "linkbert.cli", "export", str(tmp_path / "straight"), str(exported)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((exported / "config.json").read_text())
    assert config["model_type"] == kind and "linkbert_backend" not in config
    card = (exported / "README.md").read_text()
    assert card.startswith("---\n") and "pipeline_tag: fill-mask" in card and "base_model:" in card

    wrapper = EncoderForLinkPretraining.from_pretrained(latest(tmp_path / "straight")).eval()
    mlm = AutoModelForMaskedLM.from_pretrained(exported).eval()
    encoder = AutoModel.from_pretrained(exported).eval()
    batch = _batch(wrapper.config.vocab_size, seq=20)
    with torch.no_grad():
        hidden, _ = wrapper.encode(batch["input_ids"], attention_mask=batch["attention_mask"])
        loaded = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        logits = mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ours = wrapper.mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(loaded[real], hidden[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits[real], ours[real], rtol=1e-5, atol=1e-5)


def test_the_linkbert_backend_refuses_a_non_bert_checkpoint(tmp_path):
    from linkbert.errors import ConfigError
    from linkbert.model.loading import resolve_backend

    init = tiny_checkpoint("roberta", tmp_path / "init")
    assert resolve_backend("auto", str(init), torch.device("cpu")) == "hf"
    assert resolve_backend("auto", "scratch", torch.device("cpu")) == "linkbert"
    assert resolve_backend("auto", "scratch", torch.device("meta")) == "hf"  # any accelerator
    with pytest.raises(ConfigError, match="model_type 'roberta'"):
        resolve_backend("linkbert", str(init), torch.device("cpu"))


def test_a_checkpoint_of_either_backend_loads_whole_tied_or_not(tmp_path):
    """save_pretrained drops only copies that really share storage; load_checkpoint gives back
    every weight (an untied decoder included) and link prediction reads the relation head."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    from linkbert.link_prediction import relation_scores
    from linkbert.model.loading import load_checkpoint

    for tied in (True, False):
        torch.manual_seed(0)
        config = RobertaConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=40, type_vocab_size=1, pad_token_id=1,
                               tie_word_embeddings=tied)
        model = EncoderForLinkPretraining(RobertaForMaskedLM(config), 3).eval()
        folder = tmp_path / f"tied-{tied}"
        model.save_pretrained(folder)
        assert ("mlm.lm_head.decoder.weight" in load_file(folder / "model.safetensors")) is not tied
        loaded = load_checkpoint(folder)
        assert isinstance(loaded, EncoderForLinkPretraining)
        for name, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[name], value), name
        scores = relation_scores(loaded, [np.array([5, 6])], [np.array([7])], cls_id=0, sep_id=2, pad_id=1,
                                 max_length=16)
        assert scores.shape == (1,) and scores[0] < 0


def test_roberta_inputs_stop_two_positions_before_its_table_ends():
    from transformers import RobertaConfig

    from linkbert.model.any_encoder import max_input_length

    assert max_input_length(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    from transformers import BertConfig

    assert max_input_length(BertConfig(max_position_embeddings=512)) == 512


@pytest.mark.parametrize("kind", ["bert", "roberta", "modernbert"])
@pytest.mark.parametrize("tied", [True, False])
def test_every_trained_parameter_gets_a_gradient(kind, tied):
    """What DistributedDataParallel needs at every step: no trainable parameter outside the
    forward. BERT's and RoBERTa's untied heads keep a ``bias`` the decoder does not use: frozen."""
    from transformers import (BertConfig, BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM, RobertaConfig,
                              RobertaForMaskedLM)

    geometry = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                    tie_word_embeddings=tied)
    mlm = {"bert": lambda: BertForMaskedLM(BertConfig(**geometry)),
           "roberta": lambda: RobertaForMaskedLM(RobertaConfig(**geometry, max_position_embeddings=40, pad_token_id=1)),
           "modernbert": lambda: ModernBertForMaskedLM(ModernBertConfig(
               **geometry, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2))}[kind]()
    model = EncoderForLinkPretraining(mlm, 3)
    batch = _batch(60, batch=2, seq=16)
    batch.pop("token_type_ids", None)
    model(**batch).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ([] if tied or kind == "modernbert" else
                      [{"bert": "mlm.cls.predictions.bias", "roberta": "mlm.lm_head.bias"}[kind]])
