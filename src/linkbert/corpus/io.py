"""Opening corpus files: plain, gzip or bzip2, with errors that name the file."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from linkbert.errors import BadInput


def require_path(path: str | os.PathLike, what: str = "input") -> Path:
    """``path`` as a Path, or a clear error if it does not exist."""
    p = Path(path)
    if not p.exists():
        raise BadInput(str(p), "", "missing_path", f"{what} does not exist", fatal=True)
    return p


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a file for streaming, decompressing ``.gz`` and ``.bz2`` by their suffix."""
    p = require_path(path)
    if p.is_dir():
        raise BadInput(str(p), "", "not_a_file", "expected a file, found a folder", fatal=True)
    if p.suffix == ".gz":
        return gzip.open(p, "rb")
    if p.suffix == ".bz2":
        return bz2.open(p, "rb")
    return open(p, "rb")


@contextlib.contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Turn the decompressors' errors about a damaged file into a ``BadInput`` naming it.

    gzip and bz2 raise ``EOFError`` when a file ends early and ``OSError``/``zlib.error`` when
    its bytes are not a valid stream; both mean the rest of the file cannot be read.
    """
    try:
        yield
    except EOFError as e:
        raise BadInput(str(path), "", "truncated_file",
                       f"the file ends early ({e}); it was probably cut off while copying or downloading",
                       fatal=True) from e
    except (gzip.BadGzipFile, zlib.error) as e:
        raise BadInput(str(path), "", "corrupt_file", f"not a valid compressed stream ({e})", fatal=True) from e
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise BadInput(str(path), "", "corrupt_file", f"cannot read the file ({e})", fatal=True) from e


def decode_utf8(raw: bytes, path: str, location: str) -> str:
    """``raw`` as UTF-8, or a ``BadInput`` saying where the invalid bytes are."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(path, location, "invalid_utf8",
                       f"invalid UTF-8 at byte {e.start}: {raw[max(0, e.start - 10):e.start + 10]!r}") from e
