"""Tests of ``linkbert prepare`` (``linkbert.prepare``), one file per module."""
