"""What a pretraining run writes as it goes: ``config.yaml`` (the settings it uses),
``metrics.jsonl`` (one JSON line per logged step and evaluation) and the tracker's scalars
(``linkbert.tracking``: TensorBoard, W&B or none).

Only the main rank writes; a disk error names the file being written. A failed write is kept
(``failure``), not raised: raised on rank 0 alone it would leave the other ranks waiting in their
next collective; the run raises it on every rank together (``run.py``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from linkbert.files import naming, write_text

log = logging.getLogger("linkbert.pretrain")


class RunLog:
    """``open()``, then ``record(step, kind, figures)`` as the run goes, then ``close()``."""

    def __init__(self, out: Path, *, enabled: bool, tracker: str):
        self.out, self.enabled, self.tracker_kind = Path(out), enabled, tracker
        self.metrics_file = self.tracker = None
        self.failure: Exception | None = None  # the first write that failed

    def open(self, settings: dict) -> None:
        """Write ``config.yaml`` (what this run uses: a resume's accepted changes included), open
        ``metrics.jsonl`` for appending and start the tracker."""
        if not self.enabled:
            return
        import yaml

        from linkbert.tracking import open_tracker

        self.out.mkdir(parents=True, exist_ok=True)
        write_text(self.out / "config.yaml", yaml.safe_dump(settings, sort_keys=False))
        self.metrics_file = open(self.out / "metrics.jsonl", "a", encoding="utf-8")
        self.tracker = open_tracker(self.tracker_kind, self.out, name=self.out.name, config=settings)

    def record(self, step: int, kind: str, figures: dict) -> None:
        """Append a line (and the scalars); a failure is kept in ``failure``, the first one."""
        if not self.enabled or self.failure is not None:
            return
        try:
            with naming(self.out / "metrics.jsonl"):
                self.metrics_file.write(json.dumps({"step": step, "kind": kind, **figures}) + "\n")
                self.metrics_file.flush()
            self.tracker.log(step, kind, figures)
        except Exception as error:  # noqa: BLE001 -- raised again by the run, on every rank together
            log.error("step %d: cannot write the run's logs: %s", step, error)
            self.failure = error

    def close(self) -> None:
        if self.metrics_file:
            self.metrics_file.close()
        if self.tracker:
            self.tracker.close()
        self.metrics_file = self.tracker = None
