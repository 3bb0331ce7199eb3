"""Convert a trained Transformer into a CTranslate2 model folder (needs: pip install -e ".[ctranslate2]").

    seq2seq export                      # data/train/checkpoints/best.ckpt -> data/export/ctranslate2
    seq2seq export --quantization int8 --out data/export/ctranslate2-int8
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.cli import parser_for
from seq2seq.command import run_stage
from seq2seq.inference.export import QUANTIZATIONS, export


def main(argv: list[str] | None = None) -> None:
    parser = parser_for("export", __doc__)
    parser.add_argument("--checkpoint", type=Path, default=Path("data/train/checkpoints/best.ckpt"), help="the trained Transformer")
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"), help="the folder of src.model and tgt.model")
    parser.add_argument("--out", type=Path, default=Path("data/export/ctranslate2"), help="the CTranslate2 model folder to write")
    parser.add_argument("--quantization", default="float32", help=f"weight type: {', '.join(QUANTIZATIONS)}")

    def run(args):
        print(export(args.checkpoint, args.tokenizer, args.out, args.quantization))

    run_stage(lambda: run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
