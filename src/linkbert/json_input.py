"""JSON a user gave us (a dataset, predictions, scores, a model's config.json, a prepared corpus's
store.json), read so that whatever is wrong with it is a ``BadInput`` naming the file and where:
not UTF-8, not JSON, nested too deeply for the json module (which raises ``RecursionError`` past
about a thousand levels), or an integer too long for Python to convert (a ``ValueError`` since
Python 3.11's guard against quadratic conversions).

Example::

    >>> load_file("dev.json")["data"]
    >>> loads(line, "train.json", "line 17")
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from linkbert.errors import BadInput

NEWLINE = b"\n"


def loads(text: str, path, where: str = ""):
    """``text`` parsed as JSON; anything the json module cannot read is a ``BadInput`` naming
    ``path`` and ``where`` (a line, a record; empty for a whole file)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        place = where or f"line {e.lineno}"
        raise BadInput(str(path), place, "malformed_json", f"not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise BadInput(str(path), where, "too_deeply_nested",
                       "JSON arrays or objects nested too deeply to read (thousands of levels)") from None
    except ValueError:  # Python refuses to convert integers this long (a denial-of-service guard)
        raise BadInput(str(path), where, "number_too_long",
                       f"an integer with more than {sys.get_int_max_str_digits():,} digits") from None


def load_file(path, *, fatal: bool = True):
    """The JSON document in the file ``path``: a missing file, bytes that are not UTF-8 or text
    that is not JSON are a ``BadInput`` naming it (``fatal``: a missing file ends the reading)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(str(path), "", "missing_file", "no such file", fatal=fatal) from None
    except IsADirectoryError:
        raise BadInput(str(path), "", "not_a_file", "is a folder, not a JSON file", fatal=fatal) from None
    return loads(decode(raw, path), path)


def decode(raw: bytes, path, where: str = "") -> str:
    """``raw`` as UTF-8 text, or a ``BadInput`` saying where the first byte that is not is
    (``where``, else its line)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        place = where or f"line {raw.count(NEWLINE, 0, e.start) + 1}"
        raise BadInput(str(path), place, "invalid_utf8",
                       f"not UTF-8 text (byte 0x{raw[e.start]:02x} at byte {e.start:,})") from None
