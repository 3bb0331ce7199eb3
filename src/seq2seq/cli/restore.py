"""Check out the git commit, params.yaml and dvc.lock of a registered model version.

    seq2seq restore models:/seq2seq-de-en/3 [--tracking-uri URI] [--force]
    seq2seq restore models:/seq2seq-de-en@champion
    dvc pull --with-deps train && dvc repro      # then: the version's data and model; its scores
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from seq2seq.cli import parser_for
from seq2seq.command import run_stage
from seq2seq.tracking.restore import restore


def main(argv: list[str] | None = None) -> None:
    p = parser_for("restore", __doc__)
    p.add_argument("model_uri", help="models:/<name>/<version> or models:/<name>@<alias>")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    p.add_argument("--force", action="store_true", help="overwrite uncommitted changes to tracked files")
    args = p.parse_args(argv)

    def run() -> None:
        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"
        info = restore(args.model_uri, uri, force=args.force)
        print(f"{args.model_uri}: run {info['run_id']}, experiment {info['experiment'] or '-'}, commit {info['commit']}"
              f" (detached HEAD) with params.yaml and dvc.lock of the run; now `dvc pull --with-deps train && dvc repro`."
              f"\nTo go back: `git checkout --force {info['back'] or '<your branch>'}` (drops the restored files)")
        if info["dirty"] == "true":
            print("warning: the run's working tree differed from that commit (tag git.dirty_files names the files); "
                  "the reproduction may differ", file=sys.stderr)

    run_stage(run)


if __name__ == "__main__":
    main()
