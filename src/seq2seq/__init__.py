"""Reproducible sequence-to-sequence training: DVC + Hydra + Lightning + SentencePiece + sacreBLEU + MLflow."""

__version__ = "0.1.0"
