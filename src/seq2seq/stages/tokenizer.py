"""Stage 3: train SentencePiece on the training split, deterministically, or take the parent's.

    python -m seq2seq.stages.tokenizer --params params.yaml --data data/prepared --parent data/parent \
        --out data/tokenizer

Writes `src.model` and `tgt.model` (with their `.vocab`); with `tokenizer.joint` both are the
same model trained on source and target text together (seq2seq.data.sentencepiece). A run that
starts from a parent model (trainer.init_from: seq2seq.stages.parent) gets the parent's models,
byte for byte, whatever `tokenizer` says: a new vocabulary would make the parent's weights meaningless.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
from pathlib import Path

from seq2seq.command import run_stage
from seq2seq.config.params import load_params
from seq2seq.data.sentencepiece import load_sp, train_sentencepiece
from seq2seq.io import atomic_path, iter_lines


def run(cfg, data: Path, out: Path, parent: Path | None = None) -> None:
    src, tgt = data / f"train.{cfg.data.src}", data / f"train.{cfg.data.tgt}"
    inherited = parent is not None and (parent / "tokenizer").is_dir()
    with atomic_path(out) as tmp:
        tmp.mkdir()
        if inherited:
            for side in ("src", "tgt"):
                shutil.copyfile(parent / "tokenizer" / f"{side}.model", tmp / f"{side}.model")
        elif cfg.tokenizer.joint:  # source lines, then target lines, streamed
            train_sentencepiece(itertools.chain(iter_lines(src), iter_lines(tgt)), tmp / "src", cfg.tokenizer, cfg.seed)
            for suffix in (".model", ".vocab"):
                shutil.copyfile(tmp / f"src{suffix}", tmp / f"tgt{suffix}")
        else:
            train_sentencepiece(iter_lines(src), tmp / "src", cfg.tokenizer, cfg.seed)
            train_sentencepiece(iter_lines(tgt), tmp / "tgt", cfg.tokenizer, cfg.seed)
    sizes = [load_sp(out, side).get_piece_size() for side in ("src", "tgt")]
    how = f"the parent's, {cfg.trainer.init_from}" if inherited else f"joint={cfg.tokenizer.joint}"
    print(f"tokenizer: {out} (vocabulary src {sizes[0]}, tgt {sizes[1]}; {how})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.stages.tokenizer", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--parent", type=Path, default=None, help="the parent stage's folder (trainer.init_from)")
    parser.add_argument("--out", type=Path, default=Path("data/tokenizer"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.data, args.out, args.parent))


if __name__ == "__main__":
    main()
