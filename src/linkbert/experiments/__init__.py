"""Experiments built from the pipeline's parts (``linkbert experiment NAME``: ``command.py``).

* ``graph/``: did the links help, on my data? A link benchmark for any linked corpus prepare reads
  (docs/graph_experiment.md).
* ``ablation/``: the paper's link ablations in miniature on Wikispeedia (docs/ablation.md).

What both grids share, each piece with one owner: ``layout.py`` (the folders of ``--out`` they
lay out alike), ``frame.py`` (the command's frame), ``steps.py`` (a cell's cached steps; the one
module that reaches the pretraining, export and fine-tuning APIs), ``grid.py`` (the variant
record, the MiniLM init), ``first_stage.py`` (the masked-LM first stage, init ``first-stage``),
``budget.py`` (the planner's arithmetic and policy), ``paired.py`` (the seed-paired comparisons
and verdicts, whether a variant learned at all, the compute curve's gap). ``graph/`` and ``ablation/`` import from these and from the library,
never from each other.
"""
