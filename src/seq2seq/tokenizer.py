"""Stage 3: train SentencePiece on the training split, deterministically.

    python -m seq2seq.tokenizer --params params.yaml --data data/prepared --out data/tokenizer

Writes `src.model` and `tgt.model` (with their `.vocab`); with `tokenizer.joint` both are the
same model trained on source and target text together. Ids: pad 0, unk 1, bos 2, eos 3.
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import sentencepiece as spm

from seq2seq.config import load_params
from seq2seq.errors import DataError
from seq2seq.io import atomic_path, read_lines
from seq2seq.stage import run_stage
from seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def train_sentencepiece(sentences: list[str], prefix: Path, tok_cfg, seed: int) -> None:
    """Train one model on `sentences`; writes `<prefix>.model` and `<prefix>.vocab`."""
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        raise DataError(f"no text to train the tokenizer {prefix.name} on")
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        model_type=tok_cfg.model_type,
        vocab_size=tok_cfg.vocab_size,
        character_coverage=tok_cfg.character_coverage,
        input_sentence_size=tok_cfg.input_sentence_size,
        shuffle_input_sentence=True,
        hard_vocab_limit=False,  # tiny corpora get a smaller vocabulary instead of an error
        pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
        num_threads=1,  # one thread: the same input always gives the same model
        minloglevel=2,
    )
    prefix.with_suffix(".model").write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i)}\n" for i in range(sp.get_piece_size()))
    prefix.with_suffix(".vocab").write_text(vocab, encoding="utf-8")


def run(cfg, data: Path, out: Path) -> None:
    src = read_lines(data / f"train.{cfg.data.src}")
    tgt = read_lines(data / f"train.{cfg.data.tgt}")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        if cfg.tokenizer.joint:
            train_sentencepiece(src + tgt, tmp / "src", cfg.tokenizer, cfg.seed)
            for suffix in (".model", ".vocab"):
                shutil.copyfile(tmp / f"src{suffix}", tmp / f"tgt{suffix}")
        else:
            train_sentencepiece(src, tmp / "src", cfg.tokenizer, cfg.seed)
            train_sentencepiece(tgt, tmp / "tgt", cfg.tokenizer, cfg.seed)
    sizes = [spm.SentencePieceProcessor(model_file=str(out / f"{s}.model")).get_piece_size() for s in ("src", "tgt")]
    print(f"tokenizer: {out} (vocabulary src {sizes[0]}, tgt {sizes[1]}, joint={cfg.tokenizer.joint})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("data/tokenizer"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.data, args.out))


if __name__ == "__main__":
    main()
