"""Bring your own parallel files: folder/{train,valid,test}.{src,tgt}, one segment a line.

copy_parallel checks them (all present, UTF-8, each split aligned) and copies them as plain UTF-8
with LF line ends (a BOM and CRLF are dropped; a lone CR or other line-break character inside a
line becomes a space, so every reader sees the same lines). prepare_parallel reads the copy back
as splits: valid and test as given, train cleaned (seq2seq.data.cleaning).
"""

from __future__ import annotations

import os
from pathlib import Path

from seq2seq.data.cleaning import SPLITS, Pair, clean, zip_pairs
from seq2seq.data.iwslt import read_pair
from seq2seq.errors import DataError
from seq2seq.io import one_line, read_lines, write_lines


def copy_parallel(folder: str | os.PathLike, dest: str | os.PathLike, src: str, tgt: str) -> dict[str, int]:
    """Check and copy folder/{train,valid,test}.{src,tgt} to `dest`; returns lines per split.

    DataError naming the file (and line) for a missing file or invalid UTF-8, and both files
    and both counts for a split whose sides differ in length. Lines go through io.one_line.
    """
    folder, dest = Path(folder), Path(dest)
    if not folder.is_dir():
        raise DataError(f"data.path={folder}: not a folder")
    missing = [f"{s}.{lang}" for s in SPLITS for lang in (src, tgt) if not (folder / f"{s}.{lang}").is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    dest.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        a, b = read_pair(folder / f"{split}.{src}", folder / f"{split}.{tgt}", read_lines)
        write_lines(dest / f"{split}.{src}", map(one_line, a))
        write_lines(dest / f"{split}.{tgt}", map(one_line, b))
        counts[split] = len(a)
    return counts


def prepare_parallel(
    raw: str | os.PathLike, src: str, tgt: str, min_len: int = 1, max_len: int = 175, max_ratio: float = 1.5,
) -> tuple[dict[str, list[Pair]], dict]:
    """Splits and stats from <raw>/parallel/{split}.{src,tgt}; only train is cleaned."""
    folder = Path(raw) / "parallel"
    if not folder.is_dir():
        raise DataError(f"{folder}: not found (run the download stage first)")
    splits = {s: zip_pairs(*read_pair(folder / f"{s}.{src}", folder / f"{s}.{tgt}", read_lines)) for s in SPLITS}
    n_raw = len(splits["train"])
    splits["train"] = clean(splits["train"], min_len, max_len, max_ratio)
    stats = {"train_raw": n_raw, "train_filtered_out": n_raw - len(splits["train"]),
             **{s: len(splits[s]) for s in SPLITS}, "test_sets": {"test": len(splits["test"])}}
    return splits, stats
