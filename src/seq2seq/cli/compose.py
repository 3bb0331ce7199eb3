"""Compose conf/ into params.yaml, as `dvc exp run -S` does.

    python -m seq2seq.cli.compose [overrides...] [--out params.yaml]
"""

from __future__ import annotations

import argparse
import sys

from omegaconf import OmegaConf

from seq2seq.config.params import compose
from seq2seq.config.schema import validate
from seq2seq.errors import ConfigError
from seq2seq.io import write_text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.cli.compose", description="Compose conf/ (as `dvc exp run -S` does) into params.yaml.")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=smoke model.hidden_size=512")
    parser.add_argument("--out", default="params.yaml", help="'-' prints to stdout")
    args = parser.parse_args(argv)
    cfg = compose(args.overrides)
    try:
        validate(cfg, source="conf/")
    except ConfigError as e:
        sys.exit(f"error: {e}")
    text = OmegaConf.to_yaml(cfg)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
