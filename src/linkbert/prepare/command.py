"""The command line of ``linkbert prepare``: its settings as flags (``PrepareConfig``), the run
(``build.prepare``) and the summary it prints."""

from __future__ import annotations

import argparse

from linkbert import settings
from linkbert.prepare.build import prepare
from linkbert.prepare.settings import PrepareConfig


def configure(parser: argparse.ArgumentParser) -> None:
    settings.add_arguments(parser, PrepareConfig)


def main(args: argparse.Namespace) -> int:
    config = settings.from_arguments(PrepareConfig, args)
    stats = prepare(config)
    print(summary(stats, config.out))
    return 0


def summary(stats: dict, out: str) -> str:
    skipped = ", ".join(f"{k} {v:,}" for k, v in stats["documents_skipped"].items()) or "none"
    dropped = ", ".join(f"{k} {v:,}" for k, v in stats["links_dropped"].items()) or "none"
    lines = [
        f"prepared {stats['documents']:,} documents in {stats['seconds']:.1f}s -> {out}",
        f"  skipped documents: {skipped}; redirects: {stats['redirects']:,}",
        f"  segments {stats['segments']:,}, tokens {stats['tokens']:,} ({stats['token_dtype']})",
        f"  links: raw {stats['links_raw']:,}, resolved {stats['links_resolved']:,} (dropped: {dropped})",
        f"  documents without out-links: {stats['docs_without_outlinks']:,}",
    ]
    return "\n".join(lines)
