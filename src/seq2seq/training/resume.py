"""What lets a killed train stage resume: its checkpoints live in a state folder outside DVC's
outputs (DVC deletes those before a stage reruns), with the fingerprint of the run they belong to.
A checkpoint resumes only a run with the same settings and data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

# Everything training depends on, besides the data and tokenizer files.
KEYS = ("data.src", "data.tgt", "model", "trainer", "seed", "decode.max_len_a", "decode.max_len_b")


def run_fingerprint(cfg, data: Path, tokenizer: Path, parent: Path | None = None) -> str:
    """Hash of everything training depends on: a checkpoint resumes only a run with the same
    (the parent too: trainer.init_from's alias may have moved)."""
    h = hashlib.sha256()
    settings = OmegaConf.to_container(OmegaConf.create({k: OmegaConf.select(cfg, k) for k in KEYS}), resolve=True)
    h.update(json.dumps(settings, sort_keys=True).encode())
    parents = [parent / "parent.json"] if parent is not None and (parent / "parent.json").exists() else []
    for path in sorted(data.glob("train.*")) + sorted(data.glob("valid.*")) + sorted(tokenizer.glob("*.model")) + parents:
        h.update(path.name.encode())
        with open(path, "rb") as f:  # read in blocks: memory stays flat in the corpus size
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def resumable(state_dir: Path, fingerprint: str) -> dict | None:
    """The saved state if `state_dir` holds a checkpoint of a run with this fingerprint, else None."""
    try:
        state = json.loads((state_dir / "state.json").read_text())
        ckpt = torch.load(state_dir / "last.ckpt", map_location="cpu", weights_only=True, mmap=True)
    except (OSError, ValueError, RuntimeError, EOFError, KeyError):
        return None
    if state.get("fingerprint") != fingerprint:
        return None
    return {"run_id": state["run_id"], "epoch": ckpt.get("epoch", 0) + 1}
