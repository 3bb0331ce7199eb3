"""The `seq2seq` command (seq2seq.cli.main) and its subcommands, one module each."""

from __future__ import annotations

import argparse
import textwrap

PROG = "seq2seq"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default in --help (where it has one), and the docstring's examples as written."""

    def _get_help_string(self, action):
        help = action.help or ""
        if "%(default)" in help or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return help
        return f"{help} (default: %(default)s)".strip()


def parser_for(command: str, doc: str) -> argparse.ArgumentParser:
    """The parser of `seq2seq <command>`: its docstring's first line as description, the rest (the
    examples) as epilog, every option's default shown."""
    first, _, rest = doc.strip().partition("\n")
    return argparse.ArgumentParser(prog=f"{PROG} {command}", description=first, epilog=textwrap.dedent(rest).strip() or None,
                                   formatter_class=_Formatter)
