"""Every command in README.md is exercised, by ``.ci/run`` or by a named test, and still parses.

* The commands are the README's ```bash blocks (``\\`` continuations joined, comments dropped).
* ``EXERCISED`` maps each of them to where it runs: ``.ci/run`` (which must then really contain
  the corresponding command) or a test ``tests/FILE.py::NAME`` (which must exist). A README
  command that matches no entry, or an entry that matches no README command, fails.
* Each ``linkbert ...`` invocation (also under ``torchrun ... -m linkbert.cli``) is parsed with the
  real argument parser, so a renamed or removed option fails here; ``pretrain`` overrides and
  config file, ``finetune`` recipe and overrides, ``convert`` sources are checked against the real
  settings. Repository paths the commands name exist,
  and so (``data``) do the shared-data paths (``$D/...``).
* The benchmark scripts, which no other test runs, run here in a smoke mode (``slow``): the
  README's arguments plus the smallest ones the script accepts; the last line printed must be
  one JSON object with the expected keys.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ".ci/run"

# README command (a regex matched at its start) -> where it runs: a test "tests/FILE.py::NAME", or
# CI with the regexes that .ci/run (or examples/smoke.sh, which it calls) must match, each one line.
EXERCISED: list[tuple[str, str, tuple[str, ...]]] = [
    # the two commands: CI installs the same extras and runs the quickstart's smoke mode and the tests
    (r"python3 -m venv .*pip install -e \"\.\[demo\]\" && linkbert quickstart$", CI,
     (r"pip install .*-e \"\.\[(\w+,)*demo(,\w+)*\]\"", r"^linkbert quickstart --smoke( |$)")),
    (r"python3 -m venv .*pip install -e \"\.\[test\]\" && python -m pytest$", CI,
     (r"pip install .*-e \"\.\[(\w+,)*test(,\w+)*\]\"", r"^python -m pytest --runslow$")),
    # prepare
    (r"linkbert prepare --format jsonl --input examples/tiny_corpus\.jsonl ", CI,
     (r"^linkbert prepare --format jsonl --input examples/tiny_corpus\.jsonl --tokenizer train --vocab-size 400 ",)),
    (r"linkbert prepare --format wikispeedia ",
     "tests/corpus/test_wikispeedia.py::test_real_dataset_articles_and_links"),
    # pretrain, export (the CLI run, killed and run again: it resumes), torchrun
    (r"linkbert pretrain ", "tests/pretrain/test_pretrain_resume.py::test_sigkill_then_resume_gives_the_same_weights"),
    (r"linkbert export ", "tests/test_export.py::test_a_run_folder_exports_its_latest_checkpoint"),
    (r"torchrun .*-m linkbert\.cli pretrain ", "tests/pretrain/test_pretrain.py::test_two_process_torchrun_matches_one_process"),
    # fine-tune, evaluate, convert
    (r"linkbert finetune --task tokcls .*--recipe configs/finetune/NCBI-disease\.yaml",
     "tests/finetune/test_run.py::test_real_examples"),
    (r"linkbert evaluate runs ", "tests/test_evaluate.py::test_runs_full_blurb_score_and_models_side_by_side"),
    (r"linkbert convert NCBI-disease ", "tests/finetune/test_convert.py::test_converter_matches_shipped_files"),
    # experiments
    (r"linkbert experiment ablation ",
     "tests/experiments/test_ablation.py::test_the_whole_grid_runs_resumes_and_writes_results"),
    (r"linkbert experiment graph ",
     "tests/experiments/test_graph_experiment.py::test_the_smoke_grid_and_curve_run_end_to_end"),
]
# a benchmark command (the README's or docs/'): test_benchmark_runs_in_smoke_mode runs each one
BENCHMARK = r"(LINKBERT_DATA=\S+ )?python benchmarks/\w+\.py"

# dummy values of the shell variables the README's commands use
SHELL_VARIABLES = {"D": "/shared/data", "LINKBERT_DATA": "/shared/data", "M": "/models/minilm", "RANK": "0",
                   "HOST": "node0"}


# -- reading the README -------------------------------------------------------------------------

def _strip_comment(line: str) -> str:
    """``line`` without a ``# ...`` comment (a ``#`` at a word start, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def bash_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks of a Markdown text, in order."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        pending = ""
        for line in block.splitlines():
            line = _strip_comment(line)
            if not line.strip():
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            commands.append(pending + line.strip())
            pending = ""
        assert not pending, f"README: a ```bash block ends with a continuation: {pending}"
    return commands


def script_commands(path: Path) -> list[str]:
    """The command lines of a shell script (continuations joined, comments dropped)."""
    return bash_commands("```bash\n" + path.read_text(encoding="utf-8") + "```\n")


README_COMMANDS = bash_commands(README.read_text(encoding="utf-8"))
# the commands of docs/*.md: parsed like the README's (a renamed option or setting fails), the
# benchmarks among them run in a smoke mode; which test runs each of them is not tracked
DOCS_COMMANDS = [command for path in sorted((ROOT / "docs").glob("*.md"))
                 for command in bash_commands(path.read_text(encoding="utf-8"))]
ALL_COMMANDS = README_COMMANDS + DOCS_COMMANDS


def _command_substitutions(command: str) -> list[tuple[int, int]]:
    """(start, end) of each ``$(...)`` in ``command``, nesting and quotes respected."""
    spans, start = [], command.find("$(")
    while start != -1:
        depth, quote, i = 0, None, start + 1
        while i < len(command):
            char = command[i]
            if quote:
                quote = None if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        assert depth == 0, f"README: unbalanced $( in: {command}"
        spans.append((start, i + 1))
        start = command.find("$(", i + 1)
    return spans


def substituted(command: str) -> str:
    """``command`` with ``$(...)`` and shell variables replaced by dummy values."""
    for start, end in reversed(_command_substitutions(command)):
        command = command[:start] + "/dummy/command-output" + command[end:]

    def variable(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in SHELL_VARIABLES, f"README uses ${name}: give it a dummy value in SHELL_VARIABLES"
        return SHELL_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", variable, command)


def invocations(command: str) -> list[list[str]]:
    """The simple commands of ``command`` (split at ``&&``), leading ``VAR=value`` dropped."""
    result, argv = [], []
    for token in [*shlex.split(substituted(command)), "&&"]:
        if token == "&&":
            if argv:
                result.append(argv)
            argv = []
        elif argv or not re.fullmatch(r"\w+=.*", token):
            argv.append(token)
    return result


def linkbert_argv(argv: list[str]) -> tuple[str, list[str]] | None:
    """(how it is run, its arguments) of a ``linkbert`` invocation; None for other programs."""
    if argv[:2] == ["nice", "-n"]:  # run at a lower priority: the command is what follows
        argv = argv[3:]
    if argv[0] == "linkbert":
        return "linkbert", argv[1:]
    if argv[0] == "torchrun":
        return "torchrun", argv[1:]
    if argv[0] in ("python", "python3") and argv[1:3] == ["-m", "linkbert.cli"]:
        return "linkbert", argv[3:]
    return None


LINKBERT_INVOCATIONS = [(kind, args) for command in ALL_COMMANDS for argv in invocations(command)
                        if (found := linkbert_argv(argv)) for kind, args in [found]]


def _id(kind: str, args: list[str]) -> str:
    return " ".join([kind, *args])[:70]


# -- every command is exercised ------------------------------------------------------------------

def test_the_readme_commands_are_found():
    assert len(README_COMMANDS) >= 10 and len(DOCS_COMMANDS) >= 20, (README_COMMANDS, DOCS_COMMANDS)
    first, second = README_COMMANDS[:2]
    assert first.startswith("python3 -m venv") and first.endswith("linkbert quickstart"), first
    assert second.startswith("python3 -m venv") and second.endswith("python -m pytest"), second
    assert not any(c.startswith("#") or "\\" in c for c in README_COMMANDS)


def test_bash_commands_joins_continuations_and_drops_comments():
    text = "```bash\n# a comment\nlinkbert a --x 1 \\\n    --y '# kept'   # dropped\n```\n```python\nnot = 1\n```\n"
    assert bash_commands(text) == ["linkbert a --x 1 --y '# kept'"]
    assert invocations('A=1 python -c "x" && linkbert b --in $(python -c "print(f())") --n $RANK') == [
        ["python", "-c", "x"], ["linkbert", "b", "--in", "/dummy/command-output", "--n", "0"]]


def test_every_readme_command_is_exercised():
    missing = [c for c in README_COMMANDS if not any(re.match(entry[0], c) for entry in EXERCISED)]
    assert not missing, ("README commands that neither .ci/run nor a test runs (add them to EXERCISED "
                         "in tests/test_readme.py, with the test or CI line that runs them):\n  " + "\n  ".join(missing))
    stale = [entry[0] for entry in EXERCISED if not any(re.match(entry[0], c) for c in README_COMMANDS)]
    assert not stale, f"EXERCISED entries that match no README command: {stale}"


def _ci_lines() -> list[str]:
    lines = script_commands(ROOT / CI)
    if "bash examples/smoke.sh" in lines:
        lines += script_commands(ROOT / "examples" / "smoke.sh")
    return lines


def test_ci_runs_the_commands_mapped_to_it():
    lines = _ci_lines()
    for readme, where, patterns in (e for e in EXERCISED if e[1] == CI):
        for pattern in patterns:
            assert any(re.search(pattern, line) for line in lines), (
                f"README command /{readme}/ is mapped to {CI}, but no line of it (or of examples/smoke.sh) "
                f"matches /{pattern}/")


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_the_mapped_tests_exist():
    for readme, where, *_ in EXERCISED:
        if where == CI:
            continue
        file, name = where.split("::")
        assert (ROOT / file).is_file(), f"README command /{readme}/ is mapped to {where}: no file {file}"
        assert name in _test_functions(ROOT / file), f"README command /{readme}/ is mapped to {where}: no such test"


# -- every linkbert command parses with the real parser ----------------------------------------

def check_linkbert(args: list[str]) -> None:
    from linkbert.cli import COMMANDS, build_parser

    command = " ".join(["linkbert", *args])
    assert args and args[0] in COMMANDS, f"README: `{command}`: no such command"
    parser = build_parser(only=args[0])
    try:
        namespace = parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"README: `{command}` does not parse (see the argparse error above)")
    if args[0] == "pretrain":
        from linkbert import settings
        from linkbert.pretrain.settings import PretrainConfig

        assert namespace.settings_file and (ROOT / namespace.settings_file).is_file(), \
            f"README: `{command}`: no config file"
        settings.from_arguments(PretrainConfig, namespace)  # unknown or mistyped settings raise
    elif args[0] == "finetune":
        from linkbert.finetune.command import build_config

        recipe = namespace.settings_file  # --recipe
        assert recipe and (ROOT / recipe).is_file(), f"README: `{command}`: no recipe file"
        build_config(namespace)  # unknown or mistyped settings, a recipe for another task raise
    elif args[0] == "convert":
        from linkbert.finetune.convert import _SOURCE_BY_KEY

        assert namespace.source.lower() in _SOURCE_BY_KEY, f"README: `{command}`: unknown source {namespace.source}"


def check_torchrun(args: list[str]) -> None:
    from torch.distributed.run import get_args_parser

    try:
        namespace = get_args_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"README: `torchrun {' '.join(args)}`: torchrun's options do not parse")
    assert namespace.module and namespace.training_script == "linkbert.cli", args
    check_linkbert(namespace.training_script_args)


@pytest.fixture
def exact_options(monkeypatch):
    """No abbreviated options: argparse would take ``--vocab`` for ``--vocab-size`` (until another
    option starts with it); the README spells every option in full."""
    monkeypatch.setattr(argparse.ArgumentParser, "_get_option_tuples", lambda self, option_string: [])


def test_abbreviated_options_fail(exact_options):
    with pytest.raises(pytest.fail.Exception):
        check_linkbert(["prepare", "--format", "jsonl", "--input", "x", "--tokenizer", "train", "--out", "o",
                        "--vocab", "9"])


@pytest.mark.parametrize("kind, args", LINKBERT_INVOCATIONS, ids=[_id(*i) for i in LINKBERT_INVOCATIONS])
def test_linkbert_command_parses(kind, args, monkeypatch, exact_options):
    monkeypatch.chdir(ROOT)  # configs/ paths are relative to the repository
    {"linkbert": check_linkbert, "torchrun": check_torchrun}[kind](args)


def test_every_linkbert_command_is_parsed():
    kinds = {(kind, args[0]) for kind, args in LINKBERT_INVOCATIONS}
    from linkbert.cli import COMMANDS

    documented = {name for name in COMMANDS if any(f"linkbert {name}" in c for c in README_COMMANDS)}
    assert {"quickstart", "prepare", "pretrain", "export", "finetune", "evaluate", "experiment", "convert"} <= documented
    assert {("linkbert", name) for name in documented} <= kinds
    assert any(kind == "torchrun" for kind, _ in kinds)


def test_command_substitutions_import_what_exists():
    """``$(python -c "...")`` in a command: the code compiles and what it imports exists."""
    import importlib

    found = 0
    for command in ALL_COMMANDS:
        for start, end in _command_substitutions(command):
            argv = shlex.split(command[start + 2:end - 1])
            assert argv[:2] == ["python", "-c"], f"README: unexpected command substitution in: {command}"
            for node in ast.walk(ast.parse(argv[2])):
                if isinstance(node, ast.ImportFrom):
                    module = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(module, alias.name), f"README: {node.module} has no {alias.name}"
            found += 1
    assert found


def test_repository_paths_in_commands_exist():
    for command in ALL_COMMANDS:
        for argv in invocations(command):
            for token in argv:
                path = token.split("=", 1)[-1]
                if re.match(r"(examples|configs|benchmarks|\.ci)/", path):
                    assert (ROOT / path).exists(), f"README: {path} does not exist (in: {command})"


def test_the_pretrain_export_finetune_chain_is_consistent():
    """The export reads the run the pretrain command writes (its latest checkpoint); fine-tuning reads the export."""
    runs = {a[a.index("--out") + 1] for kind, a in LINKBERT_INVOCATIONS if kind == "linkbert" and a[0] == "pretrain"}
    exports = [a for kind, a in LINKBERT_INVOCATIONS if kind == "linkbert" and a[0] == "export"]
    assert exports and all(export[1] in runs for export in exports), (exports, runs)
    models = [a[a.index("--model") + 1] for kind, a in LINKBERT_INVOCATIONS if a[0] == "finetune"]
    assert any(export[2] in models for export in exports)


@pytest.mark.data
def test_shared_data_paths_exist(shared_data):
    for command in ALL_COMMANDS:
        for rest in re.findall(r"\$D(/[^\s\"')]*)?", command):
            assert (shared_data / rest.lstrip("/")).exists(), f"README: $D{rest} is not in {shared_data} (in: {command})"


# -- the benchmarks, in a smoke mode --------------------------------------------------------------

# script -> (the smallest arguments it accepts, appended to the README's: later ones win; the keys of its JSON line)
BENCHMARKS = {
    "pretrain_throughput.py": (["--configs", "tiny", "--precisions", "fp32", "--steps", "1", "--rounds", "1",
                                "--warmup", "0"], {"tiny/fp32", "_meta"}),
    "compare_revisions.py": (["--rev", "HEAD", "--configs", "tiny", "--precisions", "fp32", "--steps", "1",
                              "--rounds", "1", "--warmup", "0"], {"tiny/fp32", "_meta"}),
    "link_builders.py": (["--documents", "2000", "--words", "50", "--vocab", "5000"],
                         {"documents", "words_per_document", "title", "tfidf"}),
    "prepare.py": (["--max-documents", "300", "--graph-nodes", "1000", "--graph-edges", "5000"],
                   {"encode_batch", "pipeline", "replicated", "synthetic_graph", "summary"}),
    "long_documents.py": (["--sizes", "0.1,0.2"], {"sizes", "seconds_per_mb_ratio"}),
    "hostile_inputs.py": (["--only", "jsonl/empty-file,prepare/segment-budget-0"], {"cases", "totals", "results"}),
    "device_step_profile.py": (["--preset", "tiny", "--seq", "64", "--micro-batch", "4", "--loss-batch", "4",
                                "--max-predictions", "10"], {"linkbert", "hf", "_meta"}),
    "any_encoder_wikispeedia.py": (["--steps", "2", "--kinds", "roberta", "--tokenizer-documents", "100",
                                    "--vocab-size", "1000"], {"roberta"}),
    "gpu_step_timeline.py": (["--preset", "tiny", "--seq", "128", "--batch", "8", "--steps", "2", "--warmup", "1",
                              "--profiled-steps", "1", "--workers", "0", "--max-predictions", "24", "--no-compile"],
                             {"step_ms", "loader_wait_ms", "tokens_per_s", "model_tflops"}),
    "title_mention_quality.py": (["--examples", "1"],
                                 {"documents", "overall", "recall_ceiling", "against_mentioned_gold", "random_precision"}),
}


def _benchmark_params():
    params = []
    for command in dict.fromkeys(ALL_COMMANDS):  # each distinct command once
        if re.match(BENCHMARK, command):
            marks = [pytest.mark.slow] + ([pytest.mark.data] if command.startswith("LINKBERT_DATA=") else [])
            params.append(pytest.param(command, marks=marks, id=shlex.split(command.split("python ")[1])[0]))
    return params


@pytest.mark.parametrize("command", _benchmark_params())
def test_benchmark_runs_in_smoke_mode(command, request, tmp_path):
    argv = invocations(command)[0]
    script = Path(argv[1]).name
    assert argv[0] == "python" and script in BENCHMARKS, f"README: a benchmark without a smoke mode here: {command}"
    smallest, keys = BENCHMARKS[script]
    if "--data" in argv:  # a prepared corpus: the example corpus, prepared here as examples/smoke.sh does
        prepared = tmp_path / "prepared"
        subprocess.run(["bash", "examples/smoke.sh", str(prepared)], check=True, cwd=ROOT, capture_output=True)
        argv[argv.index("--data") + 1] = str(prepared)
    env = dict(os.environ)
    if "data" in request.keywords:
        env["LINKBERT_DATA"] = str(request.getfixturevalue("shared_data"))
    result = subprocess.run([sys.executable, *argv[1:], *smallest], check=False, cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(last, dict) and keys <= set(last), sorted(last)
    if script == "pretrain_throughput.py":
        assert last["tiny/fp32"]["own_tokens_per_s"] > 0 and last["tiny/fp32"]["stock_tokens_per_s"] > 0
    if script == "hostile_inputs.py":  # the cases the smoke mode runs must each end as a careful tool ends them
        assert last["cases"] == 2 and last["totals"]["good"] == 2, last
    if script == "link_builders.py":
        assert last["documents"] == 2000 and last["title"]["links"] > 0 and last["tfidf"]["links"] > 0
