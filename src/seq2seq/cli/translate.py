"""Translate sentences (arguments, or one a line on stdin) with a trained checkpoint.

    seq2seq translate "Guten Morgen." "Wie geht es dir?"
    echo "Guten Morgen." | seq2seq translate --beam 1       # greedy
    seq2seq translate --n-best 3 "Guten Morgen."             # score<TAB>hypothesis, 3 a sentence
    seq2seq translate --engine ctranslate2 "Guten Morgen."   # the folder `seq2seq export` wrote
"""

from __future__ import annotations

import sys
from pathlib import Path

from seq2seq.cli import parser_for
from seq2seq.command import run_stage
from seq2seq.errors import ConfigError
from seq2seq.inference.translator import Translator


def check_args(args) -> None:
    """ConfigError naming the first bad argument."""
    for name, value in (("--beam", args.beam), ("--n-best", args.n_best), ("--batch-size", args.batch_size)):
        if value < 1:
            raise ConfigError(f"{name} {value}: must be at least 1")
    if args.n_best > args.beam:
        raise ConfigError(f"--n-best {args.n_best}: must not exceed --beam {args.beam} (a beam holds that many)")
    if args.max_len_a < 0 or args.max_len_b < 0:
        raise ConfigError(f"--max-len-a {args.max_len_a} / --max-len-b {args.max_len_b}: must not be negative")


def run(args) -> None:
    check_args(args)
    if args.engine == "ctranslate2":
        from seq2seq.inference.ct2 import CT2Translator

        translator = CT2Translator.load(args.ct2_model)
    else:
        translator = Translator.load(args.checkpoint, args.tokenizer)
    sentences = args.sentences or [line.rstrip("\n") for line in sys.stdin]
    nbest = translator.translate_nbest(sentences, beam_size=args.beam, length_penalty=args.length_penalty,
                                       max_len_a=args.max_len_a, max_len_b=args.max_len_b, batch_size=args.batch_size,
                                       n_best=args.n_best)
    for hyps in nbest:
        for text, score in hyps:
            print(f"{score:.4f}\t{text}" if args.n_best > 1 else text)


def main(argv: list[str] | None = None) -> None:
    parser = parser_for("translate", __doc__)
    parser.add_argument("sentences", nargs="*", help="default: one a line on stdin")
    parser.add_argument("--checkpoint", type=Path, default=Path("data/train/checkpoints/best.ckpt"), help="the trained model")
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"), help="the folder of src.model and tgt.model")
    parser.add_argument("--beam", type=int, default=5, help="beam size; 1 is greedy")
    parser.add_argument("--length-penalty", type=float, default=1.0, help="GNMT alpha; 0: none, larger favours longer outputs")
    parser.add_argument("--max-len-a", type=float, default=1.5, help="at most a × source tokens + b output tokens: a")
    parser.add_argument("--max-len-b", type=int, default=10, help="... and b")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences decoded together")
    parser.add_argument("--n-best", type=int, default=1, help="print this many hypotheses a sentence, with scores")
    parser.add_argument("--engine", choices=("torch", "ctranslate2"), default="torch",
                        help="torch: the checkpoint; ctranslate2: the --ct2-model folder `seq2seq export` wrote")
    parser.add_argument("--ct2-model", type=Path, default=Path("data/export/ctranslate2"), help="the folder `seq2seq export` wrote")
    run_stage(lambda: run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
