"""The quickstart's output folder: its stage folders, and the marker that makes it the
quickstart's to replace. A user's folder is never deleted unasked."""

from __future__ import annotations

from pathlib import Path

from linkbert.errors import ConfigError
from linkbert.files import check_output_folder, write_json

MARKER = ".linkbert-quickstart"
BASELINE_FOLDER = "pretrain-bert"
STAGE_FOLDERS = ("data", "pretrain", BASELINE_FOLDER, "models", "finetune", "work", "report")


def is_quickstart_folder(out: Path) -> bool:
    """Written by the quickstart: its marker, or (before the marker) a finished report."""
    return (out / MARKER).is_file() or (out / "report" / "metrics.json").is_file()


def claim_output_folder(out: Path, *, inputs: list[Path], overwrite: bool) -> None:
    """Check ``out`` before any stage deletes its folders, then mark it as the quickstart's:
    new, empty or a quickstart folder, or any folder with ``overwrite``; never a file, and no
    stage folder may hold an input (the corpus, its edge table: the prepare stage would delete its
    own input)."""
    out = Path(out)
    check_output_folder(out, overwrite=True)
    for stage in STAGE_FOLDERS:
        check_output_folder(out / stage, overwrite=True, inputs=inputs)
    if out.is_dir() and any(out.iterdir()) and not is_quickstart_folder(out) and not overwrite:
        raise ConfigError(f"{out} is not empty and was not written by the quickstart (no {MARKER}): choose a new "
                          f"--out, or give --overwrite to replace its {', '.join(STAGE_FOLDERS)} folders")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MARKER, {"written_by": "linkbert quickstart", "stage_folders": list(STAGE_FOLDERS)})
