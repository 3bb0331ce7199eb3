"""Reading a checkpoint of the train stage without running pickled code. Imports torch only: the parent and
train stages use it without the rest of inference."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from seq2seq.errors import DataError


def read_checkpoint(checkpoint: str | Path, label: str | None = None, missing: str = "checkpoint not found") -> dict:
    """A checkpoint of the train stage: its tensors and meta (`ckpt["seq2seq"]`), loaded without running any
    pickled code. DataError starting with `label` (the path by default) when the file is missing (`missing`
    says what to do) or is not such a checkpoint."""
    label = str(checkpoint) if label is None else label
    if not Path(checkpoint).is_file():
        raise DataError(f"{label}: {missing}")
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
        _ = ckpt["seq2seq"]["model"], ckpt["state_dict"]  # KeyError when not ours
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, TypeError, IndexError):
        # Not PyTorch's reason: for a pickle holding more than tensors it says the file "can still be
        # loaded" with weights_only=False, which would run whatever code the pickle names.
        raise DataError(f"{label}: not a checkpoint of this project's train stage") from None
    return ckpt
