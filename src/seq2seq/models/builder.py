"""The one model builder: a model config (from params.yaml, a checkpoint or a registered model)
in, a model out. Config checking, training and inference all build through it.

A model config is data that may come from anyone (git, `dvc exp apply`, the MLflow registry), so
the builder calls nothing a config names except the constructors of this package's models, and
passes them only plain values:

    {"_target_": "seq2seq.models.Seq2Seq", "hidden_size": 256, "cell": "lstm", ...}

`_target_` must name a model class of `seq2seq.models` (checked as text before any import); every
other value is a number, a string, a boolean, null or a list of those. Anything else raises
ConfigError naming the key, before any constructor runs.
"""

from __future__ import annotations

import importlib
import inspect
import re

import torch

from seq2seq.errors import ConfigError, did_you_mean
from seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID

MODEL_PACKAGE = "seq2seq.models"
MODEL_CLASSES = ("Seq2Seq", "ConvSeq2Seq", "Transformer")
# Filled in by the builder from the tokenizer, never in a config.
RUNTIME_ARGS = ("src_vocab_size", "tgt_vocab_size", "pad_id", "bos_id", "eos_id")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def is_plain(value) -> bool:
    """A number, string, boolean or null, or a list of those."""
    scalar = (bool, int, float, str, type(None))
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, scalar) for v in value)
    return isinstance(value, scalar)


def model_class(target, source: str = "model config") -> type[torch.nn.Module]:
    """The class `target` names ("seq2seq.models.<Class>", one of MODEL_CLASSES). ConfigError
    naming `model._target_` otherwise; nothing outside this package is ever imported."""
    module, _, name = str(target).rpartition(".")
    if module != MODEL_PACKAGE or not _NAME.fullmatch(name) or name not in MODEL_CLASSES:
        raise ConfigError(f"{source}: model._target_={target!r} is not a model class of {MODEL_PACKAGE} "
                          f"(one of {', '.join(f'{MODEL_PACKAGE}.{c}' for c in MODEL_CLASSES)})")
    return getattr(importlib.import_module(MODEL_PACKAGE), name)


def check_plain(model_cfg: dict, source: str = "model config") -> None:
    """ConfigError naming the first key of `model_cfg` whose value is not plain data, or that is
    one of Hydra's special keys (`_args_`, `_partial_`, ...): a config never calls anything."""
    for key, value in model_cfg.items():
        if key == "_target_":
            continue
        if str(key).startswith("_") and str(key).endswith("_"):
            raise ConfigError(f"{source}: model.{key}: special keys other than _target_ are not accepted "
                              "(a model config holds plain values only)")
        if not is_plain(value):
            raise ConfigError(f"{source}: model.{key}={value!r} is not a plain value (a number, string, boolean, "
                              "null or a list of them)")


def build_model(model_cfg: dict, src_vocab_size: int, tgt_vocab_size: int,
                source: str = "model config") -> torch.nn.Module:
    """The model `model_cfg` describes: `_target_`'s class called with the config's other keys,
    the vocabulary sizes and the tokenizer's special ids (seq2seq.vocab)."""
    cfg = dict(model_cfg)
    cls = model_class(cfg.pop("_target_", None), source)
    check_plain(cfg, source)
    return cls(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, pad_id=PAD_ID, bos_id=BOS_ID,
               eos_id=EOS_ID, **cfg)


def check_model(model_cfg: dict, source: str = "params.yaml") -> None:
    """Build the configured model on a toy vocabulary through the one model builder: unknown keys
    and bad values fail here, before any stage works, with the key named."""
    model_cfg = dict(model_cfg)
    target = model_cfg.get("_target_")
    cls = model_class(target, source)  # refuses anything but a model class of seq2seq.models, before importing it
    check_plain(model_cfg, source)
    accepted = inspect.signature(cls).parameters
    known = [k for k in accepted if k not in RUNTIME_ARGS]
    unknown = sorted(k for k in model_cfg if k != "_target_" and k not in known)
    if unknown:
        raise ConfigError(f"{source}: unknown parameter model.{unknown[0]} for {target}{did_you_mean(unknown[0], known, 'model.')} "
                          f"(accepted: {', '.join(known)})")
    for name, param in accepted.items():
        if name not in model_cfg or param.default is inspect.Parameter.empty:
            continue
        value, default = model_cfg[name], param.default
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{source}: model.{name}={value!r} must be true or false")
        if isinstance(default, int) and not isinstance(default, bool) and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ConfigError(f"{source}: model.{name}={value!r} must be a positive integer")
        if isinstance(default, float) and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            raise ConfigError(f"{source}: model.{name}={value!r} must be a number")
        if "dropout" in name and not 0 <= value < 1:
            raise ConfigError(f"{source}: model.{name}={value!r} must be in [0, 1)")
        if isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{source}: model.{name}={value!r} must be a string")
    try:
        build_model(model_cfg, 8, 8, source=source)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - the constructor's own checks, whatever they raise
        raise ConfigError(f"{source}: bad model parameters for {target}: {e}") from None
