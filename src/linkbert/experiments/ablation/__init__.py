"""``linkbert experiment ablation``: the paper's link ablations (SPEC §2) in miniature, on Wikispeedia.

    linkbert experiment ablation --data-root $LINKBERT_DATA --out runs/ablation            # CPU mini, ~90 min
    linkbert experiment ablation --out runs/ablation-gpu --mode gpu  # one H100, 6 min; --data-root from $LINKBERT_DATA

The claim under test: at equal compute, pretraining with document links beats single-document
pretraining on cross-document tasks; hyperlinks beat TF-IDF links, which beat random links
(= BERT); diversity sampling and the DRP objective each help.

The grid is variant x init x seed. Each **cell** pretrains (same preset, same number of steps
within an init, same data order for the same seed), exports the model and evaluates it on

1. extractive QA on SQuAD (``dev-v1.1-part-a.json`` split by article: the first two thirds of
   the articles train, the last sixth is the test set), plain and with 1-2 distracting
   paragraphs from other articles added before/after each test context (the paper's Table 3;
   the model fine-tuned on plain contexts is scored on both), and few-shot (10% of the
   training questions, same recipe, more epochs);
2. Wikispeedia subject-category classification (top-level category of ``categories.tsv``, the
   document's first segments as input): a single-document control;
3. held-out link prediction, zero-shot: 10% of the hyperlinks (and the reverse link of each
   withheld pair) are removed from every pretraining graph; for a sample of them the true
   target is ranked among K non-linked candidates by the relation head's log P(linked) on
   ``[CLS] first segment of source [SEP] first segment of candidate [SEP]`` (the ``bert``
   variant: NSP's log P(isNext); ``no-drp`` has no head: n/a), and, for every variant, by the
   cosine of the two first segments' mean-pooled embeddings;
4. HotpotQA distractor QA by question type, for the inits that start from a trained model
   (MiniLM, the masked-LM first stage).

Each mode runs its own evaluations (``Mode.evaluations``): the ``gpu`` mode, link prediction and
HotpotQA only, from the ``first-stage`` init (docs/ablation.md, "On a GPU").

Layout of ``--out``::

    prepared-<budget>/        Wikispeedia prepared once, MiniLM's tokenizer (every init shares it)
    graphs/{hyperlinks,tfidf,random,none}/   pretraining graphs (withheld pairs removed from each)
    graphs/withheld.npy       the withheld (source, target) links
    eval/{qa,category,hotpotqa}/   fine-tuning data;  eval/linkpred.json  the link-prediction queries
    first-stage/, probe/      the masked-LM first stage (init first-stage), the planner's probe cell
    plan.json                 steps per init, fixed at the first run (a resumed grid keeps them)
    cells/<init>/<variant>/seed-<s>/result.json   written last, atomically: a cell with it is done
    curve-steps/<n>/<init>/<variant>/seed-<s>/    the in-grid compute curve's cells, when planned
    results.json, results.md  every per-seed figure; mean ± std tables, paired comparisons, beside the paper's

A finished cell is never recomputed; an unfinished one resumes from its last pretraining
checkpoint and redoes only the evaluations it lacks.

The modules: ``grid.py`` (variants, inits, modes, where things live), ``assets.py`` (the prepared
corpus, the graphs, the evaluation data), ``cell.py`` (pretrain, fine-tune and score one cell),
``plan.py`` (the costs measured on the device, the plan), ``run.py`` (the loop over cells),
``results.py`` (results.json, results.md), ``command.py`` (its settings, ``AblationSettings``).
What it shares with the graph benchmark is in ``experiments/`` (``layout.py``, ``steps.py``,
``frame.py``, ``grid.py``, ``first_stage.py``, ``budget.py``, ``paired.py``). The library parts live in
the library: the withheld links in ``linkbert.graph``, random links in ``linkbert.link_builders``,
the link-prediction queries and scorers in ``linkbert.link_prediction``, their ranking metrics in
``linkbert.metrics``.
"""
