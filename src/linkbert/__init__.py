"""LinkBERT: pretraining language models with document links.

The package is organised along the data's way through it:
``corpus`` (readers) -> ``links``/``graph`` -> ``tokenization``/``segment`` -> ``store`` -> ``prepare``.
Heavy optional dependencies are imported where they are used, so ``import linkbert`` stays light.
"""

__version__ = "0.1.0"
