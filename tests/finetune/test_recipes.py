"""The recipes beside the released scripts: every difference explained, docs/recipes.md up to date."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from linkbert.finetune import recipes

ROOT = Path(__file__).resolve().parents[2]


def _rows(recipes_dir: Path = ROOT / recipes.RECIPES):
    return recipes.compare(ROOT / recipes.RELEASED, recipes_dir)


def test_every_released_task_has_a_recipe_and_no_difference_is_unexplained():
    rows = _rows()
    assert len({(row.script, row.folder) for row in rows}) == 41  # 13 + 13 BLURB, 6 + 6 MRQA, 1 + 2 MedQA/MMLU
    assert not [row for row in rows if row.ours is None]
    assert not [(row.recipe.name, row.setting) for row in rows if row.unexplained]
    differing = {row.setting for row in rows if row.why is not None}
    assert differing == {"precision"}  # fp16 -> auto, explained


def test_a_changed_recipe_is_an_unexplained_difference(tmp_path):
    copy = tmp_path / "finetune"
    shutil.copytree(ROOT / recipes.RECIPES, copy)
    recipe = copy / "large" / "JNLPBA.yaml"
    recipe.write_text(recipe.read_text().replace("seed: 3", "seed: 4"))
    (copy / "large" / "GAD.yaml").unlink()
    rows = _rows(copy)
    assert [(row.folder, row.setting, row.released, row.ours) for row in rows if row.unexplained] == [
        ("JNLPBA_hf", "seed", 3, 4)]
    assert [row.folder for row in rows if row.why == "no recipe" and row.setting == "lr"] == ["GAD_hf"]


def test_released_flags_and_the_trainers_defaults_become_our_settings():
    ner = recipes.released_settings({"program": "run_ner.py", "return_macro_metrics": True, "fp16": True,
                                     "learning_rate": 2e-5, "warmup_steps": 100})
    assert (ner["task"], ner["metric"], ner["precision"], ner["lr"]) == ("tokcls", "pico", "fp16", 2e-5)
    assert (ner["warmup_steps"], ner["warmup_ratio"]) == (100, 0.0)  # warmup_steps wins, as in the HF Trainer
    assert (ner["adam_beta2"], ner["seed"], ner["epochs"], ner["batch_size"]) == (0.999, 42, 3.0, 8)
    assert recipes.released_settings({"program": "run_multiple_choice.py", "do_train": False})["eval_only"]
    with pytest.raises(ValueError, match="--label_smoothing_factor has no setting of ours"):
        recipes.released_settings({"program": "run_qa.py", "label_smoothing_factor": 0.1})


def test_recipes_doc_is_what_the_recipes_give():
    expected = recipes.render(_rows())
    assert (ROOT / recipes.DOC).read_text(encoding="utf-8") == expected, (
        "docs/recipes.md is stale: run `python -m linkbert.finetune.recipes`")
