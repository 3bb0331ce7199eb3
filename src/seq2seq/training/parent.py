"""A parent model for fine-tuning (trainer.init_from): read from a checkpoint, checked against the
model configuration of this run, loaded into the new model. See seq2seq.stages.parent."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seq2seq.errors import ConfigError, DataError
from seq2seq.inference.checkpoint import read_checkpoint

SIDES = ("src", "tgt")


def parent_tag(info: dict) -> str:
    """`models:/<name>/<version> (run <id>), weights MD5 <md5>` or `<checkpoint path>, weights MD5 <md5>`."""
    where = f"{info['version']} (run {info['run_id']})" if info.get("version") else info.get("checkpoint", info["init_from"])
    return f"{where}, weights MD5 {info.get('checkpoint_md5', 'unknown')}"


def _load(checkpoint: Path) -> dict:
    """The checkpoint's tensors and meta (no pickled code runs); DataError naming the file otherwise."""
    return read_checkpoint(checkpoint, f"trainer.init_from={checkpoint}", missing="no such checkpoint")


def from_checkpoint(checkpoint: Path, out: Path) -> dict:
    """out/model.ckpt (weights and meta only) and out/tokenizer/{src,tgt}.model from a checkpoint of the
    train stage, which carries its SentencePiece models; returns what names the parent."""
    ckpt = _load(checkpoint)
    models = ckpt["seq2seq"].get("tokenizer")
    if not models or set(models) != set(SIDES):
        raise DataError(f"trainer.init_from={checkpoint}: the checkpoint holds no SentencePiece models (written "
                        "before checkpoints carried them); register its model in MLflow and start from "
                        "models:/<name>/<version>, or retrain it")
    (out / "tokenizer").mkdir(parents=True)
    for side in SIDES:
        (out / "tokenizer" / f"{side}.model").write_bytes(models[side])
    torch.save({"state_dict": ckpt["state_dict"], "seq2seq": ckpt["seq2seq"]}, out / "model.ckpt")
    return {"init_from": str(checkpoint), "checkpoint": str(checkpoint.resolve())}


def differences(parent: dict, model_cfg: dict, prefix: str = "model") -> list[str]:
    """'model.<key>: <parent's> in the parent, <this run's> here' for every key that differs."""
    out = []
    for key in sorted(set(parent) | set(model_cfg)):
        a, b = parent.get(key, "(absent)"), model_cfg.get(key, "(absent)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}.{key}")
        elif a != b:
            out.append(f"{prefix}.{key}: {a!r} in the parent, {b!r} here")
    return out


def parent_state(parent_dir: Path, model_cfg: dict, src_vocab_size: int, tgt_vocab_size: int) -> tuple[dict, dict] | None:
    """(the parent's weights for the model, parent.json) when parent_dir names a parent, else None.
    ConfigError naming every differing key when the model configuration or vocabularies differ."""
    info = json.loads((parent_dir / "parent.json").read_text())
    if not info.get("init_from"):
        return None
    ckpt = _load(parent_dir / "model.ckpt")
    meta = ckpt["seq2seq"]
    diff = differences(meta["model"], model_cfg)
    for side, size in (("src", src_vocab_size), ("tgt", tgt_vocab_size)):
        if meta[f"{side}_vocab_size"] != size:
            diff.append(f"{side} vocabulary: {meta[f'{side}_vocab_size']} pieces in the parent, {size} here")
    if diff:
        raise ConfigError(f"trainer.init_from={info['init_from']}: this run's model differs from the parent's, "
                          f"whose weights would not fit: {'; '.join(diff)}. Use the parent's settings (its "
                          "params.yaml), or train from scratch (trainer.init_from=null)")
    return {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}, info
