import json

import numpy as np
import pytest

from linkbert.errors import BadInput
from linkbert.store import SegmentStore, SegmentStoreWriter, token_dtype


def test_smallest_dtype_that_fits():
    assert token_dtype(256) == np.uint8
    assert token_dtype(257) == np.uint16
    assert token_dtype(65536) == np.uint16
    assert token_dtype(65537) == np.uint32


def test_write_then_read(tmp_path):
    writer = SegmentStoreWriter(tmp_path, vocab_size=1000)
    docs = [("a", "A", np.arange(10), [4, 6]), ("b", "B", np.array([999, 5]), [2]), ("c", "C", np.arange(7), [1, 2, 4])]
    for doc_id, title, tokens, lengths in docs:
        writer.add(doc_id, title, tokens, np.array(lengths))
    meta = writer.close()
    assert meta == {"format": 1, "dtype": "uint16", "vocab_size": 1000, "documents": 3, "segments": 6, "tokens": 19}
    store = SegmentStore(tmp_path)
    assert store.num_documents == 3 and store.num_segments == 6
    assert store.segment(0).tolist() == [0, 1, 2, 3] and store.segment(1).tolist() == [4, 5, 6, 7, 8, 9]
    assert store.segment(2).tolist() == [999, 5]
    assert list(store.document_segments(2)) == [3, 4, 5]
    assert store.document_tokens(2).tolist() == list(range(7))
    assert store.segment_document(np.array([0, 1, 2, 3, 5])).tolist() == [0, 0, 1, 2, 2]
    assert [d["id"] for d in store.document_names()] == ["a", "b", "c"]


def test_writer_rejects_inconsistent_documents(tmp_path):
    writer = SegmentStoreWriter(tmp_path, vocab_size=10)
    with pytest.raises(ValueError, match="sum"):
        writer.add("x", "", np.arange(5), np.array([2, 2]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        writer.add("x", "", np.array([3, 10]), np.array([2]))


def test_damaged_store_is_reported(tmp_path):
    writer = SegmentStoreWriter(tmp_path, vocab_size=10)
    writer.add("x", "", np.arange(5), np.array([5]))
    writer.close()
    with open(tmp_path / "tokens.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BadInput, match="tokens.bin: 6 bytes where store.json's counts make 5 .*damaged"):
        SegmentStore(tmp_path)
    with pytest.raises(FileNotFoundError, match="linkbert prepare"):
        SegmentStore(tmp_path / "nowhere")


def test_pickles_as_its_folder(tmp_path):
    import pickle

    writer = SegmentStoreWriter(tmp_path, vocab_size=1000)
    writer.add("a", "A", np.arange(600), np.array([600]))
    writer.close()
    store = SegmentStore(tmp_path)
    data = pickle.dumps(store)
    assert len(data) < 300  # the path, not the tokens
    assert pickle.loads(data).segment(0).tolist() == list(range(600))


# -- a damaged store, found when it is opened (issue 24) -------------------------------------------------

def _store(folder, vocab_size=100):
    writer = SegmentStoreWriter(folder, vocab_size=vocab_size)
    for i in range(4):
        writer.add(f"d{i}", "", np.arange(10) + i, np.array([4, 6]))
    writer.close()
    return folder


def _poke(path, dtype, index, value):
    array = np.fromfile(path, dtype=dtype)
    array[index] = value
    array.tofile(path)


def _meta(folder, **changes):
    meta = json.loads((folder / "store.json").read_text())
    meta.update(changes)
    (folder / "store.json").write_text(json.dumps({k: v for k, v in meta.items() if v is not None}))


@pytest.mark.parametrize("damage, file, words", [
    (lambda d: (d / "store.json").write_text("{"), "store.json", "not valid JSON"),
    (lambda d: (d / "store.json").write_text("[]"), "store.json", "not a JSON object"),
    (lambda d: (d / "store.json").write_text('{"a": ' + "[" * 100000 + "]" * 100000 + "}"), "store.json",
     "nested too deeply"),
    (lambda d: _meta(d, tokens=None), "store.json", "tokens is None, not a count"),
    (lambda d: _meta(d, documents=-3), "store.json", "documents is -3, not a count"),
    (lambda d: _meta(d, dtype="object"), "store.json", "dtype is 'object'"),
    (lambda d: _meta(d, vocab_size=True), "store.json", "vocab_size is True"),
    (lambda d: (d / "tokens.bin").write_bytes((d / "tokens.bin").read_bytes()[:-3]), "tokens.bin", "bytes where"),
    (lambda d: (d / "segments.bin").unlink(), "segments.bin", "missing"),
])
def test_a_damaged_store_is_named_when_opened(tmp_path, damage, file, words):
    damage(_store(tmp_path))
    with pytest.raises(BadInput, match=words) as info:
        SegmentStore(tmp_path)
    assert info.value.path == str(tmp_path / file)


@pytest.mark.parametrize("damage, file, words", [
    (lambda d: _poke(d / "tokens.bin", np.uint8, 7, 200), "tokens.bin", "token id 200 .* outside the vocabulary of 100"),
    (lambda d: _poke(d / "segments.bin", np.int64, -2, 10 ** 6), "segments.bin", "below the one before"),
    (lambda d: _poke(d / "segments.bin", np.int64, 3, 0), "segments.bin", "below the one before"),
    (lambda d: _poke(d / "segments.bin", np.int64, 2, 4), "segments.bin", "repeats the one before"),
    (lambda d: _poke(d / "segments.bin", np.int64, -1, 35), "segments.bin", "not from 0 to the 40 tokens"),
    (lambda d: _poke(d / "documents.bin", np.int64, 2, 10 ** 6), "documents.bin", "below the one before"),
    (lambda d: _poke(d / "documents.bin", np.int64, 0, 1), "documents.bin", "run from 1"),
])
def test_out_of_bounds_arrays_are_found_by_the_check(tmp_path, damage, file, words):
    damage(_store(tmp_path))
    store = SegmentStore(tmp_path)  # sizes and store.json are fine: the bounds are the check's
    with pytest.raises(BadInput, match=words) as info:
        store.check()
    assert info.value.path == str(tmp_path / file) and "prepare it again" in str(info.value)


def test_an_intact_store_passes_the_check_in_chunks(tmp_path, monkeypatch):
    from linkbert import store

    monkeypatch.setattr(store, "SCAN_CHUNK", 3)
    SegmentStore(_store(tmp_path)).check()
    _poke(tmp_path / "tokens.bin", np.uint8, 37, 100)  # in the last chunk
    with pytest.raises(BadInput, match="token id 100 .*near token 36"):
        SegmentStore(tmp_path).check()


def test_a_vocabulary_the_token_type_fills_needs_no_scan(tmp_path):
    SegmentStore(_store(tmp_path, vocab_size=256)).check()  # uint8: every value is a token id
