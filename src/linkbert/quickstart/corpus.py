"""Stage 1's choices: which corpus (``--corpus FORMAT:PATH`` or the default package data), how
its reader reads it (prepare's ``--id-field``, ``--edges``, ...), which subset of it (``--smoke``,
``--max-documents``) and where its links come from."""

from __future__ import annotations

import json
from pathlib import Path

from linkbert.errors import ConfigError
from linkbert.quickstart.config import DEFAULT_FORMAT, QuickstartConfig
from linkbert.quickstart.pipeline import reader_options


def corpus_source(config: QuickstartConfig) -> tuple[str, Path]:
    """``(format, path)`` of the corpus: ``--corpus FORMAT:PATH`` or the default package data."""
    from linkbert.corpus import READERS

    if not config.corpus:
        from linkbert.corpus.vital_articles import default_path

        return DEFAULT_FORMAT, default_path()
    fmt, sep, path = config.corpus.partition(":")
    if not sep or fmt not in READERS or not path:
        raise ConfigError(f"--corpus must be FORMAT:PATH with FORMAT one of {', '.join(READERS)} (got {config.corpus!r})")
    return fmt, Path(path)


def corpus_reader_options(config: QuickstartConfig, fmt: str, path: Path) -> dict[str, str]:
    """The reader options given (``--id-field``, ``--edges``, ...), checked before any stage runs: an
    option the format does not take, or an ``--edges`` file that is not there, is a ``ConfigError``."""
    from linkbert.corpus import open_reader

    options = reader_options(config)
    if options.get("edges") and not Path(options["edges"]).is_file():
        raise ConfigError(f"--edges {options['edges']}: no such file")
    open_reader(fmt, str(path), **options)  # refuses an option this format does not take, naming the formats that do
    return options


def link_builder(config: QuickstartConfig, fmt: str) -> str:
    if config.link_builder != "auto":
        return config.link_builder
    return "title-mention" if fmt == DEFAULT_FORMAT else "none"


def subset_corpus(fmt: str, path: Path, config: QuickstartConfig, work: Path) -> Path:
    """Every k-th entry of the default corpus (so all topics stay), for ``--smoke``/``--max-documents``."""
    if fmt != DEFAULT_FORMAT:
        raise ConfigError("--max-documents (and --smoke) subset only the default corpus; "
                          "for your own corpus, pass a smaller file")
    entries = json.loads(path.read_text(encoding="utf-8"))
    step = max(1, len(entries) // config.max_documents)
    subset = dict(list(entries.items())[::step][:config.max_documents])
    work.mkdir(parents=True, exist_ok=True)
    target = work / "corpus.json"
    target.write_text(json.dumps(subset, ensure_ascii=False), encoding="utf-8")
    return target
