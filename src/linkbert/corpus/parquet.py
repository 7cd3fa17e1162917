"""Parquet and Arrow corpora: a parquet file, a folder of them (hive-partitioned ``key=value/``
folders included), or a Hugging Face ``datasets`` folder written by ``save_to_disk``.

One row is one document; which columns hold its id, title, text, links and label is the field
mapping of ``fields.py`` (``--id-field``, ... ; defaults ``id``, ``title``, ``text``, ``links``,
``label``), nested struct fields by dotted path. Links may come from an edge table instead
(``--edges``, ``edges.py``).

* A parquet file is read row group by row group, in batches of at most 1,024 rows (fewer when the
  file's metadata says the rows are large), only the columns the mapping names.
* In a folder, every ``*.parquet`` file below it is read in path order (only regular files inside
  the folder: ``io.folder_files``); a ``key=value`` folder on the way adds ``key`` to its rows when
  they have no such column (``page=1/part-0.parquet`` rows get ``page: "1"``), so a partition can be
  a label (``--label-field page``).
* A ``datasets`` folder (``state.json`` + ``dataset_info.json`` + ``data-*.arrow``, or a
  ``dataset_dict.json`` over split folders) is read as it is: its Arrow stream files, in the order
  ``state.json`` lists them, split by split. The files are memory-mapped, so a batch costs no heap
  until its rows are converted. No ``datasets`` import is needed: its folders are plain Arrow IPC
  streams, which pyarrow reads (``datasets`` itself would pull pandas, fsspec, ... for nothing).

pyarrow is the one library for both (the reference implementation of parquet and of Arrow, which
``datasets`` itself uses); it is imported only when this format is used, and a missing pyarrow is a
``ConfigError`` saying what to install.

Bounds: a row whose fields take more than ``max_record_bytes`` (as Arrow holds them) is skipped
as ``record_too_large``; pyarrow decodes a parquet page whole, so one huge value costs its size
once while it is measured, never more. A file that is not parquet (or not an Arrow stream) ends
that file (``corrupt_file``), as does a page that cannot be decoded.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Iterable, Iterator

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document, Skipped
from linkbert.corpus import fields as field_map
from linkbert.corpus.arrow import arrow, arrow_stream_rows, table_rows
from linkbert.corpus.edges import EdgeTable, KeyedSpool, edge_options, load_edges, unclaimed_edges
from linkbert.corpus.io import (BadRecord, FolderEntry, file_in, file_records, folder_files, open_regular,
                                read_at_most, require_path, settle)
from linkbert.errors import BadInput

DATASETS_STATE, DATASETS_DICT = "state.json", "dataset_dict.json"
# the most bytes a datasets metadata file (state.json, dataset_dict.json) may take
METADATA_BYTES = 1 << 20

Record = tuple[str, str, bytes, tuple]  # (file, "row N", the row pickled, links from an edge table)


class ParquetReader:
    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str, *, id_field=None, title_field=None, text_field=None, links_field=None,
                 label_field=None, edges=None, edges_source=None, edges_target=None):
        self.path = str(path)
        self.fields = field_map.FieldMap.of(id_field=id_field, title_field=title_field, text_field=text_field,
                                            links_field=links_field, label_field=label_field)
        self.edges, self.edges_source, self.edges_target = edge_options(edges, edges_source, edges_target)
        arrow()  # a missing pyarrow is said now, not after the tokenizer is trained

    def records(self) -> Iterator[Record | Skipped | BadRecord]:
        if not self.edges:
            for item in self._rows():
                yield item if isinstance(item, (Skipped, BadRecord)) else (*item[:2], pickle.dumps(item[2]), ())
            return
        with KeyedSpool() as spool:
            yield from load_edges(EdgeTable(self.edges, self.edges_source, self.edges_target,
                                            max_record_bytes=self.max_record_bytes), spool)
            for item in self._rows():
                if isinstance(item, (Skipped, BadRecord)):
                    yield item
                    continue
                name, where, row = item
                try:
                    links = tuple(spool.get(field_map.record_id(row, self.fields, name, where)))
                except BadInput:
                    links = ()  # parse() reports the record
                yield name, where, pickle.dumps(row), links
            yield from unclaimed_edges(spool, "edge_from_unknown_document")

    def parse(self, record: Record | Skipped | BadRecord) -> Document | Skipped:
        if isinstance(record, (Skipped, BadRecord)):
            return settle(record)
        name, where, payload, links = record
        return field_map.document(pickle.loads(payload), self.fields, name, where, links)

    def labels(self) -> Iterator[tuple[str, str]]:
        """(document id, label) of every row that has a label (``corpus.labels``)."""
        rows = (item for item in self._rows() if isinstance(item, tuple))
        return field_map.labels_of(rows, self.fields)

    def document_keys(self, doc: Document) -> Iterable[str]:
        return ("id:" + doc.id, "title:" + doc.title) if doc.title else ("id:" + doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        return ("id:" + target, "title:" + target)

    # -- reading ---------------------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[str, str, dict] | Skipped | BadRecord]:
        root = require_path(self.path)
        columns = sorted(self.fields.columns())
        if not root.is_dir():
            kind = "arrow" if root.suffix == ".arrow" else "parquet"
            yield from file_records([FolderEntry.named(root)], lambda e: self._file_rows(e, kind, columns, False))
            return
        if (root / DATASETS_STATE).exists() or (root / DATASETS_DICT).exists():
            yield from file_records(datasets_files(root), lambda e: self._file_rows(e, "arrow", columns, True))
            return
        entries = folder_files(root, lambda name: name.endswith(".parquet"))
        if not entries:
            raise BadInput(str(root), "", "missing_path", "no .parquet files in this folder (nor a datasets "
                                                          f"{DATASETS_STATE})", fatal=True)
        yield from file_records(entries, lambda e: self._file_rows(e, "parquet", columns, True))

    def _file_rows(self, entry: FolderEntry, kind: str, columns: list[str], in_folder: bool):
        partition = _partition(entry.relative)
        wanted = [c for c in columns if c not in partition]
        required = [p.split(".", 1)[0] for p in (self.fields.id, self.fields.text)]
        rows = (arrow_stream_rows if kind == "arrow" else table_rows)(
            entry.path, wanted, self.max_record_bytes, "corpus", name=entry.name, regular=in_folder,
            required=[c for c in required if c not in partition])
        for where, row in rows:
            if isinstance(row, BadRecord):
                yield row
                continue
            for key, value in partition.items():
                row.setdefault(key, value)
            yield entry.name, where, row


def datasets_files(root: Path) -> list[FolderEntry]:
    """The Arrow files of a ``datasets`` folder in order: ``state.json``'s ``_data_files``, or
    each split of ``dataset_dict.json`` in its listed order."""
    if (root / DATASETS_DICT).exists() and not (root / DATASETS_STATE).exists():
        splits = _json_file(file_in(root, DATASETS_DICT, "the datasets split list"), "splits", list)
        return [entry for split in splits for entry in datasets_files(_inside(root, str(split)))]
    state = file_in(root, DATASETS_STATE, "the datasets state file")
    entries = []
    for item in _json_file(state, "_data_files", list):
        filename = item.get("filename") if isinstance(item, dict) else None
        if not isinstance(filename, str):
            raise BadInput(str(state), "", "malformed_json", '"_data_files" must list {"filename": ...} objects',
                           fatal=True)
        path = _inside(root, filename)
        entries.append(FolderEntry(path.relative_to(root).as_posix(), str(path), file_in(root, filename, "an Arrow file "
                                                                                               "of the dataset"), None))
    return entries


def _inside(root: Path, name: str) -> Path:
    path = root / name
    if os.path.isabs(name) or ".." in Path(name).parts:
        raise BadInput(str(root), "", "outside_input", f"{name!r} leads out of the dataset folder", fatal=True)
    return path


def _json_file(path: Path, key: str, kind: type):
    with open_regular(path) as f:
        raw = read_at_most(f, METADATA_BYTES)
    if raw is None:
        raise BadInput(str(path), "", "record_too_large", f"larger than {METADATA_BYTES:,} bytes", fatal=True)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise BadInput(str(path), "", "malformed_json", "not valid JSON", fatal=True) from e
    if not isinstance(value, dict) or not isinstance(value.get(key), kind):
        raise BadInput(str(path), "", "malformed_json", f'expected an object with "{key}"', fatal=True)
    return value[key]


def _partition(relative: str) -> dict[str, str]:
    """``{key: value}`` of the ``key=value`` folders in a file's path below the input folder."""
    parts = relative.split("/")[:-1]
    return dict(part.split("=", 1) for part in parts if "=" in part and not part.startswith("="))
