"""Point a registry alias (default `champion`) at a model version, on purpose.

    seq2seq promote 3                      # models:/seq2seq-de-en@champion is now version 3
    seq2seq promote 3 --alias staging --name seq2seq-en-fr
    mlflow models serve -m models:/seq2seq-de-en@champion --env-manager local
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from seq2seq.cli import parser_for
from seq2seq.command import run_stage
from seq2seq.io import redact
from seq2seq.tracking import runs
from seq2seq.tracking.registry import CHAMPION, promote


def main(argv: list[str] | None = None) -> None:
    parser = parser_for("promote", __doc__)
    parser.add_argument("version", help="the model version to point the alias at, e.g. 3")
    parser.add_argument("--name", default="seq2seq-de-en", help="the registered model")
    parser.add_argument("--alias", default=CHAMPION, help="the alias to move")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    args = parser.parse_args(argv)

    def run() -> None:
        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"
        before = promote(runs.open_store(uri), args.name, args.version, args.alias)
        was = f" (was version {before})" if before else ""
        print(f"models:/{args.name}@{args.alias} -> version {args.version}{was} in {redact(uri)}")

    run_stage(run)


if __name__ == "__main__":
    main()
