"""params.yaml is data: no Hydra special key (`_target_` outside `model`, `_args_`, `_partial_`, ...),
no `${...}` interpolation (DVC resolves them when it composes conf/, so one still there was written
by hand and could read the environment), no credential."""

from __future__ import annotations

from seq2seq.config import credentials
from seq2seq.errors import ConfigError
from seq2seq.io import redact


def _walk(node, prefix: str = ""):
    """(dotted key, last key, value) of every key and list item below `node`, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        key = f"{prefix}[{k}]" if isinstance(node, list) else f"{prefix}{'.' if prefix else ''}{k}"
        yield key, k, v
        yield from _walk(v, key)


def check_data(raw: dict, source: str = "params.yaml") -> None:
    """ConfigError naming the first key that would make params.yaml more than data: a Hydra special
    key anywhere but `model._target_`, an interpolation, or a credential."""
    for key, name, value in _walk(raw):
        if isinstance(name, str) and "${" in name:
            raise ConfigError(f"{source}: key {key!r}: interpolations are not accepted in params.yaml")
        if isinstance(name, str) and name.startswith("_") and name.endswith("_") and key != "model._target_":
            raise ConfigError(f"{source}: {key}: Hydra's special keys (_target_, _args_, _partial_, ...) are not "
                              "accepted here; params.yaml is data and names no code to call (only model._target_, "
                              "a model class of seq2seq.models)")
        if not isinstance(value, str):
            continue
        if "${" in value:
            raise ConfigError(f"{source}: {key}={redact(value)!r}: interpolations ${{...}} are not accepted in "
                              "params.yaml (DVC resolves those of conf/ when it composes params.yaml; one left there "
                              "was written by hand and could read the environment): write the value itself")
        if (what := credentials.find(value)):
            raise ConfigError(f"{source}: {key} carries {what} (value not shown); {credentials.WHERE_CREDENTIALS_GO}")
