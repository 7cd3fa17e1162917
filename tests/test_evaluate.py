"""``linkbert evaluate squad | blurb | runs`` through the CLI entry point."""

from __future__ import annotations

import json
import re

import pytest

from linkbert.cli import main
from linkbert.evaluate import canonical_dataset
from linkbert.metrics import BLURB_TASKS
from linkbert.paper import PAPER_RESULTS

# per-task published numbers (checked against the SPEC in test_metrics)
PAPER_BLURB = PAPER_RESULTS["blurb"]


def _write(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return str(path)


def _squad_dataset():
    qas = [
        {"id": "q1", "question": "Who won?", "answers": [{"answer_start": 0, "text": "Denver Broncos"}]},
        {"id": "q2", "question": "Where?", "answers": [{"answer_start": 30, "text": "Santa Clara"},
                                                      {"answer_start": 30, "text": "Santa Clara, California"}]},
        {"id": "q3", "question": "How many?", "answers": [{"answer_start": 50, "text": "1"}]},
    ]
    context = "Denver Broncos won the game in Santa Clara, California with 1 point."
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


# ---------------------------------------------------------------- squad


def test_squad_scores_like_the_official_script(tmp_path, capsys):
    dataset = _write(tmp_path / "dev.json", _squad_dataset())
    predictions = _write(tmp_path / "pred.json", {"q1": "the Denver Broncos", "q2": "in Santa Clara"})
    assert main(["evaluate", "squad", dataset, predictions]) == 0
    out, err = capsys.readouterr()
    scores = json.loads(out)
    # q1 EM 1 F1 1; q2 EM 0, F1 vs "Santa Clara": [in santa clara] & [santa clara] -> P 2/3, R 1 -> 0.8,
    # vs "Santa Clara, California": P 2/3, R 2/3 -> 2/3; best 0.8; q3 unanswered: 0
    assert scores == {"exact_match": 33.33, "f1": 60.0}  # 100/3 and 100 * 1.8/3, to the tables' 2 decimals
    assert out.strip() == '{"exact_match": 33.33, "f1": 60.0}'
    assert "Unanswered question q3 will receive score 0." in err


def test_squad_wrong_schema_names_the_file(tmp_path, capsys):
    dataset = _write(tmp_path / "dev.json", {"data": [{"title": "T", "paragraphs": [{"context": "c"}]}]})
    predictions = _write(tmp_path / "pred.json", {})
    assert main(["evaluate", "squad", dataset, predictions]) == 2
    err = capsys.readouterr().err
    assert "dev.json, data[0].paragraphs[0]" in err and "'qas'" in err


def test_squad_predictions_must_map_ids_to_text(tmp_path, capsys):
    dataset = _write(tmp_path / "dev.json", _squad_dataset())
    predictions = _write(tmp_path / "pred.json", {"q1": ["Denver"]})
    assert main(["evaluate", "squad", dataset, predictions]) == 2
    assert "pred.json, question q1: answer is list, not text" in capsys.readouterr().err


def test_squad_malformed_json_names_the_line(tmp_path, capsys):
    dataset = tmp_path / "dev.json"
    dataset.write_text('{"version": "1.1",\n "data": [,]}', encoding="utf-8")
    predictions = _write(tmp_path / "pred.json", {})
    assert main(["evaluate", "squad", str(dataset), predictions]) == 2
    assert "dev.json, line 2:" in capsys.readouterr().err


@pytest.mark.data
def test_squad_gold_answers_score_100_on_real_data(shared_data, tmp_path, capsys):
    dataset_path = shared_data / "squad" / "dev-v1.1-part-a.json"
    dataset = json.loads(dataset_path.read_text(encoding="utf-8"))
    gold = {qa["id"]: qa["answers"][0]["text"]
            for article in dataset["data"] for p in article["paragraphs"] for qa in p["qas"]}
    assert len(gold) == 5696
    predictions = _write(tmp_path / "pred.json", gold)
    assert main(["evaluate", "squad", str(dataset_path), predictions]) == 0
    assert json.loads(capsys.readouterr().out) == {"exact_match": 100.0, "f1": 100.0}


# ---------------------------------------------------------------- blurb


def test_blurb_command_prints_score_and_type_means(tmp_path, capsys):
    scores = _write(tmp_path / "scores.json", {task: PAPER_BLURB["BioLinkBERT-base"][task] for task in BLURB_TASKS})
    assert main(["evaluate", "blurb", scores]) == 0
    printed = capsys.readouterr().out
    result = json.loads(printed)
    assert result["score"] == 83.39  # BioLinkBERT-base
    assert set(result["by_type"]) == {"NER", "PICO", "relation extraction", "sentence similarity",
                                      "document classification", "question answering"}
    # what a user reads has the tables' 2 decimals, never float noise (the mean is 83.38949999999998)
    numbers = re.findall(r"\d+\.\d+", printed)
    assert numbers and all(len(number.split(".")[1]) <= 2 for number in numbers), printed
    assert '"score": 83.39' in printed and '"NER": 86.39' in printed


def test_blurb_command_lists_missing_tasks(tmp_path, capsys):
    scores = _write(tmp_path / "scores.json", {"NCBI-disease": 88.0})
    assert main(["evaluate", "blurb", scores]) == 2
    err = capsys.readouterr().err
    assert "scores.json" in err and "missing: BC5CDR-chem, BC5CDR-disease, BC2GM" in err


# the BLURB leaderboard's own task names (microsoft.github.io/BLURB)
LEADERBOARD = {"BC5-chem": "BC5CDR-chem", "BC5-disease": "BC5CDR-disease", "NCBI-disease": "NCBI-disease",
               "BC2GM": "BC2GM", "JNLPBA": "JNLPBA", "EBM PICO": "ebmnlp", "ChemProt": "chemprot", "DDI": "DDI",
               "GAD": "GAD", "BIOSSES": "BIOSSES", "HoC": "HoC", "PubMedQA": "pubmedqa", "BioASQ": "bioasq"}


def test_blurb_command_takes_the_leaderboards_names(tmp_path, capsys):
    paper = PAPER_BLURB["BioLinkBERT-base"]
    scores = _write(tmp_path / "scores.json", {shown: paper[ours] for shown, ours in LEADERBOARD.items()})
    assert main(["evaluate", "blurb", scores]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == 83.39
    mixed = {("EBM-PICO" if t == "ebmnlp" else t.upper()): paper[t] for t in BLURB_TASKS}  # any case
    assert main(["evaluate", "blurb", _write(tmp_path / "mixed.json", mixed)]) == 0
    # and `evaluate runs` reads them through the same table
    assert {canonical_dataset(shown) for shown in LEADERBOARD} == set(BLURB_TASKS)


@pytest.mark.parametrize("scores, message", [
    ({"ChemProtein": 1.0}, "task ChemProtein: not a BLURB task name; accepted (any case): BC5CDR-chem, "),
    ({"EBM-PICOS": 1.0}, "ebmnlp, chemprot, DDI, GAD, BIOSSES, HoC, pubmedqa, bioasq, pico, ebm-pico, ebm pico, bc5-chem"),
    ({"chemprot": 1.0, "ChemProt": 2.0}, "task ChemProt: chemprot is given twice"),
])
def test_blurb_command_names_a_bad_task(tmp_path, capsys, scores, message):
    assert main(["evaluate", "blurb", _write(tmp_path / "scores.json", scores)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


# ---------------------------------------------------------------- runs


def _run(root, name, dataset, test, dev=None, model="LinkBERT-base"):
    run_dir = root / name
    run_dir.mkdir(parents=True)
    record = {"dataset": dataset, "task": "tokcls", "metric": "seqeval_f1",
              "test": {"f1": test / 100, "main": test}, "model": model, "seconds": 1.0}
    if dev is not None:
        record["dev"] = {"f1": dev / 100, "main": dev}
    _write(run_dir / "metrics.json", record)


def test_runs_mean_std_and_partial_blurb(tmp_path, capsys):
    runs = tmp_path / "runs"
    _run(runs, "ncbi/seed1", "NCBI-disease", 88.0, dev=90.0)
    _run(runs, "ncbi/seed2", "NCBI-disease", 90.0, dev=91.0)
    _run(runs, "bioasq/seed1", "BioASQ", 80.0)  # another spelling of bioasq
    _run(runs, "squad/seed1", "squad", 85.5)
    _run(runs, "medqa", "medqa_usmle", 40.0)
    out = tmp_path / "tables"
    assert main(["evaluate", "runs", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == (out / "tables.md").read_text(encoding="utf-8").strip()
    tables = json.loads((out / "tables.json").read_text(encoding="utf-8"))

    ncbi = next(r for r in tables["blurb"]["rows"] if r["dataset"] == "NCBI-disease")
    # test 88 and 90: mean 89, sample std sqrt(((-1)^2 + 1^2) / 1) = sqrt(2)
    assert ncbi["ours"]["LinkBERT-base"]["test"] == pytest.approx({"mean": 89.0, "std": 2 ** 0.5, "n": 2})
    assert ncbi["paper"]["BioLinkBERT-base"] == 88.18
    # partial BLURB on test: NER type mean 89 (NCBI only), QA type mean 80 (bioasq only) -> 84.5
    score = tables["blurb"]["score"]["LinkBERT-base"]["test"]
    assert score["score"] == pytest.approx(84.5) and score["partial"] and score["n_tasks"] == 2
    assert "| NCBI-disease | 89.00 ± 1.41 (2) | 90.50 ± 0.71 (2) |" in printed
    assert "84.50 (partial: 2/13 tasks)" in printed
    squad = next(r for r in tables["mrqa"]["rows"] if r["dataset"] == "squad")
    assert squad["ours"]["LinkBERT-base"]["test"] == {"mean": 85.5, "std": None, "n": 1}
    assert squad["paper"]["LinkBERT-base"] == 90.1
    medqa = next(r for r in tables["medqa"]["rows"] if r["dataset"] == "medqa_usmle")
    assert medqa["paper"]["BioLinkBERT-large"] == 44.6
    assert "| squad | 85.50 (1) | — |" in printed


def test_runs_full_blurb_score_and_models_side_by_side(tmp_path, capsys):
    runs = tmp_path / "runs"
    for task in BLURB_TASKS:
        _run(runs, f"large/{task}", task, PAPER_BLURB["BioLinkBERT-large"][task], model="BioLinkBERT-large")
    _run(runs, "tiny/ncbi", "NCBI-disease", 50.0, model="tiny")
    assert main(["evaluate", "runs", str(runs)]) == 0
    tables = json.loads((runs / "tables.json").read_text(encoding="utf-8"))
    assert tables["models"] == ["BioLinkBERT-large", "tiny"]
    full = tables["blurb"]["score"]["BioLinkBERT-large"]["test"]
    assert round(full["score"], 2) == 84.30 and not full["partial"] and full["n_tasks"] == len(BLURB_TASKS)
    assert tables["blurb"]["score"]["tiny"]["test"]["partial"]
    assert "| **BLURB score** | 84.30 | — | 50.00 (partial: 1/13 tasks) | — | 81.10 | 83.39 | 84.30 |" \
        in capsys.readouterr().out


def test_runs_unknown_dataset_goes_to_other(tmp_path, capsys):
    runs = tmp_path / "runs"
    _run(runs, "x", "my_task", 70.0)
    assert main(["evaluate", "runs", str(runs)]) == 0
    assert "## Other datasets" in capsys.readouterr().out


def test_runs_bad_metrics_file_is_named(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    _write(runs / "a" / "metrics.json", {"dataset": "GAD", "test": {"f1": 0.8}})
    assert main(["evaluate", "runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "metrics.json, test" in err and '"main"' in err


def test_runs_without_any_run(tmp_path, capsys):
    assert main(["evaluate", "runs", str(tmp_path)]) == 2
    assert "no metrics.json" in capsys.readouterr().err


@pytest.mark.parametrize("predictions, warning", [
    ({"other1": "Denver", "other2": "x"}, "none of its 2 predictions is for a question of"),
    ({}, "none of its 0 predictions is for a question of"),
    ({"q1": "Denver Broncos", "zz": "x"}, "1 of the 3 questions answered (2 score 0); 1 predictions match no question"),
])
def test_squad_predictions_that_miss_the_questions_are_a_warning_line(tmp_path, capsys, predictions, warning):
    dataset = _write(tmp_path / "dev.json", _squad_dataset())
    path = _write(tmp_path / "pred.json", predictions)
    assert main(["evaluate", "squad", dataset, path]) == 0
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(lines) == 1 and warning in lines[0], err
    assert set(json.loads(out)) == {"exact_match", "f1"}


def test_squad_predictions_of_every_question_give_no_warning(tmp_path, capsys):
    dataset = _write(tmp_path / "dev.json", _squad_dataset())
    path = _write(tmp_path / "pred.json", {"q1": "a", "q2": "b", "q3": "c"})
    assert main(["evaluate", "squad", dataset, path]) == 0
    assert "warning" not in capsys.readouterr().err


def test_scores_are_rounded_to_the_tables_decimals_at_every_depth():
    from linkbert.evaluate import DIGITS, rounded

    assert DIGITS == 2
    assert rounded({"score": 83.38949999999998, "by_type": {"NER": 86.0149999, "n": 13}, "name": "x"}) == \
        {"score": 83.39, "by_type": {"NER": 86.01, "n": 13}, "name": "x"}


def test_every_subcommand_declares_its_settings(capsys):
    from linkbert.cli import parse
    from linkbert.evaluate import SUBCOMMANDS

    args = parse(["evaluate", "runs", "runs/", "--out", "tables"])
    assert (args.runs_dir, args.out, args.settings_class) == ("runs/", "tables", SUBCOMMANDS["runs"][0])
    args = parse(["evaluate", "squad", "dev.json", "pred.json"])
    assert (args.dataset_file, args.prediction_file) == ("dev.json", "pred.json")
    with pytest.raises(SystemExit):
        parse(["evaluate", "blurb"])  # its scores file is required
    assert "SCORES_FILE" in capsys.readouterr().err


# ---------------------------------------------------------------- hostile input (issue 24)

NESTED = "[" * 100000 + "]" * 100000


@pytest.mark.parametrize("what", ["dataset", "predictions"])
def test_squad_files_nested_too_deeply_are_one_error_naming_the_file(tmp_path, capsys, what):
    files = {"dataset": _write(tmp_path / "dev.json", _squad_dataset()),
             "predictions": _write(tmp_path / "pred.json", {"q1": "Denver Broncos"})}
    bad = tmp_path / f"{what}-nested.json"
    bad.write_text('{"data": ' + NESTED + "}")
    files[what] = str(bad)
    assert main(["evaluate", "squad", files["dataset"], files["predictions"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "nested too deeply" in err


def test_runs_and_blurb_files_nested_too_deeply_name_the_file(tmp_path, capsys):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "metrics.json").write_text('{"dataset": "GAD", "dev": ' + NESTED + "}")
    assert main(["evaluate", "runs", str(tmp_path / "runs")]) == 2
    assert "metrics.json" in capsys.readouterr().err
    (tmp_path / "blurb.json").write_text('{"GAD": ' + NESTED + "}")
    assert main(["evaluate", "blurb", str(tmp_path / "blurb.json")]) == 2
    assert "blurb.json" in capsys.readouterr().err


@pytest.mark.parametrize("task, value", [("GAD", "NaN"), ("GAD", "Infinity"), ("GAD", "-Infinity"), ("GAD", "250"),
                                         ("HoC", "-3.5"), ("BIOSSES", "-120"), ("BIOSSES", "NaN")])
def test_blurb_refuses_scores_that_are_not_on_its_scale(tmp_path, capsys, task, value):
    scores = {t: 80.0 for t in BLURB_TASKS}
    text = json.dumps(scores).replace(f'"{task}": 80.0', f'"{task}": {value}')
    (tmp_path / "scores.json").write_text(text)
    assert main(["evaluate", "blurb", str(tmp_path / "scores.json")]) == 2
    err = capsys.readouterr().err
    assert f"scores.json, task {task}: score" in err and "to 100" in err and capsys.readouterr().out == ""


def test_blurb_takes_a_negative_pearson_r_for_biosses(tmp_path, capsys):
    scores = {**{t: 80.0 for t in BLURB_TASKS}, "BIOSSES": -12.5}
    assert main(["evaluate", "blurb", _write(tmp_path / "scores.json", scores)]) == 0
    assert json.loads(capsys.readouterr().out)["by_type"]["sentence similarity"] == -12.5
