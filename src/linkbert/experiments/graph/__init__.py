"""``linkbert experiment graph``: did the links help, on my data? A link benchmark for any
labelled (or not), linked corpus in a format ``linkbert prepare`` reads (``--corpus FORMAT:PATH``
and prepare's field options).

    linkbert experiment graph --corpus jsonl:$LINKBERT_DATA/cora/cora.jsonl --out runs/graph      # ~60 min, 2 cores
    linkbert experiment graph --corpus jsonl:$LINKBERT_DATA/cora/cora.jsonl --out runs/graph --curve 2,8,32
    linkbert experiment graph --corpus jsonl:$LINKBERT_DATA/cora/cora.jsonl --out runs/gpu --mode gpu  # one H100, 6 min

The corpus is prepared once; a fixed 10% of its linked pairs is withheld (both directions) from
every pretraining graph. Variants pretrained at equal compute (the same steps and batch) from
the same initial weights: ``bert`` (NSP), ``linkbert`` (the remaining links), ``random-links``
(random links, same out-degrees), and on request ``no-drp`` (LinkBERT's pairs, MLM only) and
``tfidf`` (TF-IDF top-k links); ``init`` (no further pretraining) and a bag-of-words model are
the floors. Each model is scored on few-shot classification (k per class, fine-tuned and a
linear probe, when the corpus has labels) and on predicting the withheld links (relation head,
embedding cosine). Seeds pair every variant's cells; ``linkbert`` is compared with ``bert`` and
with ``random-links`` per metric (``metrics.paired_comparison``) and given a verdict.

Layout of ``--out``::

    corpus.json                the corpus's identity: format, files, sha256 (a rerun on another corpus is refused)
    prepared-<budget>/         the corpus prepared once with the init's tokenizer
    graphs/{links,random,tfidf,none}/, graphs/withheld.npy    pretraining graphs, the withheld pairs
    eval/linkpred.json         the link-prediction queries; eval/fewshot/seed-<s>/   each seed's k-shot sets
    first-stage/, probe/       the masked-LM first stage (init first-stage), the planner's probe cell
    plan.json, curve_plan.json  steps per cell, fixed at the first run (a resumed run keeps them)
    cells/<variant>/seed-<s>/result.json, curve/<m>min/<variant>/seed-<s>/result.json,
    curve-steps/<n>/<variant>/seed-<s>/result.json (the in-grid curve)
                               written last: a cell with it is done and never recomputed
    results.json, results.md   every figure, mean ± std, the paired comparisons and verdicts

The modules: ``grid.py`` (variants, modes, paths), ``assets.py`` (prepared corpus, graphs, queries,
few-shot sets), ``evaluate.py`` (the evaluations and the bag-of-words floor), ``cell.py`` (one
cell), ``plan.py`` (the costs measured on the device, the plan), ``run.py`` (the grid, the curves),
``results.py``, ``command.py`` (its settings, ``GraphSettings``). What it shares with the ablation
grid is in ``experiments/`` (``layout.py``, ``steps.py``, ``frame.py``, ``grid.py``,
``first_stage.py``, ``budget.py``, ``paired.py``); the library parts live in the library: the withheld
pairs in ``linkbert.graph`` (``DocGraph.withhold_pairs``), the link-prediction queries and scorers
in ``linkbert.link_prediction``. Sizes and the timing of the default plan: docs/graph_experiment.md.
"""
