"""The ``linkbert`` command: ``linkbert quickstart | prepare | pretrain | export | finetune | evaluate ...``.

Each subcommand lives in its own module, which defines ``configure(parser)`` (its arguments)
and ``main(args) -> int`` (its exit status). Modules are imported only when their command
runs, so ``linkbert --help`` stays fast and a command's heavy dependencies load only for it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from linkbert.openmp import configure_waiting

# OpenMP threads spinning or sleeping between operations: a quarter of a small model's step on
# an idle machine, and a stall on a busy one (see linkbert/openmp.py). libgomp reads the setting
# when torch loads it, so it is chosen here, before any command imports torch.
OPENMP_WAITING = configure_waiting()

from linkbert.config import ConfigError
from linkbert.errors import BadInput

# command -> (module, one-line help)
COMMANDS = {
    "quickstart": ("linkbert.quickstart", "prepare, pretrain, evaluate and fine-tune on a real corpus; write a report"),
    "prepare": ("linkbert.prepare", "read a linked corpus, build its document graph and tokenized segment store"),
    "pretrain": ("linkbert.pretrain", "pretrain a LinkBERT model on a prepared corpus (MLM + document relation prediction)"),
    "export": ("linkbert.export", "export a pretraining checkpoint as a plain BERT folder (AutoModel loads it)"),
    "finetune": ("linkbert.finetune.command", "fine-tune a BERT checkpoint on a downstream task"),
    "evaluate": ("linkbert.evaluate", "score predictions and collect runs into BLURB / MRQA tables"),
    "experiment": ("linkbert.experiments", "run an experiment grid (ablation: the paper's link ablations on Wikispeedia)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkbert", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            importlib.import_module(module_name).configure(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    # configure only the command being run: the others' modules are not imported
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(args) or 0)
    except (BadInput, ConfigError) as e:
        print(f"linkbert {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
