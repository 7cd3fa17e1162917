"""Writing outputs so that a reader never sees half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: Path, value, indent: int = 1) -> None:
    """``value`` as JSON (UTF-8, non-ASCII kept), written via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=indent, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, records) -> None:
    """One JSON object per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def fsync_folder(folder: Path) -> None:
    """Flush every file of ``folder`` to disk (before a rename publishes it)."""
    for path in Path(folder).iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
