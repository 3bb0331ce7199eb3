"""params.yaml: where the pipeline reads its parameters, and how conf/ is composed into it.

Stages never compose conf/ themselves: `dvc exp run -S` writes its overrides into params.yaml,
so reading params.yaml is the only way every override is honoured (treeverse/dvc#10186).
params.yaml reaches a user from git, `dvc exp apply` and `seq2seq restore`, so it is read as data
and checked (seq2seq.config.schema) before anything is imported or called.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seq2seq.config.schema import validate
from seq2seq.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def repo_root() -> Path:
    """The repository the pipeline belongs to. DVC sets $DVC_ROOT for its stages; for
    `dvc exp run --temp/--queue` it names the real repository, not the temporary copy."""
    return Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()


def compose(overrides: list[str] | None = None, conf_dir: str | os.PathLike | None = None) -> DictConfig:
    """Compose conf/ with Hydra exactly as DVC does for `dvc exp run -S` (used by tests and tools)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    conf_dir = Path(conf_dir or CONF_DIR).resolve()
    with initialize_config_dir(str(conf_dir), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
    OmegaConf.resolve(cfg)
    return cfg


def load_params(path: str | os.PathLike = "params.yaml", source: str | None = None) -> DictConfig:
    """Load params.yaml as a read-only config; missing or unknown keys raise ConfigError naming
    `source` (default: the path)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found (run from the repository root, or `dvc exp run`)")
    cfg = OmegaConf.load(path)
    validate(cfg, source=source or str(path))
    OmegaConf.set_readonly(cfg, True)
    OmegaConf.set_struct(cfg, True)
    return cfg

