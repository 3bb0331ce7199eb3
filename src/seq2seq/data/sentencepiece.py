"""SentencePiece: trained deterministically on the training split, loaded by training and inference.
Ids: pad 0, unk 1, bos 2, eos 3 (seq2seq.vocab). Imports nothing but sentencepiece and the
project's errors and ids: the served model bundles this module."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Iterable

import sentencepiece as spm

from seq2seq.errors import DataError
from seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def train_sentencepiece(sentences: Iterable[str], prefix: Path, tok_cfg, seed: int) -> None:
    """Train one model on `sentences` (any iterable: a file is read a line at a time, and SentencePiece
    keeps at most `input_sentence_size` of them); writes `<prefix>.model` and `<prefix>.vocab`."""
    sentences = (s for s in sentences if s.strip())
    first = next(sentences, None)
    if first is None:
        raise DataError(f"no text to train the tokenizer {prefix.name} on")
    failed: list[DataError] = []

    def guarded(lines):  # a DataError (bad UTF-8 in line n) raised across SentencePiece's C++ loses its type
        try:
            yield from lines
        except DataError as e:
            failed.append(e)

    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=guarded(itertools.chain([first], sentences)),
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
    if failed:
        raise failed[0]
    prefix.with_suffix(".model").write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i)}\n" for i in range(sp.get_piece_size()))
    prefix.with_suffix(".vocab").write_text(vocab, encoding="utf-8")


def load_sp(tokenizer_dir: str | Path, side: str) -> spm.SentencePieceProcessor:
    path = Path(tokenizer_dir) / f"{side}.model"
    if not path.exists():
        raise DataError(f"{path}: SentencePiece model not found (run the tokenizer stage)")
    return spm.SentencePieceProcessor(model_file=str(path))
