"""``linkbert pretrain``: masked LM + document relation prediction on a prepared corpus.

    linkbert pretrain --config configs/pretrain/mini.yaml --data prepared/wikispeedia --out runs/mini \\
        max_steps=200 budget_minutes=10 seed=1
    torchrun --nproc_per_node 8 -m linkbert.cli pretrain --config configs/pretrain/base.yaml --data ... --out ...

Settings come, later ones winning, from ``PretrainConfig``'s defaults, the ``--config`` YAML file,
``--flags`` and ``key=value`` words (``settings.add_arguments``). Running the same command again
resumes the run (``run.py``).

Exit status: 0 at ``max_steps`` or the budget's end; 1 when training cannot go on (a non-finite
loss); 2 for a user's mistake or the machine's fault (one line); :data:`STOPPED` (75) after a
stop signal (SIGTERM, SIGUSR1), once the step was finished and saved: sysexits' EX_TEMPFAIL, "try
again later": run the same command again to continue. Distinct from 0, 1, 2 and from a death by
a signal (128 + its number: no checkpoint of that step), so a job script can requeue on it.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from linkbert import lifetime, runtime, settings
from linkbert.errors import LinkbertError, is_environment_error
from linkbert.pretrain.run import Run, TrainingFailed
from linkbert.pretrain.settings import PretrainConfig

STOPPED = 75  # the run stopped on a signal, its step saved: sysexits.h's EX_TEMPFAIL


def configure(parser) -> None:
    parser.add_argument("--data", required=True, help="prepared corpus folder (linkbert prepare --out)")
    parser.add_argument("--out", required=True,
                        help="run folder: checkpoints, metrics.jsonl, config.yaml; resumed if it has a checkpoint")
    settings.add_arguments(parser, PretrainConfig, overrides=True, file_flag="--config",
                           file_help="YAML settings (configs/pretrain/<preset>.yaml); flags and key=value win over it")


def main(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    config = settings.from_arguments(PretrainConfig, args)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    run = None  # referenced until the process ends: runtime.end_process
    try:
        run = Run(config, args.data, args.out)
        summary = run.train(stop_signals=True)
    except TrainingFailed as e:
        if main_rank:
            print(f"linkbert pretrain: error: {e}", file=sys.stderr)
        code = 1
    except Exception as e:  # a user's mistake or the machine's fault: the CLI prints it, unless this process ends here
        if not (isinstance(e, LinkbertError) or is_environment_error(e)) or not runtime.ends_here():
            raise
        print(f"linkbert pretrain: error: {runtime.describe_failure(e)}", file=sys.stderr)
        code = 2
    else:
        if main_rank:
            print(json.dumps(summary, indent=2))
        code = 0
        if summary["stop_reason"] in lifetime.STOP_SIGNALS:
            if main_rank:
                print(f"linkbert pretrain: stopped by {summary['stop_reason']} after step {summary['step']}, saved in "
                      f"{summary['checkpoint']}: run the same command again to continue", file=sys.stderr)
            code = STOPPED
    runtime.end_process(code)  # several ranks: the process ends here
    return code
