"""The settings of ``linkbert prepare`` (:class:`PrepareConfig`, each a ``--flag`` of the command)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, READERS
from linkbert.segment import DEFAULT_BUDGET
from linkbert.settings import setting

LINK_BUILDERS = ("none", "title-mention", "tfidf")
MIN_DOCUMENTS = 2  # a pretraining pair takes segments of two documents
# how the corpus names its fields (jsonl, parquet; label_field also openalex) and where its links are when kept
# apart; handed to the reader when given ("", the default, leaves the format's own: corpus.open_reader). The
# one owner of these settings' help: every command that reads a corpus declares them with reader_setting
READER_HELP = {
    "id_field": "field holding a document's id, a dotted path for nested fields (jsonl, parquet; default id)",
    "title_field": "field holding the title (jsonl, parquet; default title)",
    "text_field": "field holding the text (jsonl, parquet; default text)",
    "links_field": "field holding the list of linked ids or titles (jsonl, parquet; default links)",
    "label_field": "field holding a document label, read by the experiments and the quickstart, not by prepare "
                   "(jsonl, parquet: default label; openalex: none unless given, e.g. "
                   "primary_topic.field.display_name)",
    "edges": "edge table with the links, one a row: parquet, CSV or JSON lines (jsonl, parquet)",
    "edges_source": "--edges column naming the linking document (default src)",
    "edges_target": "--edges column naming the linked document (default tgt)",
}
READER_OPTIONS = tuple(READER_HELP)
EDGE_OPTIONS = ("edges", "edges_source", "edges_target")  # where the links are, not how a document reads


def reader_setting(name: str):
    """The setting of the reader option ``name`` (one of :data:`READER_OPTIONS`): a string, "" for
    the format's default, with its help here."""
    return setting("", READER_HELP[name])


def reader_options(config) -> dict[str, str]:
    """The reader options ``config`` gives (those not left ""), as ``corpus.open_reader`` takes them."""
    return {name: getattr(config, name) for name in READER_OPTIONS if getattr(config, name)}


def input_paths(corpus, options: dict[str, str]) -> list[Path]:
    """What preparing ``corpus`` with the reader ``options`` reads: the corpus and, where given, its
    edge table (an output folder may hold neither: replacing it would delete them)."""
    return [Path(corpus), *([Path(options["edges"])] if options.get("edges") else [])]


@dataclass
class PrepareConfig:
    """Every setting of ``linkbert prepare``; each is a ``--flag`` of the command."""

    format: str = setting(None, "corpus format", choices=sorted(READERS), required=True)
    input: str = setting(None, "corpus file or folder, as the format expects", required=True)
    tokenizer: str = setting(None, 'local tokenizer folder, hub name (online), or "train" to train a WordPiece '
                                   "vocabulary on the corpus", required=True)
    out: str = setting(None, "output folder: the prepared corpus", required=True)
    workers: int = setting(1, "parsing/tokenizing processes; 1: in this process", minimum=1)
    link_builder: str = setting("none", "none: the corpus's own links; title-mention or tfidf: links built from "
                                        "the texts", choices=LINK_BUILDERS)
    tfidf_k: int = setting(5, "targets per document for --link-builder tfidf (the paper's ablation: 5)", minimum=1)
    skip_bad: bool = setting(False, "count and skip malformed records (reported in stats.json) instead of stopping")
    segment_budget: int = setting(DEFAULT_BUDGET, "most tokens per segment; pretraining's max_length must be at "
                                                  "least 2 x this + 3", minimum=1)
    vocab_size: int = setting(30522, "vocabulary size for --tokenizer train", minimum=16)
    cased: bool = setting(False, "keep case when training a vocabulary (--tokenizer train)")
    chunk_bytes: int = setting(1 << 20, "raw bytes of records per worker task (about 1 MB balances load and "
                                        "overhead)", minimum=1)
    progress: bool = setting(True, "show a progress bar")
    overwrite: bool = setting(False, "replace what a non-empty --out holds (else it is refused); the old folder goes "
                                     "only once the new one is complete")
    max_record_bytes: int = setting(DEFAULT_MAX_RECORD_BYTES, "the most raw bytes one record (a line, a page, a "
                                                              "file) may take; a larger one is malformed "
                                                              "(skipped with --skip-bad)", minimum=1)
    id_field: str = reader_setting("id_field")
    title_field: str = reader_setting("title_field")
    text_field: str = reader_setting("text_field")
    links_field: str = reader_setting("links_field")
    label_field: str = reader_setting("label_field")
    edges: str = reader_setting("edges")
    edges_source: str = reader_setting("edges_source")
    edges_target: str = reader_setting("edges_target")
