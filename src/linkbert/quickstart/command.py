"""``linkbert quickstart``: its arguments (every ``QuickstartConfig`` setting, a ``--flag``) and its
exit status: 0, or 1 when pretraining fails (a non-finite loss: the machine's or the run's, not
the user's mistake); ``linkbert.cli`` reports a user's mistake as one line and status 2."""

from __future__ import annotations

import argparse
import logging
import sys

from linkbert import settings
from linkbert.quickstart.config import QuickstartConfig
from linkbert.quickstart.pipeline import TrainingFailed
from linkbert.quickstart.stages import run


def configure(parser: argparse.ArgumentParser) -> None:
    settings.add_arguments(parser, QuickstartConfig)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    from transformers.utils import logging as transformers_logging

    # the fine-tuning stage loads encoders into classifiers on purpose: the "missing classifier /
    # unexpected MLM head" load report is expected here and would drown the stage lines
    transformers_logging.set_verbosity_error()
    config = settings.from_arguments(QuickstartConfig, args)
    try:
        run(config)
    except TrainingFailed as e:  # not the user's mistake: one line, exit status 1, as `linkbert pretrain`
        print(f"linkbert quickstart: error: {e}", file=sys.stderr)
        return 1
    return 0
