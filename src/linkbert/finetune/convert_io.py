"""Reading the raw files of ``linkbert convert`` and writing the released JSON-lines format:
lines, tab-separated rows and JSON with errors that name the file and line, and the split a file
holds."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from linkbert.errors import BadInput, ConfigError

SPLITS = ("train", "dev", "test")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline); gzip when the name ends in .gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    yield number, raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise BadInput(path, f"line {number}", "invalid_utf8", "not UTF-8 text") from None
    except FileNotFoundError:
        raise BadInput(path, "", "missing_file", "no such file", fatal=True) from None
    except (OSError, EOFError) as e:  # a damaged gzip stream
        raise BadInput(path, "", "truncated_file", str(e), fatal=True) from None


def tsv_rows(path: Path, n_fields: int, headers: set[tuple[str, ...]]) -> Iterator[tuple[int, list[str]]]:
    """Rows of a tab-separated file (no quoting: quotes are text), header row skipped."""
    for number, line in iter_lines(path):
        fields = line.split("\t")
        if number == 1 and tuple(fields) in headers:
            continue
        if len(fields) != n_fields:
            raise BadInput(path, f"line {number}", "wrong_columns",
                           f"expected {n_fields} tab-separated fields, got {len(fields)}")
        yield number, fields


def json_line(path: Path, number: int, line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise BadInput(path, f"line {number}", "malformed_json", e.msg) from None


def require(record: dict, name: str, kind: type, path: Path, where: str):
    if not isinstance(record, dict) or not isinstance(record.get(name), kind):
        raise BadInput(path, where, "missing_field", f"expected a field {name!r} of type {kind.__name__}")
    return record[name]


def nonempty(records: list[dict], path: Path) -> list[dict]:
    if not records:
        raise BadInput(path, "", "empty_split", "no examples")
    return records


def check_label(label: str, allowed: frozenset, path: Path, number: int) -> str:
    if label not in allowed:
        raise BadInput(path, f"line {number}", "unknown_label",
                       f"label {label!r} is not one of {', '.join(sorted(allowed))}")
    return label


def split_from_name(path: Path, split: str | None, choices=SPLITS) -> str:
    if split:
        return split
    words = re.split(r"[^a-z]+", path.name.lower())
    matches = [choice for choice in choices if choice in words]
    if len(matches) != 1:
        raise ConfigError(f"{path}: cannot tell the split from the file name; give --split")
    return matches[0]


def write_jsonl(records: Iterable[dict], path: Path) -> int:
    """One ``json.dumps`` line per record, as the released preprocessing printed them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
            count += 1
    return count
