"""A rank of ``linkbert pretrain`` with a fault of the test's choosing: torchrun runs this file in
place of ``-m linkbert.cli`` (``pretrain_helpers.start_torchrun(..., faults=...)``). The faults,
read from the environment, apply to one rank:

* ``LINKBERT_TEST_FULL_DISK=RANK``: that rank's checkpoint writes fail as on a full disk (ENOSPC
  writing ``trainer.pt``), the moment of the first failure written to ``$LINKBERT_TEST_FAILED_AT``;
* ``LINKBERT_TEST_ARGS=RANK WORDS``: that rank's command line ends with WORDS (``--data OTHER``,
  ``lr=0.1``: later words win), as if its node were handed other data or settings;
* ``LINKBERT_TEST_OWN_NODE=RANK``: that rank is the first of a node of its own (``LOCAL_RANK`` 0).
"""

import errno
import os
import shlex
import sys
import time
from pathlib import Path

from linkbert import checkpoint
from linkbert.cli import main

rank = os.environ.get("RANK", "0")
if os.environ.get("LINKBERT_TEST_FULL_DISK") == rank:
    def full_disk(value, path):
        failed_at = Path(os.environ["LINKBERT_TEST_FAILED_AT"])
        if not failed_at.exists():
            failed_at.write_text(str(time.time()))
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    checkpoint.save_torch = full_disk
if os.environ.get("LINKBERT_TEST_OWN_NODE") == rank:
    os.environ["LOCAL_RANK"] = "0"
extra = os.environ.get("LINKBERT_TEST_ARGS", "").split(" ", 1)
if extra[0] == rank and len(extra) == 2:
    sys.argv += shlex.split(extra[1])
sys.exit(main())
