"""Compose conf/ into params.yaml, as `dvc exp run -S` does.

    seq2seq compose experiment=smoke data=parallel data.path=my-data     # writes params.yaml
    seq2seq compose model=transformer --out -                            # prints it
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from seq2seq.cli import parser_for
from seq2seq.config.params import compose
from seq2seq.config.schema import validate
from seq2seq.errors import ConfigError
from seq2seq.io import write_text


def main(argv: list[str] | None = None) -> None:
    parser = parser_for("compose", __doc__)
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
