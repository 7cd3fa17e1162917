"""``linkbert quickstart``: the whole pipeline on a real linked corpus, in minutes, on a CPU.

    pip install -e ".[demo]" && linkbert quickstart            # Wikipedia Vital Articles, ~10 min on 2 cores
    linkbert quickstart --corpus jsonl:$LINKBERT_DATA/cora/cora.jsonl --baseline bert --steps 300
    linkbert quickstart --smoke                                 # a 1-minute check of every stage (CI)
    linkbert quickstart --corpus jsonl:papers.jsonl --text-field abstract --edges cites.csv  # prepare's reader options

Stages, each announced with what it does and timed:

1. **prepare**: read the corpus, train a WordPiece vocabulary on it, recover links (the default
   corpus has none: title mentions, see ``link_builders``), write the segment store and graph;
2. **pretrain**: the CPU-sized ``mini`` preset, MLM + 3-way document relation prediction, for a
   fixed number of steps (``--steps``: the same model on a busy machine as on an idle one), or
   with ``--budget-minutes`` for a wall-clock budget (``max_steps`` is measured so the
   learning-rate schedule ends with it); with ``--baseline bert`` a second run, MLM +
   next-sentence prediction (BERT's contiguous or random pairs), with the same settings, steps
   and seed: twice the time;
3. **evaluate**: held-out documents' pairs: MLM accuracy, relation accuracy per class, chance 1/3
   (BERT's NSP: 1/2); a model that has not learned anything measurable yet is said so, and the
   comparisons built on it draw no verdict;
4. **fine-tune**: document classification on the corpus's real labels (``corpus/labels.py``: the
   Vital-Article topic, or a record's ``label``, ``--label-field`` naming another), on a fixed
   split of the labelled documents by a hash of their id; once from the pretrained encoder, once
   from BERT's (with a baseline) and once from the same architecture with the same initial
   weights but no pretraining. A corpus without usable labels (none, a single class, under 2
   documents a class) skips it, saying why;
5. **report**: ``OUT/report/`` with ``metrics.json``, PNG plots and one self-contained ``index.html``;
   every accuracy comes with its binomial 95% interval, since one run on one seed cannot resolve
   differences smaller than its test set's noise.

Everything lands in ``OUT`` (default ``quickstart/``): ``data/`` (prepared corpus), ``pretrain/``
(run folder: checkpoints, ``metrics.jsonl``), ``pretrain-bert/`` (the baseline's), ``models/``
(exported BERT folders), ``finetune/``, ``work/`` and ``report/``, and the marker
``.linkbert-quickstart``. A rerun starts each stage afresh, replacing these stage folders, so
``OUT`` must be a folder the quickstart wrote (it has the marker), new or empty: a user's folder
is never deleted unasked. ``--overwrite`` writes into any folder: its stage folders are replaced,
its other files kept.

Modules, each depending only on those listed before it:

* ``pipeline``: what the quickstart runs of the other commands' stages (``linkbert.prepare``,
  ``linkbert.pretrain``): every import of theirs is there;
* ``config``: ``QuickstartConfig``, every setting of the command;
* ``output``: the output folder, its marker and stage folders;
* ``report``: ``report/``: ``metrics.json``, plots and the HTML page;
* ``corpus``: which corpus, its reader options (prepare's ``--id-field``, ``--edges``, ...), its
  subset, its links (stage 1);
* ``pretraining``: LinkBERT's run of ``--steps`` (or for a budget), BERT's beside it (stages 2 and 3);
* ``classification``: the document classification data, runs and their comparison (stage 4);
* ``figures``: the figures of ``metrics.json`` and the stage lines;
* ``stages``: the five stages in order (:func:`stages.run`);
* ``command``: ``linkbert quickstart``'s arguments and exit status.
"""
