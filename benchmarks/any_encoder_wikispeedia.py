"""LinkBERT's objective on a RoBERTa-shaped and a ModernBERT-shaped encoder, on Wikispeedia, on a CPU.

    LINKBERT_DATA=/path/to/data python benchmarks/any_encoder_wikispeedia.py            # ~15 min, 2 cores
    LINKBERT_DATA=/path/to/data python benchmarks/any_encoder_wikispeedia.py --steps 3 --kinds roberta

For each kind: a tokenizer trained on the Wikispeedia articles (byte-level BPE in RoBERTa's
``<s> A </s></s> B </s>`` layout; WordPiece for ModernBERT), a randomly initialised model of that
architecture saved as a local checkpoint folder (what a user's ``roberta-base`` would be),
``linkbert prepare`` with that tokenizer, ``linkbert pretrain init=FOLDER`` (the ``transformers`` backend,
chosen by ``auto`` for a non-BERT checkpoint) with Wikispeedia's hyperlinks, ``linkbert export``,
and the export loaded by ``AutoModelForMaskedLM`` and ``AutoModel``.

Reported per kind: the MLM loss of the first and last logged steps (it must fall), the held-out
relation accuracy per class (chance 1/3) and MLM accuracy, and the largest difference between
the exported model's and the pretraining checkpoint's outputs. The last line printed is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

def shape(args) -> dict:
    return dict(hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64,
                intermediate_size=4 * args.hidden)


def article_texts(wikispeedia: Path, limit: int) -> list[str]:
    from linkbert.corpus import Document, open_reader

    reader = open_reader("wikispeedia", str(wikispeedia))
    texts = []
    for record in reader.records():
        parsed = reader.parse(record)
        if isinstance(parsed, Document):
            texts.append(parsed.text)
            if len(texts) >= limit:
                break
    return texts


def build_checkpoint(kind: str, texts: list[str], folder: Path, vocab_size: int, geometry: dict,
                     roberta_tokenizer: str = "bpe") -> Path:
    """A tokenizer trained on ``texts`` and a random ``kind`` masked-LM model, saved in ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast, RobertaConfig, \
        RobertaForMaskedLM

    torch.manual_seed(0)
    if kind == "roberta" and roberta_tokenizer == "wordpiece":  # a control: the architecture without its BPE
        from linkbert.tokenization import train_wordpiece

        tokenizer = train_wordpiece(texts, vocab_size=vocab_size)
        model = RobertaForMaskedLM(RobertaConfig(
            vocab_size=len(tokenizer), max_position_embeddings=512 + tokenizer.pad_token_id + 1, type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id, **geometry))
    elif kind == "roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        backend = Tokenizer(models.BPE(unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        backend.decoder = decoders.ByteLevel()
        backend.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                            cls_token="<s>", sep_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                            mask_token="<mask>")
        model = RobertaForMaskedLM(RobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=514,
                                                 type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                                 **geometry))
    else:
        from linkbert.tokenization import train_wordpiece

        tokenizer = train_wordpiece(texts, vocab_size=vocab_size)
        model = ModernBertForMaskedLM(ModernBertConfig(
            vocab_size=len(tokenizer), max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
            cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, global_attn_every_n_layers=2,
            local_attention=64, **geometry))
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def linkbert(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "linkbert.cli", *args], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"linkbert {' '.join(args[:1])} failed:\n{result.stderr[-3000:]}")
    return result


def run_kind(kind: str, wikispeedia: Path, work: Path, args) -> dict:
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM

    from linkbert.checkpoint import latest
    from linkbert.model.pretraining import LinkPretrainingModel

    texts = article_texts(wikispeedia, args.tokenizer_documents)
    init = build_checkpoint(kind, texts, work / f"{kind}-init", args.vocab_size, shape(args), args.roberta_tokenizer)
    prepared, run, exported = work / f"{kind}-prepared", work / f"{kind}-run", work / f"{kind}-exported"
    linkbert("prepare", "--format", "wikispeedia", "--input", str(wikispeedia), "--tokenizer", str(init),
             "--out", str(prepared), "--segment-budget", "62", "--no-progress")
    linkbert("pretrain", "--data", str(prepared), "--out", str(run), f"init={init}", "max_length=128",
             f"max_steps={args.steps}", "batch_size=32", f"warmup_steps={max(1, args.steps // 10)}", f"lr={args.lr}",
             "max_predictions=26", f"log_every={max(1, args.steps // 20)}", f"save_every={args.steps}",
             "eval_pairs=512", "heldout_fraction=0.02", "progress=false", "tracker=none")
    linkbert("export", str(run), str(exported))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [line for line in lines if line["kind"] == "train"]
    summary = json.loads((run / "summary.json").read_text())
    wrapper = LinkPretrainingModel.from_pretrained(latest(run)).eval()
    mlm, encoder = AutoModelForMaskedLM.from_pretrained(exported).eval(), AutoModel.from_pretrained(exported).eval()
    ids = torch.randint(5, wrapper.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hidden, _ = wrapper.encode(ids)
        difference = max(float((encoder(input_ids=ids).last_hidden_state - hidden).abs().max()),
                         float((mlm(input_ids=ids).logits - wrapper.mlm(input_ids=ids).logits).abs().max()))
    evaluation = summary.get("eval") or {}
    return {"architecture": json.loads((exported / "config.json").read_text())["architectures"][0],
            "vocab_size": wrapper.config.vocab_size, "steps": summary["step"],
            "first_mlm_loss": train[0]["mlm_loss"], "last_mlm_loss": train[-1]["mlm_loss"],
            "mean_mlm_loss_first_tenth": sum(t["mlm_loss"] for t in train[:max(1, len(train) // 10)])
            / max(1, len(train) // 10),
            "mean_mlm_loss_last_tenth": sum(t["mlm_loss"] for t in train[-max(1, len(train) // 10):])
            / max(1, len(train) // 10),
            "heldout": evaluation, "export_max_abs_difference": difference,
            "train_seconds": summary.get("train_seconds")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=os.environ.get("LINKBERT_DATA"))
    parser.add_argument("--kinds", default="roberta,modernbert")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256, help="hidden size (heads of 64)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--tokenizer-documents", type=int, default=2000, help="articles the tokenizers train on")
    parser.add_argument("--work", help="keep everything here (default: a temporary folder)")
    parser.add_argument("--roberta-tokenizer", choices=("bpe", "wordpiece"), default="bpe",
                        help="wordpiece: a control, the RoBERTa architecture with ModernBERT's tokenizer")
    args = parser.parse_args(argv)
    if not args.data_root or not (Path(args.data_root) / "wikispeedia").is_dir():
        print("needs the Wikispeedia data: set LINKBERT_DATA or give --data-root", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory(prefix="linkbert-any-encoder-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for kind in args.kinds.split(","):
            results[kind] = result = run_kind(kind, Path(args.data_root) / "wikispeedia", work, args)
            per_class = result["heldout"].get("relation_accuracy_per_class", {})
            print(f"{kind}: {result['architecture']}, {result['steps']} steps: MLM loss {result['first_mlm_loss']:.2f} -> "
                  f"{result['last_mlm_loss']:.2f} (first/last tenth {result['mean_mlm_loss_first_tenth']:.2f} -> "
                  f"{result['mean_mlm_loss_last_tenth']:.2f}); held-out relation accuracy per class {per_class}; "
                  f"export differs by {result['export_max_abs_difference']:.2e}", flush=True)
    results["_meta"] = {"steps": args.steps, "lr": args.lr, "layers": args.layers, "hidden": args.hidden,
                        "vocab_size": args.vocab_size, "roberta_tokenizer": args.roberta_tokenizer}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
