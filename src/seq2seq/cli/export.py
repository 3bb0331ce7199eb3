"""Export a trained Transformer to CTranslate2 (seq2seq.inference.export).

    pip install -e ".[ctranslate2]"
    python -m seq2seq.cli.export                      # data/train/checkpoints/best.ckpt -> data/export/ctranslate2
    python -m seq2seq.cli.export --quantization int8 --out data/export/ctranslate2-int8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seq2seq.command import run_stage
from seq2seq.inference.export import QUANTIZATIONS, export


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.cli.export", description="Convert a trained Transformer into a CTranslate2 model folder.")
    parser.add_argument("--checkpoint", type=Path, default=Path("data/train/checkpoints/best.ckpt"))
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"))
    parser.add_argument("--out", type=Path, default=Path("data/export/ctranslate2"))
    parser.add_argument("--quantization", default="float32", help=f"weight type: {', '.join(QUANTIZATIONS)}")

    def run(args):
        print(export(args.checkpoint, args.tokenizer, args.out, args.quantization))

    run_stage(lambda: run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
