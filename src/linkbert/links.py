"""Resolving raw link targets to documents.

Readers give each document's links as the source writes them (an id, a title, a URL, a PMID)
and two key functions: ``document_keys(doc)`` and ``link_keys(target)``. ``LinkTable`` maps
keys to document indices, follows redirects, and says why a target did not resolve.
"""

from __future__ import annotations

from typing import Iterable

SKIPPED = -1          # a key that belonged to a document that was skipped (empty, bad)
MAX_REDIRECT_HOPS = 8  # MediaWiki itself follows one hop; chains longer than this are loops


class LinkTable:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.redirects: dict[str, str] = {}
        self.collisions = 0  # secondary keys (titles) already taken by an earlier document

    def add_document(self, keys: Iterable[str], doc_index: int) -> None:
        """Register a document under its keys; the first document to claim a key keeps it."""
        for key in keys:
            if self.index.setdefault(key, doc_index) != doc_index:
                self.collisions += 1

    def add_skipped(self, keys: Iterable[str]) -> None:
        """Remember keys of a skipped document, so links to it are counted as such, not as dangling."""
        for key in keys:
            self.index.setdefault(key, SKIPPED)

    def add_redirect(self, key: str, target: str) -> None:
        if key and key != target:
            self.redirects.setdefault(key, target)

    def claims(self, key: str) -> bool:
        return key in self.index

    def resolve(self, keys: Iterable[str]) -> tuple[int | None, str]:
        """The document the first resolvable key means, and how: ``resolved``, ``redirect``,
        ``to_skipped_document``, ``redirect_loop`` or ``dangling`` (with ``None``)."""
        outcome = "dangling"
        for key in keys:
            doc, how = self._follow(key)
            if doc is not None and doc != SKIPPED:
                return doc, how
            if doc == SKIPPED or how == "redirect_loop":
                outcome = "to_skipped_document" if doc == SKIPPED else how
        return None, outcome

    def _follow(self, key: str) -> tuple[int | None, str]:
        how = "resolved"
        for _ in range(MAX_REDIRECT_HOPS + 1):
            if key in self.index:
                return self.index[key], how
            if key not in self.redirects:
                return None, "dangling"
            key = self.redirects[key]
            how = "redirect"
        return None, "redirect_loop"

