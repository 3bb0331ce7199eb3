"""The schema of params.yaml: every key, its type and its range, checked before any work is done.

`validate` refuses, naming the key: a file that is not plain data (seq2seq.config.safety), any key
the schema does not know (with the closest known key), and missing, mistyped or out-of-range values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from seq2seq.config.safety import check_data
from seq2seq.errors import ConfigError, did_you_mean


@dataclass
class FilterSchema:
    min_len: int = 1
    max_len: int = 175
    max_ratio: float = 1.5


@dataclass
class DataSchema:
    source: str = "iwslt14"
    src: str = "de"
    tgt: str = "en"
    archive: Optional[str] = None
    mirrors: list[str] = field(default_factory=list)
    md5: dict[str, str] = field(default_factory=dict)
    path: Optional[str] = None
    valid_every: int = 23
    filter: FilterSchema = field(default_factory=FilterSchema)


@dataclass
class TokenizerSchema:
    model_type: str = "unigram"
    vocab_size: int = 8000
    joint: bool = True
    character_coverage: float = 1.0
    input_sentence_size: int = 2000000


@dataclass
class LightningSchema:
    max_epochs: int = 30
    max_time: Optional[str] = None
    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    gradient_clip_val: Optional[float] = 1.0
    accumulate_grad_batches: int = 1
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    log_every_n_steps: int = 50
    deterministic: bool = True


@dataclass
class TrainerSchema:
    lightning: LightningSchema = field(default_factory=LightningSchema)
    batch_tokens: int = 4096
    max_len: int = 256
    pad_multiple: int = 1
    num_workers: int = 0
    lr: float = 1e-3
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    rdrop_alpha: float = 0.0
    init_from: Optional[str] = None
    compile_loss: bool = True
    onednn_cache_capacity: Optional[int] = 8192
    scheduler: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 1
    min_lr: float = 1e-5
    warmup_steps: int = 4000
    average_last: int = 0
    early_stopping_patience: int = 5
    val_max_sentences: Optional[int] = 1000


@dataclass
class DecodeSchema:
    checkpoint: str = "best"
    beam_size: int = 5
    length_penalty: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    batch_size: int = 64


@dataclass
class MlflowSchema:
    tracking_uri: Optional[str] = None
    experiment_name: str = "seq2seq"


@dataclass
class RegistrySchema:
    name: Optional[str] = "seq2seq-{src}-{tgt}"
    engine: str = "torch"


@dataclass
class Schema:
    data: DataSchema = field(default_factory=DataSchema)
    tokenizer: TokenizerSchema = field(default_factory=TokenizerSchema)
    # Each model has its own keys: they are checked against its constructor
    # (seq2seq.models.builder.check_model, run by the check stage).
    model: dict[str, Any] = field(default_factory=dict)
    trainer: TrainerSchema = field(default_factory=TrainerSchema)
    decode: DecodeSchema = field(default_factory=DecodeSchema)
    seed: int = 1234
    mlflow: MlflowSchema = field(default_factory=MlflowSchema)
    registry: RegistrySchema = field(default_factory=RegistrySchema)


_CHOICES = {
    "data.source": ("iwslt14", "parallel"),
    "tokenizer.model_type": ("unigram", "bpe", "char", "word"),
    "trainer.scheduler": ("plateau", "inverse_sqrt"),
    "decode.checkpoint": ("best", "last", "averaged"),
    "registry.engine": ("torch", "ctranslate2"),
}

_POSITIVE = (
    "data.valid_every", "data.filter.max_len", "data.filter.max_ratio", "tokenizer.vocab_size",
    "trainer.batch_tokens", "trainer.max_len", "trainer.pad_multiple", "trainer.lr", "trainer.lightning.max_epochs",
    "trainer.warmup_steps",
    "decode.beam_size", "decode.batch_size",
)

_UNIT_INTERVAL = ("trainer.label_smoothing", "trainer.lr_factor")


def validate(cfg: DictConfig, source: str = "params.yaml") -> None:
    """Raise ConfigError naming the key when a parameter is unknown, missing, mistyped or out of
    range, or when the file is not plain data (see the module docstring)."""
    from omegaconf.errors import OmegaConfBaseException

    raw = OmegaConf.to_container(cfg, resolve=False)
    check_data(raw, source)
    check_known(raw, source)
    try:
        OmegaConf.merge(OmegaConf.structured(Schema), cfg)
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        msg = str(e).splitlines()[0]
        raise ConfigError(f"{source}: bad parameter {key!r}: {msg}") from None
    for key, choices in _CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in choices:
            raise ConfigError(f"{source}: {key}={value!r} is not one of {', '.join(choices)}")
    for key in _POSITIVE:
        value = OmegaConf.select(cfg, key)
        if value is None or value <= 0:
            raise ConfigError(f"{source}: {key}={value!r} must be > 0")
    for key in _UNIT_INTERVAL:
        value = OmegaConf.select(cfg, key)
        if not 0 <= value < 1:
            raise ConfigError(f"{source}: {key}={value!r} must be in [0, 1)")
    if cfg.trainer.rdrop_alpha < 0:
        raise ConfigError(f"{source}: trainer.rdrop_alpha={cfg.trainer.rdrop_alpha!r} must be >= 0 (0: no R-Drop)")
    capacity = cfg.trainer.onednn_cache_capacity
    if capacity is not None and capacity < 0:
        raise ConfigError(f"{source}: trainer.onednn_cache_capacity={capacity!r} must be >= 0 (or null: oneDNN's default)")
    if cfg.data.source == "parallel" and not cfg.data.path:
        raise ConfigError(f"{source}: data=parallel needs data.path (a folder with train/valid/test.<lang>)")
    if cfg.decode.checkpoint == "averaged" and cfg.trainer.average_last <= 0:
        raise ConfigError(f"{source}: decode.checkpoint=averaged needs trainer.average_last > 0")
    if cfg.registry.engine == "ctranslate2" and not str(cfg.model.get("_target_")).endswith(".Transformer"):
        raise ConfigError(f"{source}: registry.engine=ctranslate2 needs a Transformer (model._target_ is "
                          f"{cfg.model.get('_target_')}): CTranslate2 runs no recurrent or convolutional models")


def _schema_keys(schema: type, prefix: str = "") -> dict[str, type | None]:
    """Every key of the schema, dotted, with its dataclass type for sections (None for leaves)."""
    import dataclasses
    import typing

    keys = {}
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        kind = hints[f.name] if dataclasses.is_dataclass(hints[f.name]) else None
        keys[prefix + f.name] = kind
        if kind is not None:
            keys.update(_schema_keys(kind, f"{prefix}{f.name}."))
    return keys


def check_known(raw: dict, source: str = "params.yaml") -> None:
    """ConfigError naming the first key the schema does not know, and the closest known key (the
    model section's keys are its class's: seq2seq.models.builder.check_model)."""
    known = _schema_keys(Schema)

    def visit(node: dict, prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if key not in known:
                raise ConfigError(f"{source}: unknown parameter {key}{did_you_mean(key, known)}; "
                                  "remove it from params.yaml (or from the -S/--set-param override)")
            if known[key] is not None and isinstance(v, dict):
                visit(v, key + ".")

    visit(raw, "")
