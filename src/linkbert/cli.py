"""The ``linkbert`` command: ``linkbert quickstart | prepare | pretrain | export | finetune | evaluate ...``.

Each subcommand lives in its own module, which defines ``configure(parser)`` (its arguments)
and ``main(args) -> int`` (its exit status). Modules are imported only when their command
runs, so ``linkbert --help`` stays fast and a command's heavy dependencies load only for it.

:func:`main` sets the process up first (``runtime.configure_process``: how OpenMP threads wait,
which libgomp reads once, when torch loads it), then parses and runs the command. A user's
mistake (a ``LinkbertError``: ``BadInput``, a file that is not what it should be;
``ConfigError``, settings that cannot work) or the machine's (a full or read-only disk, a missing
permission: ``OSError``s of ``errors.ENVIRONMENT_ERRORS``, named with their path) is one line on
stderr and exit status 2, never a traceback. ``key=value`` settings may stand anywhere on the
command line.

A reader that stops reading the command's output (``linkbert prepare ... | head``) does not stop
the command: standard output then goes nowhere (:class:`ClosedPipeSafe`) and the work completes,
with the exit status it would have had, rather than a ``BrokenPipeError`` traceback at the
first ``print`` after the reader went.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

# command -> (module, one-line help)
COMMANDS = {
    "quickstart": ("linkbert.quickstart.command", "the whole pipeline on a real linked corpus, in minutes on a "
                   "CPU: prepare, pretrain a fixed number of steps (--baseline bert: BERT too), evaluate, fine-tune a "
                   "document classifier, write an HTML report"),
    "prepare": ("linkbert.prepare.command", "read a linked corpus, build its document graph and tokenized segment store"),
    "pretrain": ("linkbert.pretrain.command", "pretrain on a prepared corpus: masked LM + document relation "
                 "prediction, from scratch or continued from a checkpoint, one CPU to many GPUs (torchrun)"),
    "export": ("linkbert.export", "export a pretraining checkpoint as the transformers model it trained (AutoModel* "
               "load it), with a model card"),
    "finetune": ("linkbert.finetune.command", "fine-tune (or only evaluate) a BERT checkpoint on one downstream "
                 "dataset (seqcls, tokcls, qa, mc), from a recipe of released settings"),
    "convert": ("linkbert.finetune.convert", "convert raw BLURB, MRQA, HotpotQA, MuSiQue, PubMedQA, MedQA or MMLU data "
                "to the JSON-lines files linkbert finetune reads"),
    "evaluate": ("linkbert.evaluate", "score SQuAD predictions, compute a BLURB score, or collect fine-tuning runs "
                 "into BLURB / MRQA / MedQA tables beside the paper's"),
    "experiment": ("linkbert.experiments.command", "run an experiment grid: graph (did the links help on my labelled, "
                   "linked corpus?) or ablation (the paper's link ablations on Wikispeedia)"),
}

SETTING = re.compile(r"[A-Za-z_]\w*=.*", re.DOTALL)  # a key=value word


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkbert", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            importlib.import_module(module_name).configure(command_parser)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The command's arguments; ``key=value`` words after its flags join its ``overrides``
    (argparse takes one run of positionals only)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command)  # configure only the command being run
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and all(SETTING.fullmatch(word) for word in extra):
        args.overrides = [*(args.overrides or []), *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def version() -> str:
    """The installed package's version (the source tree's, when it is run uninstalled)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("linkbert")
    except PackageNotFoundError:
        from linkbert import __version__

        return __version__


class ClosedPipeSafe:
    """Standard output that outlives its reader: once a write or flush finds the pipe closed
    (``BrokenPipeError``), the stream's file descriptor is pointed at ``/dev/null`` (so that
    what is still buffered, and the flush at exit, go nowhere quietly) and everything after is
    dropped. Any other attribute is the wrapped stream's."""

    def __init__(self, stream):
        self._stream = stream
        self.closed_by_reader = False

    def _guarded(self, call, *args):
        if self.closed_by_reader:
            return len(args[0]) if args and call == "write" else None
        try:
            return getattr(self._stream, call)(*args)
        except BrokenPipeError:
            self._to_devnull()
            return len(args[0]) if args and call == "write" else None

    def _to_devnull(self) -> None:
        import os

        self.closed_by_reader = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # a stream without a descriptor (a test's capture)
            pass

    def write(self, text):
        return self._guarded("write", text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        return self._guarded("flush")

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    from linkbert.errors import LinkbertError, describe_os_error, is_environment_error
    from linkbert.runtime import configure_process

    configure_process()
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    stdout, sys.stdout = sys.stdout, ClosedPipeSafe(sys.stdout)
    try:
        return int(module.main(args) or 0)
    except LinkbertError as e:
        print(f"linkbert {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if not is_environment_error(e):
            raise
        print(f"linkbert {args.command}: error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
