"""Reproducible sequence-to-sequence training: DVC + Hydra + Lightning + SentencePiece + sacreBLEU + MLflow."""

import os

# OpenMP threads that wait for work sleep instead of spinning on a core another process could use
# (see seq2seq.threads). libgomp reads this once, when torch loads it: every stage imports this
# package first. A value set in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
