"""The pretraining stage (``linkbert pretrain``).

* ``command.py``: the command line;
* ``settings.py``: ``PretrainConfig``, every setting of a run, and ``load_config``;
* ``run.py``: ``Run``, the training loop: steps, evaluation, checkpoints, resume;
* ``data.py``: the corpus opened for pretraining, its pair samplers and collator, the batches of
  every step on every rank;
* ``run_folder.py``: what a run folder may hold and which run a checkpoint belongs to;
* ``run_log.py``: ``config.yaml``, ``metrics.jsonl`` and TensorBoard scalars.
"""
