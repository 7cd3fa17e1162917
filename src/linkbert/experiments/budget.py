"""How a grid's wall-clock budget becomes pretraining time per cell (both grids' planners call it).

The planner measures on the device first (seconds per pretraining step, the fixed cost of a
pretraining run, the seconds of one cell's evaluations); this module does the arithmetic and the
policy, in seconds (each grid turns seconds into steps per init):

* ``split_budget``: what is left of the budget after the evaluations and the runs' fixed costs is
  pretraining time, of which the masked-LM first stage (``experiments.first_stage``) takes
  ``first_stage_share`` and every pretraining cell an equal part of the rest: the same steps for
  every variant (equal compute).
* ``plan_cells``: the grid that fits: as many seeds as asked, or, where the mode allows, fewer
  (never below its ``min_seeds``) rather than cells shorter than its ``target_steps``; then each optional
  variant (``no-drp``) and an in-grid compute curve only if it costs the cells at most
  ``extras_max_cost`` of their steps. What was left out, and why, is said in ``notes``.
"""

from __future__ import annotations


def split_budget(*, budget_s: float, spent_s: float, run_overhead_s: float, eval_s: float, runs: int,
                 evaluations: int, cell_units: float | None = None, first_stage_share: float = 0.0,
                 fixed_s: float = 0.0) -> dict:
    """``{"pretrain_seconds_per_cell", "first_stage_seconds", "cell_units", "expected_seconds"}``.

    ``spent_s``: what the grid took before planning (preparation, the probes); ``runs``: the
    pretraining runs still to come (the first stage is one more when ``first_stage_share`` > 0);
    ``evaluations``: the cells still to evaluate; ``cell_units``: the pretraining time is shared
    in units of one cell's (default ``runs``; a compute curve's shorter runs count as fractions);
    ``fixed_s``: anything else still to come (the other seeds' bag-of-words floors).
    ``expected_seconds``: what the planned grid should take from its start, ``spent_s`` included."""
    runs += first_stage_share > 0
    units = runs - (first_stage_share > 0) if cell_units is None else cell_units
    left = budget_s - spent_s - evaluations * eval_s - fixed_s - runs * run_overhead_s
    pretraining = max(0.0, left)
    first_seconds = pretraining * first_stage_share
    per_cell = (pretraining - first_seconds) / units if units > 0 else 0.0
    expected = spent_s + fixed_s + evaluations * eval_s + runs * run_overhead_s + pretraining
    return {"pretrain_seconds_per_cell": per_cell, "first_stage_seconds": first_seconds, "cell_units": units,
            "expected_seconds": round(expected, 1)}


def plan_cells(*, budget_s: float, spent_s: float, step_s: float, run_overhead_s: float, eval_s: float,
               runs_per_seed: int, evaluations_per_seed: int, seeds: int, min_seeds: int | None = None,
               optional: dict[str, int] | None = None, curve_fractions=(), curve_runs_per_seed: int = 2,
               first_stage_share: float = 0.0, done_evaluations: int = 0, fixed_per_seed_s: float = 0.0,
               target_steps: int = 1, max_steps: int = 100_000, extras_max_cost: float = 1 / 3) -> dict:
    """The grid that fits ``budget_s``.

    Per seed the grid has ``runs_per_seed`` pretraining runs and ``evaluations_per_seed``
    evaluations (``done_evaluations`` of them already made, in ``spent_s``); ``step_s`` is the
    slowest init's step, by which ``target_steps`` is judged: the steps per cell the
    seeds shrink for (down to ``min_seeds``) and the extras may not take a cell below. ``optional``: ``{variant: its runs
    (= evaluations) per seed}``, added in order when the budget allows; ``curve_fractions``: the
    in-grid curve's points as fractions of a cell's steps, ``curve_runs_per_seed`` runs each
    (linkbert and bert). ``fixed_per_seed_s``: a cost of every seed after the first.

    Returns ``{"seeds", "optional": [included], "curve": bool, "steps", "first_stage_steps"
    (at ``step_s``, at most ``max_steps``), "pretrain_seconds_per_cell", "first_stage_seconds",
    "expected_seconds" (of those steps), "notes": [why something was left out]}``; a grid whose
    cells still fall short of ``target_steps`` is returned as it is (the caller judges it)."""
    optional = optional or {}

    def split(n: int, extra: dict[str, int], curve: bool) -> dict:
        runs = (runs_per_seed + sum(extra.values())) * n
        evaluations = (evaluations_per_seed + sum(extra.values())) * n - done_evaluations
        units = float(runs)
        if curve:
            runs += len(curve_fractions) * curve_runs_per_seed * n
            evaluations += len(curve_fractions) * curve_runs_per_seed * n
            units += sum(curve_fractions) * curve_runs_per_seed * n
        return split_budget(budget_s=budget_s, spent_s=spent_s, run_overhead_s=run_overhead_s, eval_s=eval_s,
                            runs=runs, evaluations=evaluations, cell_units=units,
                            first_stage_share=first_stage_share, fixed_s=fixed_per_seed_s * (n - 1))

    def steps(result: dict) -> int:
        return min(max_steps, int(result["pretrain_seconds_per_cell"] / step_s))

    notes = []
    n = seeds
    chosen = split(n, {}, False)
    while n > (min_seeds or seeds) and steps(chosen) < target_steps:
        fewer = split(n - 1, {}, False)
        notes.append(f"{n} seeds would leave {steps(chosen)} pretraining steps per cell (aim {target_steps}): "
                     f"{n - 1} seeds")
        n, chosen = n - 1, fewer
    extra: dict[str, int] = {}
    for name, runs in optional.items():
        trial = split(n, {**extra, name: runs}, False)
        if steps(trial) >= max(target_steps, (1 - extras_max_cost) * steps(chosen)):
            extra[name], chosen = runs, trial
        else:
            notes.append(f"{name} left out: it would leave {steps(trial)} steps per cell instead of "
                         f"{steps(chosen)} (an optional variant may cost at most {extras_max_cost:.0%} of them)")
    curve = False
    if curve_fractions:
        trial = split(n, extra, True)
        if steps(trial) >= max(target_steps, (1 - extras_max_cost) * steps(chosen)):
            curve, chosen = True, trial
        else:
            extra_cells = len(curve_fractions) * curve_runs_per_seed * n
            notes.append(f"no compute curve: its {extra_cells} more cells (linkbert and bert at "
                         f"{', '.join(f'{f:g}' for f in curve_fractions)} of the steps, {n} seeds) would leave "
                         f"{steps(trial)} steps per cell instead of {steps(chosen)} (it may cost at most "
                         f"{extras_max_cost:.0%} of them); the evaluations dominate at this budget")
    first_steps = min(max_steps, int(chosen["first_stage_seconds"] / step_s))
    planned = (steps(chosen) * chosen["cell_units"] + first_steps) * step_s  # what the steps take, capped or not
    pool = chosen["pretrain_seconds_per_cell"] * chosen["cell_units"] + chosen["first_stage_seconds"]
    return {"seeds": n, "optional": list(extra), "curve": curve, "steps": steps(chosen),
            "first_stage_steps": first_steps, **chosen,
            "expected_seconds": round(chosen["expected_seconds"] - pool + planned, 1), "notes": notes}
