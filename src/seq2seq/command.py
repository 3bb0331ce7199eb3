"""What every stage's and command's main() shares: the project's errors become one line on stderr
and exit 1, and the process registers as a running stage (its share of the cores: seq2seq.threads)."""

from __future__ import annotations

import sys
from typing import Callable

from seq2seq.errors import Seq2SeqError
from seq2seq.threads import running_stage


def run_stage(fn: Callable[[], object]) -> None:
    try:
        with running_stage():
            fn()
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
