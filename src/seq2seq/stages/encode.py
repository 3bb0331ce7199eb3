"""Stage 4: encode the training and validation text with SentencePiece into the token store.

    python -m seq2seq.stages.encode --params params.yaml --data data/prepared --tokenizer data/tokenizer \
        --out data/encoded

Writes <out>/{train,valid}.{src,tgt}.{bin,idx} and meta.json (seq2seq.data.store): flat id arrays
that training reads by memory map. Streams the text (memory stays flat in the corpus size) and
encodes on this stage's share of the cores. <out> appears only once complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seq2seq.command import run_stage
from seq2seq.config.params import load_params
from seq2seq.data.store import write_store
from seq2seq.io import atomic_path
from seq2seq.threads import rebalance


def run(cfg, data: Path, tokenizer: Path, out: Path) -> dict:
    threads = rebalance()
    with atomic_path(out) as tmp:
        tmp.mkdir()
        meta = write_store(data, tokenizer, cfg.data.src, cfg.data.tgt, tmp, threads)
    n, tokens = meta["sentences"], meta["tokens"]
    print(f"encode: train {n['train']:,} pairs ({tokens['train.src']:,} / {tokens['train.tgt']:,} pieces), "
          f"valid {n['valid']:,} -> {out}", file=sys.stderr)
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.stages.encode", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"))
    parser.add_argument("--out", type=Path, default=Path("data/encoded"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.data, args.tokenizer, args.out))


if __name__ == "__main__":
    main()
