"""The pretraining model.

* ``pretraining.py``: what the model is (``LinkPretrainingModel``: a transformers masked-LM
  model, a pooler and the relation head), its two backends' forward passes and its checkpoint
  format;
* ``heads.py``: what it needs of a masked-LM architecture (its head, the masked rows) and the
  loss statistics it returns;
* ``bert_cpu.py``: the ``bert-cpu`` backend, BERT's forward written out for CPU speed (no
  padding, only the rows a loss reads in the last layer), on the CPU kernels of ``kernels.py``;
* ``presets.py``: the architectures a run can start from scratch;
* ``loading.py``: the one place that decides the backend and builds a model from a preset, a
  transformers checkpoint or a pretraining checkpoint.
"""
