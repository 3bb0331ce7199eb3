"""Pairs of lines and how they are cleaned, as Moses clean-corpus-n.perl cleans them.

A training pair is dropped when a side is empty, has fewer than min_len or more than max_len words,
has a word longer than 1,000 characters, or when longer/shorter > max_ratio. Words are Moses tokens
for IWSLT'14 (moses_words, as fairseq's prepare-iwslt14.sh tokenizes) and whitespace-separated words
for parallel data, whose "languages" may be anything (summaries, tags).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator


from seq2seq.io import line_writer, one_line
from seq2seq.progress import progress

Pair = tuple[str, str]
SPLITS = ("train", "valid", "test")
MAX_WORD_CHARS = 1000  # clean-corpus-n.perl's max-word-length


def keep_pair(src_words: list[str], tgt_words: list[str], min_len: int = 1, max_len: int = 175,
              max_ratio: float = 1.5) -> bool:
    """Moses clean-corpus-n.perl on two tokenized sides: both within [min_len, max_len] words, no
    word over 1,000 characters, longer/shorter <= max_ratio."""
    n, m = len(src_words), len(tgt_words)
    if n == 0 or m == 0 or min(n, m) < min_len or max(n, m) > max_len:
        return False
    if any(len(w) > MAX_WORD_CHARS for w in src_words + tgt_words):
        return False
    return max(n, m) / min(n, m) <= max_ratio


def moses_words(lines: list[str], lang: str, what: str) -> list[list[str]]:
    """The tokens tokenizer.perl -l {lang} (escaping on, no -a) makes of each line."""
    tokenize = moses_tokenizer(lang)
    return [tokenize(line) for line in progress(lines, desc=f"moses {what}", unit="line", disable=len(lines) < 10_000)]


def moses_tokenizer(lang: str) -> Callable[[str], list[str]]:
    """line -> the tokens tokenizer.perl -l {lang} (escaping on, no -a) makes of it."""
    from sacremoses import MosesTokenizer

    moses = MosesTokenizer(lang=lang)
    return lambda line: _split_final_period(moses.tokenize(line, escape=True)) if line.strip() else []


def _split_final_period(tokens: list[str]) -> list[str]:
    """tokenizer.perl splits the period off a sentence's last word even after a non-breaking
    prefix ("usw." → "usw ."; "split last words independently"); sacremoses 0.2 does not.
    Runs of dots ("...") stay one token, as in tokenizer.perl."""
    last = tokens[-1] if tokens else ""
    if len(last) > 1 and last.endswith(".") and last.strip("."):
        return tokens[:-1] + [last[:-1], "."]
    return tokens


def zip_pairs(src: list[str], tgt: list[str]) -> list[Pair]:
    """Zip two aligned sides, turning stray line-break characters into spaces (io.one_line)."""
    return [(one_line(s), one_line(t)) for s, t in zip(src, tgt)]


@contextlib.contextmanager
def pair_writer(folder: Path, split: str, src: str, tgt: str) -> Iterator[Callable[[Pair], None]]:
    """`write(pair)` appends a pair to folder/{split}.{src} and folder/{split}.{tgt} (io.line_writer)."""
    with line_writer(folder / f"{split}.{src}") as write_src, line_writer(folder / f"{split}.{tgt}") as write_tgt:
        def write(pair: Pair) -> None:
            write_src(pair[0])
            write_tgt(pair[1])

        yield write
