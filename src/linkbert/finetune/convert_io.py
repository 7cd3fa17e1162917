"""Reading the raw files of ``linkbert convert`` and writing the released JSON-lines format:
lines, tab-separated rows and JSON with errors that name the file and line, and the split a file
holds.

Raw files are read within bounds, whatever they hold: a line of at most
:data:`MAX_RECORD_BYTES` (a small gzip can hold a line of gigabytes, which would otherwise be
read whole, then decoded and parsed: three copies), a whole-file JSON document (SQuAD, a
HotpotQA list, PubMedQA) of at most :data:`MAX_FILE_BYTES` once decompressed. The outputs are
written beside their final names and renamed in together (``files.replacing``), never over an
input, never over an earlier output unless asked."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from linkbert.errors import BadInput, ConfigError
from linkbert.json_input import decode, loads

SPLITS = ("train", "dev", "test")
# the most bytes of one line (a JSON-lines record, a tsv row): MRQA's longest paragraphs are a few MB
MAX_RECORD_BYTES = 64 << 20
# the most bytes of a whole-file JSON document once decompressed: HotpotQA's train list is 566 MB
MAX_FILE_BYTES = 2 << 30


@contextlib.contextmanager
def _reading(path: Path):
    """The file opened for reading (gzip when its name ends in .gz), its errors named."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            yield f
    except FileNotFoundError:
        raise BadInput(path, "", "missing_file", "no such file", fatal=True) from None
    except IsADirectoryError:
        raise BadInput(path, "", "not_a_file", "is a folder: give the file", fatal=True) from None
    except (OSError, EOFError) as e:  # a damaged gzip stream
        raise BadInput(path, "", "truncated_file", str(e), fatal=True) from None


def iter_lines(path: Path, limit: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline); gzip when the name ends in .gz. A line
    longer than ``limit`` bytes is a ``BadInput`` naming it, found without reading it whole."""
    with _reading(path) as f:
        number = 0
        while raw := f.readline(limit + 1):
            number += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                raise BadInput(path, f"line {number}", "record_too_large",
                               f"longer than {limit:,} bytes: not a line of this format (a damaged or hostile "
                               "file?)")
            yield number, decode(raw, path, f"line {number}").rstrip("\r\n")


def read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The whole (decompressed) file as UTF-8 text, at most ``limit`` bytes."""
    with _reading(path) as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise BadInput(path, "", "file_too_large", f"more than {limit:,} bytes once decompressed")
    return decode(raw, path)


def head_text(path: Path, size: int = 1 << 16) -> str:
    """The (decompressed) file's first ``size`` bytes as text, a character cut at the end dropped."""
    with _reading(path) as f:
        return f.read(size).decode("utf-8", "ignore")


def read_json(path: Path):
    """A whole-file JSON document (:func:`read_text`), parsed; errors name the file."""
    return loads(read_text(path), path)


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
    return loads(line, path, f"line {number}")


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


def check_outputs(outputs: Iterable[Path], inputs: Iterable[Path], overwrite: bool) -> None:
    """Refuse to write over an input (whatever the flags: the conversion would destroy what it
    read) or, without ``overwrite``, over an earlier output; a ``ConfigError`` naming the file."""
    inputs = [Path(p) for p in inputs if p]
    for path in outputs:
        for source in inputs:
            if path.resolve() == source.resolve() or (path.exists() and source.exists()
                                                       and os.path.samefile(path, source)):
                raise ConfigError(f"{path} is the input {source}: converting would replace what it reads; "
                                  "choose another OUT")
        if path.exists() and not overwrite:
            raise ConfigError(f"{path} exists (an earlier conversion?): give --overwrite to replace it, or "
                              "choose another OUT")


def write_jsonl(records: Iterable[dict], path: Path) -> int:
    """One ``json.dumps`` line per record, as the released preprocessing printed them."""
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
            count += 1
    return count
