"""The token store: the SentencePiece ids of every training and validation sentence in flat arrays
on disk, read by memory map, as fairseq's binarized datasets are.

For each split (train, valid) and side (src, tgt):

    <split>.<side>.bin   the ids of every sentence, one after the other (uint16, or int32 for a
                         vocabulary over 65,536 pieces), no BOS/EOS
    <split>.<side>.idx   int64 offsets, one more than sentences: sentence i is bin[idx[i]:idx[i+1]]

and `meta.json` (format, dtypes, counts). Written once by the encode stage, streaming (the corpus is
never held in memory) and encoding on every core; read without copying, so that the DDP ranks of a
machine and DataLoader workers share its pages. Training never tokenizes.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np

from seq2seq.data.sentencepiece import load_sp
from seq2seq.errors import DataError
from seq2seq.io import iter_lines

FORMAT = 1
SPLITS = ("train", "valid")
SIDES = ("src", "tgt")
CHUNK = 20_000  # lines encoded at once


def _dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


def encode_file(text: Path, tokenizer: Path, side: str, out: Path, threads: int | None = None) -> tuple[int, int, str]:
    """Encode `text` line by line with the `side` SentencePiece model of `tokenizer` into
    <out>.bin and <out>.idx; returns (sentences, tokens, dtype name)."""
    sp = load_sp(tokenizer, side)
    dtype = _dtype(sp.get_piece_size())
    threads = threads or os.cpu_count() or 1
    sentences = tokens = 0
    lines = iter_lines(text)
    with open(f"{out}.bin", "wb") as ids, open(f"{out}.idx", "wb") as idx:
        idx.write(np.zeros(1, np.int64).tobytes())
        while chunk := list(itertools.islice(lines, CHUNK)):
            encoded = sp.encode(chunk, out_type=int, num_threads=threads)
            lengths = np.fromiter(map(len, encoded), np.int64, count=len(encoded))
            flat = np.fromiter(itertools.chain.from_iterable(encoded), dtype, count=int(lengths.sum()))
            ids.write(flat.tobytes())
            idx.write((tokens + np.cumsum(lengths)).tobytes())
            sentences, tokens = sentences + len(encoded), tokens + int(lengths.sum())
    return sentences, tokens, dtype.name


def write_store(data: Path, tokenizer: Path, src: str, tgt: str, out: Path, threads: int | None = None) -> dict:
    """Encode data/{train,valid}.{src,tgt} into the folder `out` (which must exist); returns meta.json's
    content. DataError naming both files when a split's two sides differ in length."""
    meta = {"format": FORMAT, "dtype": {}, "sentences": {}, "tokens": {}}
    for split in SPLITS:
        counts = {}
        for side, lang in zip(SIDES, (src, tgt)):
            n, tokens, dtype = encode_file(data / f"{split}.{lang}", tokenizer, side, out / f"{split}.{side}", threads)
            counts[side] = n
            meta["dtype"][side] = dtype
            meta["tokens"][f"{split}.{side}"] = tokens
        if counts["src"] != counts["tgt"]:
            raise DataError(f"{data}/{split}.{src} has {counts['src']} lines but {data}/{split}.{tgt} has {counts['tgt']}")
        meta["sentences"][split] = counts["src"]
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def open_split(folder: Path, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{side: (ids, offsets)} of one split, memory-mapped read-only."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        raise DataError(f"{folder}: no token store (run the encode stage)") from None
    if meta.get("format") != FORMAT:
        raise DataError(f"{folder}: token store format {meta.get('format')}, this version reads {FORMAT}: "
                        "rerun the encode stage")
    if split not in meta["sentences"]:
        raise DataError(f"{folder}: the token store has no {split} split")
    arrays = {}
    for side in SIDES:
        base = folder / f"{split}.{side}"
        offsets = np.memmap(f"{base}.idx", np.int64, mode="r")
        ids = (np.memmap(f"{base}.bin", meta["dtype"][side], mode="r") if offsets[-1]
               else np.zeros(0, meta["dtype"][side]))  # numpy cannot map an empty file
        if len(offsets) != meta["sentences"][split] + 1 or int(offsets[-1]) != len(ids):
            raise DataError(f"{base}.bin/.idx: do not match {folder}/meta.json (rerun the encode stage)")
        arrays[side] = (ids, offsets)
    return arrays
