import numpy as np
import pytest

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
    with pytest.raises(ValueError, match="damaged"):
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
