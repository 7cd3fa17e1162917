"""The pretraining model.

* ``modeling.py``: what the model is: presets, ``LinkBertForPreTraining`` and its output;
* ``encoder.py``: BERT's forward pass written out for pretraining speed (no padding, and only
  the rows a loss reads in the last layer);
* ``kernels.py``: CPU kernels (attention, dropout, the MLM loss, the tied embedding), each
  tested against the plain PyTorch computation it replaces;
* ``loading.py``: a model to pretrain, from a preset or a BERT checkpoint folder.
"""

from linkbert.model.loading import init_model
from linkbert.model.modeling import PRESETS, LinkBertForPreTraining, LinkBertPreTrainingOutput, preset_config

__all__ = ["PRESETS", "LinkBertForPreTraining", "LinkBertPreTrainingOutput", "init_model", "preset_config"]
