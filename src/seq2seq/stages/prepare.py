"""Stage 2: turn the raw corpus into aligned train/valid/test files.

    python -m seq2seq.stages.prepare --params params.yaml --raw data/raw --out data/prepared \\
        --stats metrics/prepare.json

Writes <out>/{train,valid,test}.{src,tgt}, one segment a line, cased and untokenized (<out>
appears whole or not at all), and a stats JSON with the counts.

data.source=iwslt14: fairseq's split of the official layout (seq2seq.data.fairseq).
data.source=parallel: <raw>/parallel/{train,valid,test}.{src,tgt}; valid and test as given
(seq2seq.data.parallel).

Both sides of every file pair must line up, or DataError names both files: equal counts for
all, and for the official layout the same talks (train.tags) or (docid, seg id) keys (XML),
position by position (see seq2seq.data.iwslt). Line-break characters inside a segment become
spaces. Cleaning (seq2seq.data.cleaning) applies to training pairs only, never to valid-as-given
or test.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from seq2seq.command import run_stage
from seq2seq.config.params import load_params
from seq2seq.data.cleaning import SPLITS
from seq2seq.data.fairseq import prepare_iwslt
from seq2seq.data.parallel import prepare_parallel
from seq2seq.errors import ConfigError, DataError
from seq2seq.io import atomic_path, write_json


def run(cfg, raw: str | os.PathLike, out: str | os.PathLike, stats_path: str | os.PathLike) -> dict:
    """Prepare cfg.data's corpus from `raw` into `out`, stats to `stats_path`; returns the stats."""
    data, f = cfg.data, cfg.data.filter
    with atomic_path(out) as tmp:
        tmp.mkdir()
        if data.source == "iwslt14":
            stats = prepare_iwslt(raw, tmp, data.src, data.tgt, f.min_len, f.max_len, f.max_ratio, data.valid_every)
        elif data.source == "parallel":
            stats = prepare_parallel(raw, tmp, data.src, data.tgt, f.min_len, f.max_len, f.max_ratio)
        else:
            raise ConfigError(f"data.source={data.source!r} is not one of iwslt14, parallel")
        empty = [s for s in SPLITS if not stats[s]]
        if empty:
            raise DataError(f"{raw}: no {', '.join(empty)} pairs left (stats: {stats})")
    write_json(stats_path, stats)
    print(f"prepare: train {stats['train']}, valid {stats['valid']}, test {stats['test']} "
          f"({stats['train_filtered_out']} of {stats['train_raw']} training pairs filtered out) -> {out}",
          file=sys.stderr)
    return stats


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m seq2seq.stages.prepare", description="Stage 2: aligned train/valid/test files.")
    p.add_argument("--params", default="params.yaml", help="resolved parameters (default: params.yaml)")
    p.add_argument("--raw", default="data/raw", help="the download stage's output (default: data/raw)")
    p.add_argument("--out", default="data/prepared", help="output folder (default: data/prepared)")
    p.add_argument("--stats", default="metrics/prepare.json", help="counts as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s: %(message)s")
    run_stage(lambda: run(load_params(args.params), args.raw, args.out, args.stats))


if __name__ == "__main__":
    main()
