"""Hostile inputs: build bad corpora, settings and files, run the CLI on each, judge what it did.

    python benchmarks/hostile_inputs.py                    # every case, about 20 minutes on 2 cores
    python benchmarks/hostile_inputs.py --only html,jsonl  # cases whose name starts with these
    python benchmarks/hostile_inputs.py --classes 1,2      # the cases of these classes of issue 24

Cases come in groups, each built only when one of its cases is asked for: the earlier probe's
(``earlier``: the readers, settings, checkpoints) and, in ``hostile_surfaces.py``, those of the
classes of issue 24 on the newer surfaces (``1`` tracebacks for a user's input, ``2`` silent loss
or wrong output, ``3`` processes left behind, ``4`` leftovers of a stopped build, ``5`` bombs,
``6`` messages that send the user the wrong way, ``7`` a first result that misleads). Totals are
printed per class.

Every case builds its inputs in a temporary folder and runs one ``linkbert`` command in a child
process with a timeout. A case says what a careful tool does with it:

* ``error``: exit status 2, one line on stderr that names the path or setting (``names``), no
  traceback, and the output folder left as it was;
* ``skip``: with ``--skip-bad``, exit status 0, the bad records counted in stats.json
  (``documents_skipped``) and the good ones kept (``documents``);
* ``ok``: exit status 0 (and ``documents`` kept, where given);
* ``killed``: stopped by a signal on purpose; its ``check`` judges what it left behind.

A case may also check what the command left (``check``: an output's content, processes still
alive, a folder that must not change), run more than one command (``runner``: signals, a stopped
build and its rerun, a busy machine), close the command's stdout (``stdout_closed``: ``| head``)
or bound its memory (``max_rss_mb``).

The verdict is ``good`` when the command did that, else the first that applies of ``hang``
(timed out), ``traceback`` (a Python traceback on stderr), ``bomb`` (more memory than the case
allows), ``silent`` (exit 0 where an error was due, or records lost without a count), ``poor
message`` (the right exit status, but the message is not one line naming what it should),
``wrong`` (anything else). Reported per case: the exit status, the message's first line,
documents kept and skipped, the verdict. The last line printed is one JSON object: the totals by
verdict, the totals by class and every case.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

TEXT = ("Paris is the capital of France. It lies on the Seine. Many people visit it every year. "
        "The city has museums, parks and old bridges. ")
VERDICTS = ("good", "hang", "traceback", "bomb", "silent", "poor message", "wrong")


@dataclass
class Case:
    name: str
    argv: list[str]          # after `linkbert`
    expect: str              # error | skip | ok
    names: str = ""          # error: a text the one-line message must hold (a file or setting name)
    documents: int | None = None  # skip/ok: documents kept
    out: Path | None = None  # a folder the command must leave untouched on an error, or that holds stats.json
    before: dict = field(default_factory=dict)  # the out folder's files before the run (filled in by run_case)
    kind: str = "earlier"    # the class of issue 24 the case belongs to, or the earlier probe's
    check: Callable[[dict], str | None] | None = None  # after a good run: None, or "verdict: why not good"
    runner: Callable[["Case", float], dict] | None = None  # instead of one command: {"exit", "stderr", ...}
    stdout_closed: bool = False   # the command's stdout is a pipe whose reader has gone (| head)
    max_rss_mb: float | None = None  # the most memory the command may take
    env: dict = field(default_factory=dict)  # extra environment variables


# -- building inputs -------------------------------------------------------------------------------

def jsonl(path: Path, records: list, raw_lines: list[str] = ()) -> Path:
    lines = [json.dumps(r) for r in records] + list(raw_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def docs(n: int, prefix: str = "d") -> list[dict]:
    return [{"id": f"{prefix}{i}", "title": f"Doc {i}", "text": TEXT * 3, "links": [f"{prefix}{(i + 1) % n}"]}
            for i in range(n)]


def prepare_argv(fmt: str, source: Path, out: Path, *extra: str) -> list[str]:
    return ["prepare", "--format", fmt, "--input", str(source), "--tokenizer", "train", "--vocab-size", "200",
            "--out", str(out), "--no-progress", *extra]


def html_site(root: Path, pages: int = 3) -> Path:
    root.mkdir(parents=True)
    for i in range(pages):
        nxt = f"p{(i + 1) % pages}.html"
        (root / f"p{i}.html").write_text(f"<html><head><title>Page {i}</title></head><body><p>{TEXT}</p>"
                                         f"<a href='{nxt}'>next</a></body></html>", encoding="utf-8")
    return root


def wiki_dump(path: Path, pages: list[tuple[str, str]], raw: str = "") -> Path:
    body = "".join(f"<page><title>{t}</title><ns>0</ns><id>{i + 1}</id><revision><id>{i + 10}</id>"
                   f"<text>{x}</text></revision></page>" for i, (t, x) in enumerate(pages))
    xml = ("<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\" version=\"0.10\" xml:lang=\"en\">"
           f"<siteinfo><sitename>W</sitename></siteinfo>{body}{raw}</mediawiki>")
    path.write_bytes(bz2.compress(xml.encode("utf-8")))
    return path


def wikispeedia(root: Path, articles: dict[str, str], links: str, tar_bytes: bytes | None = None) -> Path:
    root.mkdir(parents=True)
    if tar_bytes is None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, text in articles.items():
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"plaintext_articles/{name}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        tar_bytes = buffer.getvalue()
    (root / "plaintext_articles.tar.gz").write_bytes(tar_bytes)
    (root / "links.tsv").write_text(links, encoding="utf-8", errors="surrogateescape")
    (root / "articles.tsv").write_text("".join(f"{name}\n" for name in articles), encoding="utf-8")
    return root


def cli(*argv: str) -> None:
    """Run ``linkbert ARGV`` to set a case up (it must succeed)."""
    done = subprocess.run([sys.executable, "-m", "linkbert.cli", *map(str, argv)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"setting a case up failed: linkbert {' '.join(map(str, argv))}\n{done.stderr[-2000:]}")


def prepared_corpus(root: Path, n: int = 12, prefix: str = "d") -> Path:
    """A small prepared corpus (through the real CLI) for the pretraining cases."""
    root.mkdir(parents=True, exist_ok=True)
    source = jsonl(root / "corpus.jsonl", docs(n, prefix))
    out = root / "prepared"
    cli(*prepare_argv("jsonl", source, out, "--segment-budget", "30"))
    return out


def flip_bytes(path: Path, count: int = 4096) -> None:
    """Corrupt ``count`` bytes in the middle of a file, as a failing disk or a bad copy would."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(len(data), middle + count)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# -- the cases -------------------------------------------------------------------------------------

def user_folder(tmp: Path) -> Path:
    """A user's folder with work in it, which no command may touch."""
    full = tmp / "user-folder"
    if not full.is_dir():
        full.mkdir()
        (full / "thesis.tex").write_text("years of work")
    return full


def earlier_readers(tmp: Path) -> list[Case]:
    """The earlier probe's cases of the readers and prepare's settings."""
    out: list[Case] = []

    def add(case: Case) -> None:
        out.append(case)

    # html: reading outside the input, special files, size, nesting
    site = html_site(tmp / "html-symlink")
    (site / "evil.html").symlink_to("/etc/passwd")
    add(Case("html/symlink-out-of-site", prepare_argv("html", site, tmp / "o1", "--skip-bad"), "ok", documents=3,
             out=tmp / "o1"))
    site = html_site(tmp / "html-fifo")
    os.mkfifo(site / "pipe.html")
    add(Case("html/fifo", prepare_argv("html", site, tmp / "o2", "--skip-bad"), "ok", documents=3, out=tmp / "o2"))
    site = html_site(tmp / "html-devzero")
    (site / "zero.html").symlink_to("/dev/zero")
    add(Case("html/symlink-to-dev-zero", prepare_argv("html", site, tmp / "o3", "--skip-bad"), "ok", documents=3,
             out=tmp / "o3"))
    site = html_site(tmp / "html-big")
    (site / "big.html").write_text("<html><body>" + "<p>word</p>" * 20000 + "</body></html>")
    add(Case("html/page-over-the-bound", prepare_argv("html", site, tmp / "o4", "--skip-bad",
                                                      "--max-record-bytes", "100000"), "skip", documents=3,
             out=tmp / "o4"))
    site = html_site(tmp / "html-deep")
    (site / "deep.html").write_text("<div>" * 300000 + "deep" + "</div>" * 300000)
    add(Case("html/nested-too-deep", prepare_argv("html", site, tmp / "o5", "--skip-bad"), "skip", documents=3,
             out=tmp / "o5"))

    # jsonl: records that break parsers
    add(Case("jsonl/nested-100000-deep", prepare_argv("jsonl", jsonl(tmp / "deep.jsonl", docs(3), [
        '{"id": "x", "text": ' + "[" * 100000 + "]" * 100000 + "}"]), tmp / "o6", "--skip-bad"), "skip", documents=3,
        out=tmp / "o6"))
    add(Case("jsonl/nested-100000-deep-no-skip", prepare_argv("jsonl", jsonl(tmp / "deep2.jsonl", docs(3), [
        '{"id": "x", "text": ' + "[" * 100000 + "]" * 100000 + "}"]), tmp / "o7"), "error", names="line 4",
        out=tmp / "o7"))
    add(Case("jsonl/5000-digit-id", prepare_argv("jsonl", jsonl(tmp / "bigint.jsonl", docs(3), [
        '{"id": ' + "9" * 5000 + ', "text": "x y z"}']), tmp / "o8", "--skip-bad"), "skip", documents=3,
        out=tmp / "o8"))
    add(Case("jsonl/lone-surrogate", prepare_argv("jsonl", jsonl(tmp / "surrogate.jsonl", docs(3), [
        '{"id": "s", "text": "bad \\ud800 text. More text here."}']), tmp / "o9", "--skip-bad"), "skip",
        documents=3, out=tmp / "o9"))
    big_line = gzip.compress(("\n".join(json.dumps(d) for d in docs(3)) + "\n" + '{"id": "huge", "text": "'
                              + "a" * 2_000_000 + '"}\n').encode())
    (tmp / "huge.jsonl.gz").write_bytes(big_line)
    add(Case("jsonl/gzip-line-over-the-bound", prepare_argv("jsonl", tmp / "huge.jsonl.gz", tmp / "o10",
                                                            "--skip-bad", "--max-record-bytes", "100000"),
             "skip", documents=3, out=tmp / "o10"))
    (tmp / "garbage.jsonl").write_bytes(os.urandom(4000))
    add(Case("jsonl/binary-garbage", prepare_argv("jsonl", tmp / "garbage.jsonl", tmp / "o11"), "error",
             names="garbage.jsonl", out=tmp / "o11"))
    add(Case("jsonl/empty-file", prepare_argv("jsonl", jsonl(tmp / "empty.jsonl", []), tmp / "o12"), "error",
             names="empty.jsonl", out=tmp / "o12"))
    add(Case("jsonl/one-document", prepare_argv("jsonl", jsonl(tmp / "one.jsonl", docs(1)), tmp / "o13"), "error",
             names="one.jsonl", out=tmp / "o13"))
    add(Case("jsonl/every-record-bad", prepare_argv("jsonl", jsonl(tmp / "allbad.jsonl", [], [
        "{", "[1, 2]", '{"id": 3}']), tmp / "o14", "--skip-bad"), "error", names="allbad.jsonl", out=tmp / "o14"))
    add(Case("jsonl/no-links-at-all", prepare_argv("jsonl", jsonl(tmp / "nolinks.jsonl", [
        {**d, "links": []} for d in docs(4)]), tmp / "o15"), "ok", documents=4, out=tmp / "o15"))

    # wikispeedia
    good = {"Paris": TEXT * 3, "France": TEXT * 3, "Seine": TEXT * 3}
    add(Case("wikispeedia/undecodable-link", prepare_argv("wikispeedia", wikispeedia(
        tmp / "ws1", good, "Paris\tFrance\nParis\tS%FFeine\n"), tmp / "o16", "--skip-bad"), "ok", documents=3,
        out=tmp / "o16"))
    add(Case("wikispeedia/not-a-tarball", prepare_argv("wikispeedia", wikispeedia(
        tmp / "ws2", good, "Paris\tFrance\n", tar_bytes=b"this is not a tarball" * 50), tmp / "o17"), "error",
        names="plaintext_articles.tar.gz", out=tmp / "o17"))
    add(Case("wikispeedia/member-over-the-bound", prepare_argv("wikispeedia", wikispeedia(
        tmp / "ws3", {**good, "Huge": "word " * 100000}, "Paris\tFrance\n"), tmp / "o18", "--skip-bad",
        "--max-record-bytes", "100000"), "skip", documents=3, out=tmp / "o18"))

    # wikipedia dumps
    pages = [(f"Page {i}", f"{TEXT} [[Page {(i + 1) % 4}]]") for i in range(4)]
    dump = wiki_dump(tmp / "bad-char.xml.bz2", pages[:2], raw="<page><title>Bad\x01</title></page>")
    add(Case("wikipedia/invalid-character", prepare_argv("wikipedia-xml", dump, tmp / "o19", "--skip-bad"), "skip",
             documents=2, out=tmp / "o19"))
    dump = wiki_dump(tmp / "unclosed.xml.bz2", [*pages[:3], ("Bomb", "{{a|[[b|" * 20000)])
    add(Case("wikipedia/unclosed-markup", prepare_argv("wikipedia-xml", dump, tmp / "o32", "--skip-bad"), "skip",
             documents=3, out=tmp / "o32"))
    (tmp / "page.html").write_text("<html><body><p>" + TEXT + "</p></body></html>")
    add(Case("wikipedia/html-given-as-dump", prepare_argv("wikipedia-xml", tmp / "page.html", tmp / "o20"), "error",
             names="page.html", out=tmp / "o20"))
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
            + ']><mediawiki><page><title>B</title><ns>0</ns><id>1</id><revision><text>&lol9;</text></revision>'
            '</page></mediawiki>')
    (tmp / "bomb.xml").write_text(bomb)
    add(Case("wikipedia/billion-laughs", prepare_argv("wikipedia-xml", tmp / "bomb.xml", tmp / "o21"), "error",
             names="bomb.xml", out=tmp / "o21"))
    (tmp / "cut.xml.bz2").write_bytes(wiki_dump(tmp / "whole.xml.bz2", pages).read_bytes()[:-40])
    add(Case("wikipedia/truncated-bz2", prepare_argv("wikipedia-xml", tmp / "cut.xml.bz2", tmp / "o22"), "error",
             names="cut.xml.bz2", out=tmp / "o22"))

    # pubmed
    ns = ('<?xml version="1.0"?><PubmedArticleSet xmlns:x="urn:x">'
          + "".join(f"<PubmedArticle><MedlineCitation><PMID>{i}</PMID><Article><ArticleTitle>T{i}</ArticleTitle>"
                    f"<Abstract><AbstractText>{TEXT}</AbstractText></Abstract></Article></MedlineCitation>"
                    "</PubmedArticle>" for i in range(1, 4))
          + "<x:PubmedArticle><MedlineCitation><PMID>9</PMID></MedlineCitation></x:PubmedArticle>"
          + "</PubmedArticleSet>")
    (tmp / "ns.xml.gz").write_bytes(gzip.compress(ns.encode()))
    add(Case("pubmed/namespaced-article", prepare_argv("pubmed-xml", tmp / "ns.xml.gz", tmp / "o23", "--skip-bad"),
             "skip", documents=3, out=tmp / "o23"))

    # prepare: outputs and settings
    corpus = jsonl(tmp / "corpus.jsonl", docs(5))
    full = user_folder(tmp)
    add(Case("prepare/out-not-empty", prepare_argv("jsonl", corpus, full), "error", names="user-folder", out=full))
    inside = tmp / "input-dir"
    inside.mkdir()
    jsonl(inside / "c.jsonl", docs(5))
    add(Case("prepare/out-inside-input", prepare_argv("jsonl", inside, inside / "prepared"), "error",
             names="input-dir", out=inside))
    (tmp / "a-file").write_text("x")
    add(Case("prepare/out-is-a-file", prepare_argv("jsonl", corpus, tmp / "a-file"), "error", names="a-file"))
    add(Case("prepare/segment-budget-0", prepare_argv("jsonl", corpus, tmp / "o24", "--segment-budget", "0"),
             "error", names="segment_budget", out=tmp / "o24"))
    add(Case("prepare/vocab-size-0", prepare_argv("jsonl", corpus, tmp / "o25", "--vocab-size", "0"), "error",
             names="vocab_size", out=tmp / "o25"))
    add(Case("prepare/workers-0", prepare_argv("jsonl", corpus, tmp / "o27", "--workers", "0"), "error",
             names="workers", out=tmp / "o27"))
    add(Case("jsonl/missing-text-field", prepare_argv("jsonl", jsonl(tmp / "notext.jsonl", docs(3), [
        '{"id": "t"}', '[1, 2, 3]']), tmp / "o28", "--skip-bad"), "skip", documents=3, out=tmp / "o28"))
    (tmp / "cut.jsonl.gz").write_bytes(gzip.compress(("\n".join(json.dumps(d) for d in docs(3)) + "\n").encode())[:-30])
    add(Case("jsonl/truncated-gzip", prepare_argv("jsonl", tmp / "cut.jsonl.gz", tmp / "o29"), "error",
             names="cut.jsonl.gz", out=tmp / "o29"))
    ws = wikispeedia(tmp / "ws4", good, "")
    (ws / "links.tsv").unlink()
    add(Case("wikispeedia/missing-links-tsv", prepare_argv("wikispeedia", ws, tmp / "o30"), "error",
             names="links.tsv", out=tmp / "o30"))
    (tmp / "summaries.json").write_text("{not json")
    add(Case("vital-articles/not-json", prepare_argv("vital-articles", tmp / "summaries.json", tmp / "o31"), "error",
             names="summaries.json", out=tmp / "o31"))
    add(Case("prepare/missing-tokenizer-folder", ["prepare", "--format", "jsonl", "--input", str(corpus),
                                                  "--tokenizer", str(tmp / "no" / "such" / "tokenizer"),
                                                  "--out", str(tmp / "o26"), "--no-progress"],
             "error", names="tokenizer", out=tmp / "o26"))
    return out


def earlier_runs(tmp: Path) -> list[Case]:
    """The earlier probe's cases of pretraining, resuming, export, fine-tuning and evaluation."""
    out: list[Case] = []
    add = out.append
    full = user_folder(tmp)
    (tmp / "a-file").write_text("x")

    # pretrain
    data = prepared_corpus(tmp / "pre")
    run = ["pretrain", "--data", str(data), "preset=tiny", "max_steps=2", "batch_size=4", "max_length=64",
           "progress=false", "tracker=none", "precision=fp32", "save_every=1"]
    add(Case("pretrain/out-is-a-file", [*run, "--out", str(tmp / "a-file")], "error", names="a-file"))
    add(Case("pretrain/max-length-1000", [*run, "--out", str(tmp / "r1"), "max_length=1000"], "error",
             names="max_length"))
    add(Case("pretrain/save-every-0", [*run, "--out", str(tmp / "r2"), "save_every=0"], "error", names="save_every"))
    (tmp / "not-prepared").mkdir()
    add(Case("pretrain/not-prepared", ["pretrain", "--data", str(tmp / "not-prepared"), "--out", str(tmp / "r3")],
             "error", names="not-prepared"))
    add(Case("pretrain/probabilities-not-1", [*run, "--out", str(tmp / "r4"), "p_linked=0.9"], "error",
             names="p_linked"))
    add(Case("pretrain/out-not-a-run", [*run, "--out", str(full)], "error", names="user-folder", out=full))
    add(Case("pretrain/batch-size-0", [*run, "--out", str(tmp / "r5"), "batch_size=0"], "error", names="batch_size"))
    # resuming: damaged checkpoints, a pointer to nowhere, another corpus, other settings
    for name, damage in (("flipped-bytes", lambda step: flip_bytes(step / "model.safetensors")),
                         ("truncated", lambda step: (step / "model.safetensors").write_bytes(
                             (step / "model.safetensors").read_bytes()[:1000])),
                         ("latest-points-nowhere", lambda step: (step.parent / "latest").write_text("step-99999999\n"))):
        folder = tmp / f"resume-{name}"
        cli(*run, "--out", folder)
        damage(folder / "checkpoints" / (folder / "checkpoints" / "latest").read_text().strip())
        add(Case(f"pretrain/resume-{name}", [*run, "--out", str(folder), "max_steps=3"], "ok"))
    folder = tmp / "resume-checks"
    cli(*run, "--out", folder)
    other = prepared_corpus(tmp / "other-corpus", 12, "x")
    add(Case("pretrain/resume-another-corpus", [*run, "--out", str(folder), "--data", str(other)], "error",
             names="corpus", out=folder))
    add(Case("pretrain/resume-another-preset", [*run, "--out", str(folder), "preset=mini"], "error", names="preset",
             out=folder))
    add(Case("pretrain/resume-fewer-steps", [*run, "--out", str(folder), "max_steps=1"], "error", names="max_steps",
             out=folder))
    add(Case("export/not-a-checkpoint", ["export", str(full), str(tmp / "e1")], "error", names="user-folder"))

    # finetune and evaluate
    ft_data = tmp / "ft-data"
    ft_data.mkdir()
    for split in ("train", "dev"):
        jsonl(ft_data / f"{split}.json", [{"id": f"{split}{i}", "sentence": TEXT, "label": str(i % 2)} for i in range(4)])
    add(Case("finetune/model-path-missing", ["finetune", "--task", "seqcls", "--model", str(tmp / "no-model"),
                                            "--data", str(ft_data), "--out", str(tmp / "f1")], "error",
             names="no-model"))
    add(Case("finetune/batch-size-0", ["finetune", "--task", "seqcls", "--model", str(tmp), "--data", str(tmp),
                                      "--out", str(tmp / "f2"), "batch_size=0"], "error", names="batch_size"))
    add(Case("finetune/out-not-empty", ["finetune", "--task", "seqcls", "--model", str(tmp / "no-model"), "--data",
                                       str(ft_data), "--out", str(full)], "error", names="user-folder", out=full))
    add(Case("finetune/unknown-setting", ["finetune", "--task", "seqcls", "--model", str(tmp), "--data", str(ft_data),
                                         "--out", str(tmp / "f3"), "learning_rate=1e-5"], "error",
             names="learning_rate"))
    add(Case("quickstart/out-not-empty", ["quickstart", "--smoke", "--out", str(full)], "error", names="user-folder",
             out=full))
    squad = tmp / "squad.json"
    squad.write_text(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"id": "q1", "question": "Where?",
                                                    "answers": [{"text": "France", "answer_start": 12}]}]}]}]}))
    add(Case("evaluate/squad-file-missing", ["evaluate", "squad", str(squad), str(tmp / "none.json")], "error",
             names="none.json"))
    (tmp / "nomatch.json").write_text(json.dumps({"other-id": "France"}))
    add(Case("evaluate/squad-predictions-match-nothing", ["evaluate", "squad", str(squad), str(tmp / "nomatch.json")],
             "ok"))
    (tmp / "blurb.json").write_text(json.dumps({"ChemProtein": 80.0}))
    add(Case("evaluate/blurb-unknown-task", ["evaluate", "blurb", str(tmp / "blurb.json")], "error",
             names="ChemProtein"))
    return out


def groups() -> list[tuple[tuple[str, ...], Callable[[Path], list[Case]]]]:
    """Every group of cases: (the name prefixes of its cases, what builds them)."""
    import hostile_surfaces

    return [(("html/", "jsonl/", "wikispeedia/", "wikipedia/", "pubmed/", "prepare/", "vital-articles/"),
             earlier_readers),
            (("pretrain/", "export/", "finetune/", "quickstart/", "evaluate/"), earlier_runs),
            *hostile_surfaces.GROUPS]


def cases(tmp: Path, prefixes: tuple[str, ...] = (), kinds: tuple[str, ...] = ()):
    """The cases whose name starts with one of ``prefixes`` and whose class is one of ``kinds``
    (empty: all), group by group; a group is built only when one of its cases can be wanted,
    and only when the cases before it have run."""
    for names, build in groups():
        if prefixes and not any(p.startswith(n) or n.startswith(p) for p in prefixes for n in names):
            continue
        if kinds and not set(kinds) & set(getattr(build, "kinds", ("earlier",))):
            continue
        group_tmp = tmp / build.__name__
        group_tmp.mkdir(exist_ok=True)
        for case in build(group_tmp):
            if (not prefixes or case.name.startswith(prefixes)) and (not kinds or case.kind in kinds):
                yield case


# -- running and judging ---------------------------------------------------------------------------

def snapshot(folder: Path | None) -> dict:
    if folder is None or not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def run_case(case: Case, timeout: float) -> dict:
    case.before = snapshot(case.out) if case.expect == "error" else {}
    started = time.perf_counter()
    if case.runner is not None:
        ran = case.runner(case, timeout)
    else:
        ran = run_command(case.argv, timeout, stdout_closed=case.stdout_closed, env=case.env)
    code, stderr = ran["exit"], ran["stderr"]
    stats = _stats(case.out)
    message = next((line for line in stderr.splitlines() if "error" in line.lower()), stderr.strip()[:200])
    verdict, why = judge(case, code, stderr, stats), ""
    if verdict == "good" and case.max_rss_mb is not None and ran.get("max_rss_mb", 0) > case.max_rss_mb:
        verdict, why = "bomb", f"{ran['max_rss_mb']:.0f} MB, more than {case.max_rss_mb:.0f}"
    if verdict == "good" and case.check is not None:
        found = case.check({**ran, "stats": stats})
        if found:
            verdict, _, why = found.partition(": ")
    return {"case": case.name, "class": case.kind, "exit": code, "message": (why or message)[:240],
            "documents": stats.get("documents"), "skipped": stats.get("documents_skipped"),
            "seconds": round(time.perf_counter() - started, 1), "max_rss_mb": round(ran.get("max_rss_mb", 0)),
            "verdict": verdict}


def run_command(argv: list[str], timeout: float, *, stdout_closed: bool = False, env: dict | None = None,
                wait: bool = True):
    """Run ``linkbert ARGV`` in a new session (a timeout ends its whole process group): ``{"exit"
    (None when it timed out), "stdout", "stderr", "max_rss_mb"}``; with ``wait=False`` the
    ``subprocess.Popen`` and the files its output goes to, for the caller to drive."""
    folder = Path(tempfile.mkdtemp(prefix="linkbert-case-"))
    out_file, err_file = open(folder / "stdout", "wb"), open(folder / "stderr", "wb")
    reader = None
    if stdout_closed:  # a pipe whose reading end is closed before the command writes: `| head` that has gone
        reader, stdout = os.pipe()
        os.close(reader)
    else:
        stdout = out_file
    process = subprocess.Popen([sys.executable, "-m", "linkbert.cli", *map(str, argv)], stdout=stdout,
                               stderr=err_file, stdin=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, **(env or {})})
    if stdout_closed:
        os.close(stdout)
    if not wait:
        return process, folder
    return finish(process, folder, timeout)


def finish(process: subprocess.Popen, folder: Path, timeout: float) -> dict:
    """Wait for ``process`` (at most ``timeout`` seconds: then its process group is killed), reap it,
    read its output (its head and tail: a bomb's message can be gigabytes). Its peak memory is
    its own high-water mark (/proc's ``VmHWM``), sampled while it runs: the rusage of a reaped
    child would count this process's memory too (it carries across fork and exec)."""
    deadline = time.monotonic() + timeout
    code, peak_kb = None, 0
    while True:
        peak_kb = max(peak_kb, _high_water_kb(process.pid))
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
            process.returncode = code
            break
        if time.monotonic() > deadline:
            kill_group(process.pid)
            _, status = os.waitpid(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.05)
    return {"exit": code, "stdout": _bounded_text(folder / "stdout"), "stderr": _bounded_text(folder / "stderr"),
            "max_rss_mb": peak_kb / 1024}


def _high_water_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _bounded_text(path: Path, keep: int = 1 << 17) -> str:
    """A file's text, its middle cut out when it is longer than twice ``keep`` bytes."""
    with open(path, "rb") as f:
        head = f.read(keep)
        f.seek(0, os.SEEK_END)
        size = f.tell()
        tail = b""
        if size > 2 * keep:
            f.seek(size - keep)
            tail = f.read()
            head += f"\n[... {size - 2 * keep:,} bytes ...]\n".encode()
        elif size > keep:
            f.seek(keep)
            tail = f.read()
    return (head + tail).decode("utf-8", "replace")


def kill_group(pid: int) -> None:
    """SIGKILL the process group a case's command leads (its own session: nothing else is in it)."""
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def snapshot_unchanged(folder: Path, before: dict) -> str | None:
    after = snapshot(folder)
    return None if after == before else f"silent: {folder.name} changed ({sorted(set(after) ^ set(before))[:3]})"


def _stats(folder: Path | None) -> dict:
    path = folder / "stats.json" if folder else None
    if path is None or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def judge(case: Case, code: int | None, stderr: str, stats: dict) -> str:
    if code is None:
        return "hang"
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    if case.expect == "killed":  # stopped by a signal on purpose: its ``check`` judges what it left
        return "good"
    if case.expect == "error":
        if code == 0:
            return "silent"
        errors = [line for line in stderr.splitlines() if line.startswith("linkbert ")]
        if code != 2 or len(errors) != 1 or case.names not in errors[0]:
            return "poor message"
        return "good" if snapshot(case.out) == case.before else "silent"
    if code != 0:
        return "wrong"
    kept = stats.get("documents")
    if case.documents is not None and kept != case.documents:
        return "silent"
    if case.expect == "skip" and not sum((stats.get("documents_skipped") or {}).values()):
        return "silent"
    return "good"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated name prefixes (default: every case)")
    parser.add_argument("--classes", default="", help="comma-separated classes: earlier, 1..7 (default: all)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a case counts as hung")
    args = parser.parse_args(argv)
    prefixes = tuple(p for p in args.only.split(",") if p)
    kinds = tuple(k for k in args.classes.split(",") if k)
    with tempfile.TemporaryDirectory(prefix="linkbert-hostile-") as folder:
        results = []
        try:
            for case in cases(Path(folder), prefixes, kinds):
                result = run_case(case, args.timeout)
                results.append(result)
                print(f"{result['verdict']:>12}  {case.kind:>7}  {case.name:<44} exit {result['exit']}  "
                      f"{result['message'][:100]}", flush=True)
        finally:
            import hostile_surfaces

            hostile_surfaces.release_small_disks()
    totals = {verdict: sum(r["verdict"] == verdict for r in results) for verdict in VERDICTS}
    by_class = {}
    for result in results:
        counts = by_class.setdefault(result["class"], {verdict: 0 for verdict in VERDICTS})
        counts[result["verdict"]] += 1
    print(f"{len(results)} cases: " + ", ".join(f"{k} {v}" for k, v in totals.items() if v))
    for kind, counts in sorted(by_class.items()):
        print(f"  class {kind}: {sum(counts.values())} cases: "
              + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    print(json.dumps({"cases": len(results), "totals": totals, "by_class": by_class, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
