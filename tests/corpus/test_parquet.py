"""Parquet files, hive-partitioned folders and ``datasets`` folders (tests/data/openalexpro/)."""

import json
import os
import shutil

import pytest

from linkbert.corpus import Document, Skipped, open_reader
from linkbert.errors import BadInput, ConfigError

from conftest import TEST_DATA
from hostile import bad, outcomes, small_reader, time_limit

import pyarrow as pa  # noqa: E402 - the test extra installs it (pyproject: test)
import pyarrow.parquet as pq  # noqa: E402

PARQUET = TEST_DATA / "openalexpro" / "citing_parquet"  # real: openalexPro's DuckDB export, page=1/…parquet
FIELDS = dict(text_field="abstract", links_field="referenced_works")
CITING = ["https://openalex.org/W4311043552", "https://openalex.org/W4293919086", "https://openalex.org/W4387316167"]


def test_a_hive_partitioned_folder_with_renamed_fields():
    results = outcomes(open_reader("parquet", str(PARQUET), **FIELDS))
    assert [d.id for d in results] == CITING
    first = results[0]
    assert first.title.startswith("Online and Distance Learning Research in The Last 30 Years")
    assert first.text.startswith("Learning systems in emergencies") and len(first.links) == 55
    (part,) = PARQUET.glob("page=1/*.parquet")
    assert outcomes(open_reader("parquet", str(part), **FIELDS)) == results  # the file alone reads alike


def test_nested_fields_and_partition_keys_as_labels():
    from linkbert.corpus.labels import document_labels

    labels = document_labels("parquet", PARQUET, label_field="primary_topic.field.display_name", **FIELDS)
    assert labels == dict(zip(CITING, ["Social Sciences", "Social Sciences", "Computer Science"]))
    assert document_labels("parquet", PARQUET, label_field="page", **FIELDS) == dict.fromkeys(CITING, "1")
    (doc,) = outcomes(open_reader("parquet", str(PARQUET), title_field="ids.doi", **FIELDS))[:1]
    assert doc.title == "https://doi.org/10.36312/esaintika.v6i3.897"


def write_datasets_folder(folder, table, shards=1):
    """What ``datasets``' ``save_to_disk`` writes (its documented layout): Arrow stream shards,
    ``state.json`` listing them, ``dataset_info.json``."""
    folder.mkdir(parents=True)
    names = []
    for k in range(shards):
        name = f"data-{k:05d}-of-{shards:05d}.arrow"
        part = table.slice(k * len(table) // shards, (k + 1) * len(table) // shards - k * len(table) // shards)
        with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(part)
        names.append(name)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names],
                                                   "_fingerprint": "f", "_format_columns": None, "_split": None}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {}}))


def real_table():
    (part,) = PARQUET.glob("page=1/*.parquet")
    return pq.read_table(part, columns=["id", "title", "abstract", "referenced_works"])


def test_a_datasets_folder_and_a_dataset_dict(tmp_path):
    # the layout is synthetic (no datasets install here), the rows are the real parquet's
    write_datasets_folder(tmp_path / "one", real_table(), shards=2)
    results = outcomes(open_reader("parquet", str(tmp_path / "one"), **FIELDS))
    assert [d.id for d in results] == CITING
    assert results == outcomes(open_reader("parquet", str(PARQUET), **FIELDS))
    write_datasets_folder(tmp_path / "dict" / "train", real_table().slice(0, 2))
    write_datasets_folder(tmp_path / "dict" / "test", real_table().slice(2, 1))
    (tmp_path / "dict" / "dataset_dict.json").write_text(json.dumps({"splits": ["test", "train"]}))
    assert [d.id for d in outcomes(open_reader("parquet", str(tmp_path / "dict"), **FIELDS))] == [CITING[2], *CITING[:2]]


def test_nulls_and_mistyped_values(tmp_path):
    table = pa.table({"id": [1, 2, None, 4, 5], "text": ["one", None, "three", "four", "five"],
                      "title": [None, "t", "t", "t", "t"], "links": [["2"], None, [], ["1", "2"], ["x"]],
                      "label": ["a", "b", "c", "d", "e"]})
    pq.write_table(table, tmp_path / "t.parquet")
    bad_links = pa.table({"id": ["6"], "text": ["six"], "links": ["not a list"]})
    pq.write_table(bad_links, tmp_path / "u.parquet")
    results = outcomes(open_reader("parquet", str(tmp_path)))
    assert results[0] == Document("1", "", "one", ("2",)) and results[1] == Skipped("no_text")
    assert results[3] == Document("4", "t", "four", ("1", "2"))
    assert [(e.location, e.reason) for e in bad(results)] == [("row 3", "missing_field"), ("row 1", "wrong_type")]


# -- hostile input ------------------------------------------------------------------------------

def test_a_file_that_is_not_parquet_ends_that_file_only(tmp_path):
    shutil.copytree(PARQUET, tmp_path / "corpus")
    (tmp_path / "corpus" / "page=2").mkdir()
    (tmp_path / "corpus" / "page=2" / "fake.parquet").write_text("id,text\n1,not parquet at all\n")
    (tmp_path / "corpus" / "page=3").mkdir()
    (tmp_path / "corpus" / "page=3" / "empty.parquet").write_bytes(b"")
    results = outcomes(open_reader("parquet", str(tmp_path / "corpus"), **FIELDS))
    assert [d.id for d in results if isinstance(d, Document)] == CITING
    assert [(e.reason, e.fatal, "not a parquet file" in str(e) or "empty" in str(e)) for e in bad(results)] == [
        ("corrupt_file", True, True), ("corrupt_file", True, True)]
    with pytest.raises(BadInput, match="not a parquet file") as info:  # a lone file: the error ends the reading
        outcomes(open_reader("parquet", str(tmp_path / "corpus" / "page=2" / "fake.parquet")))
    assert info.value.path.endswith("fake.parquet")


def test_symlinks_out_of_the_folder_and_oversized_rows(tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(PARQUET, outside)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "evil.parquet").symlink_to(next(outside.glob("page=1/*.parquet")))
    pq.write_table(pa.table({"id": ["a", "big", "c"], "text": ["short", "x" * 50_000, "short"]}), corpus / "rows.parquet",
                   row_group_size=3)
    with time_limit(20):
        results = outcomes(small_reader("parquet", corpus, limit=10_000))
    assert results[0] == Skipped("outside_input")
    assert [d.id for d in results if isinstance(d, Document)] == ["a", "c"]
    (error,) = bad(results)
    assert (error.location, error.reason) == ("row 2", "record_too_large") and error.path.endswith("rows.parquet")


def test_a_missing_column_is_named_with_the_columns_there_are(tmp_path):
    with pytest.raises(BadInput, match=r'no column .abstract.*--id-field/--text-field'):
        outcomes(open_reader("parquet", str(PARQUET), text_field="abstract_text"))


def test_datasets_folders_that_lead_out(tmp_path):
    folder = tmp_path / "ds"
    write_datasets_folder(folder, real_table())
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "../outside.arrow"}]}))
    with pytest.raises(BadInput) as info:
        outcomes(open_reader("parquet", str(folder), **FIELDS))
    assert info.value.reason == "outside_input"
    os.remove(folder / "state.json")
    (folder / "state.json").symlink_to("/etc/passwd")
    with pytest.raises(BadInput, match="symlink leading out"):
        outcomes(open_reader("parquet", str(folder), **FIELDS))


def test_options_a_format_does_not_take():
    with pytest.raises(ConfigError, match="--text-field does not apply to --format openalex"):
        open_reader("openalex", str(PARQUET), text_field="abstract")
    with pytest.raises(ConfigError, match="give --edges FILE"):
        open_reader("parquet", str(PARQUET), edges_source="a")


def test_a_missing_library_is_a_config_error_saying_what_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(ConfigError, match=r"needs the pyarrow package: pip install pyarrow \(or pip install 'linkbert\[corpora\]'\)"):
        open_reader("parquet", str(PARQUET))
    monkeypatch.setitem(sys.modules, "zstandard", None)
    (tmp_path / "c.jsonl.zst").write_bytes(b"")
    with pytest.raises(ConfigError, match="c.jsonl.zst \\(zstd\\) needs the zstandard package"):
        outcomes(open_reader("jsonl", str(tmp_path / "c.jsonl.zst")))
