"""Translate sentences with a trained checkpoint.

    python -m seq2seq.translate "Guten Morgen." "Wie geht es dir?"
    echo "Guten Morgen." | python -m seq2seq.translate --beam 1      # greedy
    python -m seq2seq.translate --n-best 3 "Guten Morgen."             # score<TAB>hypothesis, 3 a sentence
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seq2seq.datamodule import load_sp
from seq2seq.errors import DataError
from seq2seq.evaluate import translate_nbest
from seq2seq.stage import run_stage
from seq2seq.train import load_model


def run(args) -> None:
    if not args.checkpoint.exists():
        raise DataError(f"{args.checkpoint}: checkpoint not found (run `dvc repro` first, or pass --checkpoint)")
    model, _ = load_model(args.checkpoint)
    sentences = args.sentences or [line.rstrip("\n") for line in sys.stdin]
    if not 1 <= args.n_best <= args.beam:
        raise DataError(f"--n-best {args.n_best} must be between 1 and --beam {args.beam}")
    nbest = translate_nbest(model, load_sp(args.tokenizer, "src"), load_sp(args.tokenizer, "tgt"), sentences,
                            beam_size=args.beam, length_penalty=args.length_penalty, max_len_a=args.max_len_a,
                            max_len_b=args.max_len_b, batch_size=args.batch_size, n_best=args.n_best)
    for hyps in nbest:
        for text, score in hyps:
            print(f"{score:.4f}\t{text}" if args.n_best > 1 else text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Translate sentences (arguments, or one a line on stdin).")
    parser.add_argument("sentences", nargs="*")
    parser.add_argument("--checkpoint", type=Path, default=Path("data/train/checkpoints/best.ckpt"))
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"))
    parser.add_argument("--beam", type=int, default=5, help="beam size; 1 is greedy")
    parser.add_argument("--length-penalty", type=float, default=1.0)
    parser.add_argument("--max-len-a", type=float, default=1.5)
    parser.add_argument("--max-len-b", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-best", type=int, default=1, help="print this many hypotheses a sentence, with scores")
    run_stage(lambda: run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
