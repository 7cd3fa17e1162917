"""``linkbert prepare``: a corpus of linked documents -> document graph + segment store.

    linkbert prepare --format wikispeedia --input data/wikispeedia \\
        --tokenizer bert-base-uncased --out prepared/wikispeedia --workers 2

Three steps, each streaming in constant memory (apart from the key -> document table that
link resolution needs):

1. read + tokenize: the reader's records go, in chunks, to worker processes that parse them and
   tokenize each document once into sentence-aware segments; the main process appends the
   results to the segment store in input order, so the output is byte-identical whatever the
   number of workers. Raw link targets are spooled to a temporary file.
2. link: every raw target is resolved to a document (ids, normalised titles, redirects), or
   links are built from the texts (``--link-builder title-mention|tfidf``).
3. write ``graph/`` (CSR) and ``stats.json`` (every count, including what was skipped and why,
   and the corpus's ``fingerprint``: ``prepared.compute_fingerprint``).

The output folder is built beside ``--out`` and renamed into place only when complete, so a
failed run leaves whatever was there as it was; a non-empty ``--out`` is replaced only with
``--overwrite``. A corpus that keeps fewer than two documents is an error (pretraining pairs
segments of two documents); one without any link gets a warning. A document the tokenizer cannot
read (a lone surrogate in its text) is a ``BadInput`` naming it (``invalid_text``), which
``--skip-bad`` counts and skips. A very long document is encoded in pieces (bounded memory) when
the tokenizer allows it (``tokenization.splits_at_spaces``); the tokens are the same.

Modules, each importing only those after it:

* ``command``: the command line (``configure``, ``main``, the ``summary`` it prints);
* ``build``: :func:`~linkbert.prepare.build.prepare`, the three steps into the output folder;
* ``settings``: ``PrepareConfig``, every setting (each a ``--flag``), and ``LINK_BUILDERS``;
* ``workers``: step 1's reading and tokenizing, records -> segmented documents in worker
  processes (flat arguments; it imports nothing else of this package).
"""
