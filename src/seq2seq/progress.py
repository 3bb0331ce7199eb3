"""Progress on stderr: tqdm's bar on a terminal; in a log file (DVC's queue logs, CI, `2> log`) a plain
line every minute and one at the end, never a carriage return."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], *, desc: str, unit: str, total: int | None = None, disable: bool = False,
             every_s: float = 60.0, stream=None) -> Iterable[T]:
    """`iterable`, reporting how far it got on `stream` (stderr) unless `disable`."""
    stream = stream or sys.stderr
    if disable:
        return iterable
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if hasattr(stream, "isatty") and stream.isatty():
        return tqdm(iterable, desc=desc, unit=unit, total=total, mininterval=2, file=stream)
    return _lines(iterable, desc, unit, total, every_s, stream)


def _lines(iterable: Iterable[T], desc: str, unit: str, total: int | None, every_s: float, stream) -> Iterator[T]:
    start = last = time.monotonic()
    done = 0

    def say(end: str = "") -> None:
        seconds = int(time.monotonic() - start)
        of = f"/{total:,}" if total is not None else ""
        print(f"{desc}: {done:,}{of} {unit}{end}, {seconds // 60}:{seconds % 60:02d}", file=stream, flush=True)

    for item in iterable:
        yield item
        done += 1
        if time.monotonic() - last >= every_s:
            say()
            last = time.monotonic()
    say(" done")
