"""seq2seq: translate with, export, promote and restore the models of this pipeline.

    seq2seq translate "Guten Morgen."      # each command: seq2seq <command> --help
"""

from __future__ import annotations

import argparse
import importlib
import sys

from seq2seq.cli import PROG

# command -> (module, what it does); a module is imported only when its command runs (torch is slow to load)
COMMANDS = {
    "translate": ("seq2seq.cli.translate", "translate sentences with a trained checkpoint or CTranslate2 export"),
    "export": ("seq2seq.cli.export", "convert a trained Transformer into a CTranslate2 model folder"),
    "promote": ("seq2seq.cli.promote", "point the registry alias `champion` (or another) at a model version"),
    "restore": ("seq2seq.cli.restore", "check out the git commit, params.yaml and dvc.lock of a model version"),
    "compose": ("seq2seq.cli.compose", "compose conf/ into params.yaml, as `dvc exp run -S` does"),
    "plots-page": ("seq2seq.cli.plots_page", "rewrite the offline page `dvc plots show` writes"),
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.strip().partition("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="commands:\n" + "\n".join(f"  {name:<12} {what}" for name, (_, what) in COMMANDS.items())
                                     + f"\n\n`{PROG} <command> --help` shows a command's options and their defaults.")
    parser.add_argument("command", choices=COMMANDS, metavar="command", help="one of: " + ", ".join(COMMANDS))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        sys.exit(0 if argv else 2)
    args = parser.parse_args(argv[:1])
    importlib.import_module(COMMANDS[args.command][0]).main(argv[1:])


if __name__ == "__main__":
    main()
