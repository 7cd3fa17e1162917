"""The Python half of ``benchmarks/gpu_evidence.sh`` (run by it; see its first lines):

    python benchmarks/gpu_evidence.py excerpts DATA DEST   # the smoke's small excerpts of the shared data
    python benchmarks/gpu_evidence.py report OUT WORK      # OUT/results.md and OUT/results.json

``excerpts``: connected pieces of the same corpora the GPU run reads, small enough for CPU smoke
modes: Cora's first documents in the order of a breadth-first walk over its citations (the links
among them kept, the label too), and a Wikispeedia folder of the articles a walk over its
hyperlinks reaches (their texts, the links among them, their categories); SQuAD and HotpotQA
are linked as they are (the smoke modes take a few questions of each).

``report``: one section per experiment (``graph``, ``ablation``): how its section ended (exit
status, seconds, its time limit: ``WORK/<name>.status``) and its grid's own results.md (its title
dropped, its headings one level down); results.json holds the environment, each section's status and its
grid's results.json.
"""

from __future__ import annotations

import json
import sys
import tarfile
from collections import deque
from pathlib import Path
from urllib.parse import unquote

SECTIONS = {"graph": "Cora: did the links help? (`linkbert experiment graph`)",
            "ablation": "Wikispeedia and HotpotQA: the link ablations (`linkbert experiment ablation`)"}
CORA_DOCUMENTS = 160
WIKISPEEDIA_ARTICLES = 60


def walk(start: str, neighbours: dict[str, list[str]], limit: int) -> list[str]:
    """The first ``limit`` nodes of a breadth-first walk from ``start`` (then from the next unseen
    node in ``neighbours``' order, if the walk ends early)."""
    seen, order = set(), []
    for root in [start, *neighbours]:
        queue = deque([root])
        while queue and len(order) < limit:
            node = queue.popleft()
            if node in seen or node not in neighbours:
                continue
            seen.add(node)
            order.append(node)
            queue.extend(n for n in neighbours[node] if n not in seen)
        if len(order) >= limit:
            break
    return order


def cora_excerpt(source: Path, dest: Path, limit: int = CORA_DOCUMENTS) -> Path:
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {r["id"]: r for r in records}
    keep = set(walk(records[0]["id"], {r["id"]: [str(x) for x in r.get("links", [])] for r in records}, limit))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", encoding="utf-8") as f:
        for node in sorted(keep, key=list(by_id).index):
            record = by_id[node]
            f.write(json.dumps({**record, "links": [x for x in record.get("links", []) if str(x) in keep]}) + "\n")
    return dest


def wikispeedia_excerpt(source: Path, dest: Path, limit: int = WIKISPEEDIA_ARTICLES) -> Path:
    def rows(name: str) -> list[list[str]]:
        text = (source / name).read_text(encoding="utf-8")
        return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]

    links = rows("links.tsv")
    neighbours: dict[str, list[str]] = {}
    for a, b in links:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, [])
    keep = set(walk(links[0][0], neighbours, limit))
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "links.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in links if a in keep and b in keep))
    for name in ("categories.tsv", "articles.tsv"):
        kept = [row for row in rows(name) if row[0] in keep]
        (dest / name).write_text("".join("\t".join(row) + "\n" for row in kept), encoding="utf-8")
    with tarfile.open(source / "plaintext_articles.tar.gz") as tar, \
            tarfile.open(dest / "plaintext_articles.tar.gz", "w:gz") as out:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name.endswith(".txt") and (name[:-4] in keep or unquote(name[:-4]) in keep):
                out.addfile(member, tar.extractfile(member))
    return dest


def excerpts(data: Path, dest: Path) -> None:
    cora_excerpt(data / "cora" / "cora.jsonl", dest / "cora" / "cora.jsonl")
    wikispeedia_excerpt(data / "wikispeedia", dest / "wikispeedia")
    for name in ("squad", "hotpotqa"):
        if (data / name).exists() and not (dest / name).exists():
            (dest / name).symlink_to((data / name).resolve())
    print(f"excerpts in {dest}: Cora {CORA_DOCUMENTS} documents, Wikispeedia {WIKISPEEDIA_ARTICLES} articles")


def report(out: Path, work: Path) -> None:
    env = (out / "env.txt").read_text(errors="replace") if (out / "env.txt").exists() else ""
    smoke = (work / "smoke").exists()
    lines = ["# Evidence at GPU scale: did the links help?", "",
             ("**A CPU smoke run** (`SMOKE=1`): tiny excerpts and the smoke modes; its figures say nothing about "
              "links, only that every stage runs." if smoke else
              "The GPU run of `benchmarks/gpu_evidence.sh`: each experiment's grid in its `gpu` mode, sized by its "
              "planner from a probe on this device."),
             "", "Environment:", "", "```", env.strip() or "(not recorded)", "```"]
    written = {"smoke": smoke, "environment": env, "sections": {}}
    for name, title in SECTIONS.items():
        status_file = work / f"{name}.status"
        if not status_file.exists():
            continue
        status = json.loads(status_file.read_text())
        folder = work / name
        grid = json.loads((folder / "results.json").read_text()) if (folder / "results.json").exists() else None
        written["sections"][name] = {"status": status, "results": grid}
        ended = ("finished" if status["exit"] == 0 else
                 f"**stopped at its time limit** ({status['limit']} s): the cells finished by then are below"
                 if status["exit"] in (124, 137) else f"**failed** (exit {status['exit']}; see {name}.log)")
        lines += ["", f"## {title}", "", f"Section `{name}`: {ended}; {status['seconds']} s of a {status['limit']} s "
                  f"limit; grid budget {status['budget_minutes']} min.", ""]
        if (folder / "results.md").exists():  # its title dropped, its sections under this one
            grid_lines = (folder / "results.md").read_text().splitlines()
            if grid_lines and grid_lines[0].startswith("# "):
                grid_lines = grid_lines[1:]
            while grid_lines and not grid_lines[0].strip():
                grid_lines = grid_lines[1:]
            lines += ["#" + line if line.startswith("#") else line for line in grid_lines]
        else:
            lines.append("No results were written (the grid stopped before its first cell).")
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps(written, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'results.md'} and {out / 'results.json'}: sections {', '.join(written['sections'])}")


if __name__ == "__main__":
    command, first, second = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    {"excerpts": excerpts, "report": report}[command](first, second)
