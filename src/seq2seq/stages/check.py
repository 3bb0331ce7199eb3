"""Stage 0: check params.yaml before any other stage runs.

    python -m seq2seq.stages.check --params params.yaml --out data/params.checked

Every stage depends on this one, so DVC runs it first whenever params.yaml changes (a `-S`
override, a hand edit, `dvc exp apply`, `seq2seq restore`): an unknown key, a bad value, code
named in the file, an interpolation or a credential stops the pipeline here, naming the key,
before any stage runs and before dvc.lock records anything (seq2seq.config). The output holds the
same line whatever the params are, so that downstream stages rerun only for the keys they read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seq2seq.command import run_stage
from seq2seq.config.check import check_file
from seq2seq.io import write_text

CHECKED = "params.yaml: checked\n"


def run(params: Path, out: Path) -> None:
    check_file(params)
    write_text(out, CHECKED)
    print(f"{params}: checked")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.stages.check", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("data/params.checked"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(args.params, args.out))


if __name__ == "__main__":
    main()
