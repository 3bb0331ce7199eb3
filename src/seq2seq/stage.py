"""What every stage's main() shares: the project's errors become one line on stderr and exit 1."""

from __future__ import annotations

import sys
from typing import Callable

from seq2seq.errors import Seq2SeqError


def run_stage(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
