"""Rows of one parquet or Arrow IPC stream file, through pyarrow: memory-mapped, only the
columns asked for, a batch at a time sized so that no batch holds much more than one record's
bound, a row larger than the bound a ``BadRecord``, a file that is not one a fatal ``BadInput``.
Read by the parquet reader (``parquet.py``) and by edge tables (``edges.py``).
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Iterator

from linkbert.corpus.io import BadRecord, open_regular, optional_module, require_path, too_large
from linkbert.errors import BadInput

BATCH_ROWS = 1024


def arrow():
    """``(pyarrow, pyarrow.parquet)``; a missing pyarrow is a ConfigError saying what to install."""
    pa = optional_module("pyarrow", "reading parquet and Arrow files")
    import pyarrow.parquet as pq

    return pa, pq


# -- rows of one file -------------------------------------------------------------------------

def table_rows(path, columns: list[str], limit: int, what: str, *, name=None, regular: bool = False,
               required: list[str] | None = None) -> Iterator[tuple[str, dict | BadRecord]]:
    """``(location, row)`` of a parquet file, only ``columns`` (those in ``required``, by default
    all, must exist: else a fatal ``BadInput`` listing the file's columns); a row too large is a
    ``BadRecord``."""
    name = str(name or path)
    return _parquet_rows(_mapped(Path(path), regular, name), columns, limit, what, name,
                         columns if required is None else required)


def arrow_stream_rows(path, columns: list[str], limit: int, what: str, *, name=None, regular: bool = False,
                      required: list[str] | None = None) -> Iterator[tuple[str, dict | BadRecord]]:
    """The same for an Arrow IPC stream file (a ``datasets`` shard)."""
    name = str(name or path)
    return _arrow_rows(_mapped(Path(path), regular, name), columns, limit, what, name,
                       columns if required is None else required)


def _mapped(path: Path, regular: bool, name: str):
    """The file's bytes as a memory-mapped pyarrow buffer (no copy on the heap)."""
    pa, _ = arrow()
    with (open_regular(path) if regular else open(require_path(path), "rb")) as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise BadInput(name, "", "corrupt_file", "an empty file, not parquet or Arrow", fatal=True)
        return pa.py_buffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


def _parquet_rows(buffer, columns, limit, what, name, required):
    pa, pq = arrow()
    try:
        parquet = pq.ParquetFile(pa.BufferReader(buffer))
    except (pa.ArrowException, OSError) as e:
        raise BadInput(name, "", "corrupt_file", f"not a parquet file ({_first_line(e)})", fatal=True) from e
    selected = _select(parquet.schema_arrow.names, columns, required, name, what)
    number = 0
    try:
        for group in range(parquet.num_row_groups):
            meta = parquet.metadata.row_group(group)
            per_row = meta.total_byte_size // max(meta.num_rows, 1)
            size = max(1, min(BATCH_ROWS, limit // max(per_row, 1)))
            for batch in parquet.iter_batches(batch_size=size, row_groups=[group], columns=selected,
                                              use_threads=False):
                yield from _batch_rows(batch, number, limit, name)
                number += batch.num_rows
    except (pa.ArrowException, OSError) as e:
        raise BadInput(name, f"row {number + 1}", "corrupt_file", f"cannot decode the file ({_first_line(e)})",
                       fatal=True) from e


def _arrow_rows(buffer, columns, limit, what, name, required):
    pa, _ = arrow()
    try:
        stream = pa.ipc.open_stream(pa.BufferReader(buffer))
    except (pa.ArrowException, OSError) as e:
        raise BadInput(name, "", "corrupt_file", f"not an Arrow stream file ({_first_line(e)})", fatal=True) from e
    selected = _select(stream.schema.names, columns, required, name, what)
    number = 0
    try:
        for batch in stream:
            batch = batch.select(selected)
            for start in range(0, batch.num_rows, BATCH_ROWS):
                piece = batch.slice(start, BATCH_ROWS)
                yield from _batch_rows(piece, number, limit, name)
                number += piece.num_rows
    except (pa.ArrowException, OSError) as e:
        raise BadInput(name, f"row {number + 1}", "corrupt_file", f"cannot decode the file ({_first_line(e)})",
                       fatal=True) from e


def _select(have: list[str], wanted: list[str], required: list[str], name: str, what: str) -> list[str]:
    missing = [c for c in required if c not in have]
    if missing:
        hint = "--edges-source/--edges-target" if what == "edge table" else "--id-field/--text-field"
        raise BadInput(name, "", "missing_field", f"the {what} has no column {', '.join(map(repr, missing))} "
                                                  f"(columns: {', '.join(have)}); {hint} name them", fatal=True)
    return [c for c in wanted if c in have]


def _batch_rows(batch, first: int, limit: int, name: str) -> Iterator[tuple[str, dict | BadRecord]]:
    """Each row of ``batch`` as a dict, numbered from ``first`` + 1; a row larger than ``limit``
    (as Arrow holds it) as a ``BadRecord`` instead, without converting it."""
    if batch.nbytes <= limit:
        for i, row in enumerate(batch.to_pylist()):
            yield f"row {first + i + 1}", row
        return
    for i in range(batch.num_rows):
        one = batch.slice(i, 1)
        where = f"row {first + i + 1}"
        yield where, too_large(name, where, limit) if one.nbytes > limit else one.to_pylist()[0]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
