"""params.yaml checked as a whole, as the check stage and `restore` check it: the schema's checks
(seq2seq.config.schema), then the model config against its class (seq2seq.models.builder)."""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from seq2seq.config.params import load_params
from seq2seq.models.builder import check_model


def check_file(params: str | os.PathLike, source: str | None = None) -> DictConfig:
    """ConfigError naming `source` (default: the path) and the key, else the checked params."""
    cfg = load_params(params, source)
    check_model(OmegaConf.to_container(cfg.model, resolve=False), source or str(params))
    return cfg
