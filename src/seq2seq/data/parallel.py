"""Bring your own parallel files: folder/{train,valid,test}.{src,tgt}, one segment a line.

copy_parallel checks them (all present, UTF-8, each split aligned) and copies them as plain UTF-8
with LF line ends (a BOM and CRLF are dropped; a lone CR or other line-break character inside a
line becomes a space, so every reader sees the same lines). prepare_parallel reads the copy back
into splits: valid and test as given, train cleaned (seq2seq.data.cleaning). Both stream: a line
pair at a time, whatever the corpus size.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Iterator

from seq2seq.data.cleaning import SPLITS, Pair, keep_pair, pair_writer
from seq2seq.errors import DataError
from seq2seq.io import iter_lines, one_line


def iter_pairs(path_src: str | os.PathLike, path_tgt: str | os.PathLike) -> Iterator[Pair]:
    """The line pairs of two files, read one at a time; DataError naming both files and both counts
    when their lengths differ (found at the end: what came before is written by then, into the
    caller's unfinished output)."""
    for path in (path_src, path_tgt):
        if not Path(path).is_file():
            raise DataError(f"{path}: not found")
    a, b = iter_lines(path_src), iter_lines(path_tgt)
    n = 0
    for x, y in itertools.zip_longest(a, b):
        if x is None or y is None:
            n_src, n_tgt = n + (x is not None) + sum(1 for _ in a), n + (y is not None) + sum(1 for _ in b)
            raise DataError(f"misaligned pair: {path_src} has {n_src} segments but {path_tgt} has {n_tgt}")
        n += 1
        yield x, y


def copy_parallel(folder: str | os.PathLike, dest: str | os.PathLike, src: str, tgt: str) -> dict[str, int]:
    """Check and copy folder/{train,valid,test}.{src,tgt} to `dest`, a line at a time; returns lines
    per split. DataError naming the file (and line) for a missing file or invalid UTF-8, and both
    files and both counts for a split whose sides differ in length. Lines go through io.one_line."""
    folder, dest = Path(folder), Path(dest)
    if not folder.is_dir():
        raise DataError(f"data.path={folder}: not a folder")
    missing = [f"{s}.{lang}" for s in SPLITS for lang in (src, tgt) if not (folder / f"{s}.{lang}").is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    dest.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        counts[split] = 0
        with pair_writer(dest, split, src, tgt) as write:
            for a, b in iter_pairs(folder / f"{split}.{src}", folder / f"{split}.{tgt}"):
                write((one_line(a), one_line(b)))
                counts[split] += 1
    return counts


def prepare_parallel(raw: str | os.PathLike, out: Path, src: str, tgt: str, min_len: int = 1, max_len: int = 175,
                     max_ratio: float = 1.5) -> dict:
    """out/{split}.{src,tgt} from <raw>/parallel/, a pair at a time: valid and test as given, train
    cleaned on whitespace-separated words (seq2seq.data.cleaning.keep_pair); returns the stats."""
    folder = Path(raw) / "parallel"
    if not folder.is_dir():
        raise DataError(f"{folder}: not found (run the download stage first)")
    counts, train_raw = {}, 0
    for split in SPLITS:
        counts[split] = 0
        with pair_writer(out, split, src, tgt) as write:
            for a, b in iter_pairs(folder / f"{split}.{src}", folder / f"{split}.{tgt}"):
                a, b = one_line(a), one_line(b)
                if split == "train":
                    train_raw += 1
                    if not keep_pair(a.split(), b.split(), min_len, max_len, max_ratio):
                        continue
                write((a, b))
                counts[split] += 1
    return {"train_raw": train_raw, "train_filtered_out": train_raw - counts["train"], **counts,
            "test_sets": {"test": counts["test"]}}
