"""Stage: the model that training starts from (trainer.init_from), or none.

    python -m seq2seq.stages.parent --params params.yaml --out data/parent

`trainer.init_from` null: <out>/parent.json says so; training starts from random weights. A registered
model (`models:/<name>/<version>`, `models:/<name>@<alias>`, from mlflow.tracking_uri) or a checkpoint of
this project's train stage: <out>/model.ckpt (its weights and model config), <out>/tokenizer/{src,tgt}.model
(its SentencePiece models: the tokenizer stage copies them instead of training new ones) and
<out>/parent.json naming it (the version, an alias resolved, and its run; or the checkpoint's path) with
the weights' MD5. DVC runs this stage every time (`always_changed`): when an alias moves to another
version or the checkpoint changes, <out> changes and so do the stages after it; else nothing reruns.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from seq2seq.command import run_stage
from seq2seq.config.params import load_params
from seq2seq.io import atomic_path, md5sum, redact, write_json


def run(cfg, out: Path) -> dict:
    """Fill `out` (see the module docstring); returns what parent.json says."""
    init_from = cfg.trainer.init_from
    with atomic_path(out) as tmp:
        tmp.mkdir()
        if not init_from:
            info = {"init_from": None}
        elif str(init_from).startswith("models:/"):
            from seq2seq.tracking import runs
            from seq2seq.tracking.restore import fetch_version

            info = fetch_version(str(init_from), runs.tracking_uri(cfg), tmp)
        else:
            from seq2seq.training.parent import from_checkpoint

            info = from_checkpoint(Path(os.path.expanduser(str(init_from))), tmp)
        if init_from:
            info["checkpoint_md5"] = md5sum(tmp / "model.ckpt")
        write_json(tmp / "parent.json", info)
    print(f"parent: {redact(str(init_from))} ({info.get('version') or info.get('checkpoint') or ''})" if init_from
          else "parent: none (trainer.init_from is null): training starts from random weights")
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.stages.parent", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, default=Path("data/parent"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.out))


if __name__ == "__main__":
    main()
