"""Experiments built from the pipeline's parts (``linkbert experiment NAME``: ``command.py``).

* ``graph/``: did the links help, on my data? A link benchmark for any linked JSON-lines corpus
  (docs/graph_experiment.md).
* ``ablation/``: the paper's link ablations in miniature on Wikispeedia (docs/ablation.md).

What both grids share, each piece with one owner: ``layout.py`` (the folders of ``--out`` they
lay out alike), ``frame.py`` (the command's frame), ``steps.py`` (a cell's cached steps; the one
module that reaches the pretraining, export and fine-tuning APIs), ``grid.py`` (the variant
record, the MiniLM init). ``graph/`` and ``ablation/`` import from these and from the library,
never from each other.
"""
