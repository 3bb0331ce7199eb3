"""Stage 2: turn the raw corpus into aligned train/valid/test files.

    python -m seq2seq.prepare --params params.yaml --raw data/raw --out data/prepared \\
        --stats metrics/prepare.json

Writes <out>/{train,valid,test}.{src,tgt}, one segment a line, cased and untokenized (<out>
appears whole or not at all), and a stats JSON with the counts.

data.source=iwslt14, exactly as fairseq's prepare-iwslt14.sh selects pairs:
  * train.tags.{pair}.{src,tgt} give the training pairs (lines with <url>, <talkid> or
    <keywords> dropped, title and description tags removed: seq2seq.iwslt); they are cleaned as
    clean-corpus-n.perl -ratio 1.5 ... 1 175 cleans fairseq's Moses-tokenized text: each side
    is tokenized with the Moses tokenizer (sacremoses, the side's language, escaping on, as
    tokenizer.perl runs there), and the counts of those tokens decide. Then every
    `valid_every`-th cleaned pair (1-based: 23, 46, ...) goes to valid and the rest to train.
  * test is the concatenation of exactly these XML sets, in this order: IWSLT14.TED.dev2010,
    IWSLT14.TEDX.dev2012, IWSLT14.TED.tst2010, IWSLT14.TED.tst2011, IWSLT14.TED.tst2012.
    Other IWSLT14.*.xml sets in the archive are not used (stats: test_sets_unused).
  The text written is the raw, cased, untokenized text of the selected pairs: tokenization only
  decides the selection. On the official de-en.tgz this gives fairseq's 160,239 / 7,283 / 6,750
  train / valid / test pairs; the stage warns when an archive gives other counts (stats:
  fairseq_split).
data.source=parallel: <raw>/parallel/{train,valid,test}.{src,tgt}; valid and test as given.

Both sides of every file pair must line up, or DataError names both files: equal counts for
all, and for the official layout the same talks (train.tags) or (docid, seg id) keys (XML),
position by position (see seq2seq.iwslt). Line-break characters inside a segment become spaces.

Cleaning (Moses clean-corpus-n.perl) applies to training pairs only, never to valid-as-given or
test: a pair is dropped when a side is empty, has fewer than min_len or more than max_len words,
has a word longer than 1,000 characters, or when longer/shorter > max_ratio. Words are Moses
tokens for iwslt14 (above) and whitespace-separated words for parallel data, whose "languages"
may be anything (summaries, tags).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tqdm import tqdm

from seq2seq.config import load_params
from seq2seq.errors import ConfigError, DataError
from seq2seq.io import atomic_path, one_line, read_lines, write_json, write_lines
from seq2seq.iwslt import read_pair, read_train_tags, read_xml_segments
from seq2seq.stage import run_stage


log = logging.getLogger("seq2seq.prepare")
Pair = tuple[str, str]
SPLITS = ("train", "valid", "test")
TEST_ORDER = (
    "IWSLT14.TED.dev2010", "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010", "IWSLT14.TED.tst2011", "IWSLT14.TED.tst2012",
)
MAX_WORD_CHARS = 1000  # clean-corpus-n.perl's max-word-length
# What fairseq's prepare-iwslt14.sh makes of the official archive (train, valid, test pairs), with
# the default data.filter and data.valid_every.
FAIRSEQ_COUNTS = {"de-en": {"train": 160_239, "valid": 7_283, "test": 6_750}}
FAIRSEQ_SETTINGS = {"min_len": 1, "max_len": 175, "max_ratio": 1.5, "valid_every": 23}


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


def clean(pairs: list[Pair], min_len: int = 1, max_len: int = 175, max_ratio: float = 1.5,
          words: tuple[list[list[str]], list[list[str]]] | None = None) -> list[Pair]:
    """The pairs keep_pair accepts, in order; `words` holds each side's tokens per pair
    (default: whitespace-separated words)."""
    src_words, tgt_words = words or ([s.split() for s, _ in pairs], [t.split() for _, t in pairs])
    return [p for p, a, b in zip(pairs, src_words, tgt_words) if keep_pair(a, b, min_len, max_len, max_ratio)]


def moses_words(lines: list[str], lang: str, what: str) -> list[list[str]]:
    """The tokens tokenizer.perl -l {lang} (escaping on, no -a) makes of each line."""
    from sacremoses import MosesTokenizer

    moses = MosesTokenizer(lang=lang)
    return [_split_final_period(moses.tokenize(line, escape=True)) if line.strip() else []
            for line in tqdm(lines, desc=f"moses {what}", unit="line", mininterval=2, disable=len(lines) < 10_000)]


def _split_final_period(tokens: list[str]) -> list[str]:
    """tokenizer.perl splits the period off a sentence's last word even after a non-breaking
    prefix ("usw." → "usw ."; "split last words independently"); sacremoses 0.2 does not.
    Runs of dots ("...") stay one token, as in tokenizer.perl."""
    last = tokens[-1] if tokens else ""
    if len(last) > 1 and last.endswith(".") and last.strip("."):
        return tokens[:-1] + [last[:-1], "."]
    return tokens


def split_valid(pairs: list[Pair], every: int) -> tuple[list[Pair], list[Pair]]:
    """(train, valid): valid holds pairs number every, 2*every, ... (1-based), train the rest."""
    train = [p for i, p in enumerate(pairs, start=1) if i % every]
    valid = [p for i, p in enumerate(pairs, start=1) if not i % every]
    return train, valid


def find_test_sets(folder: str | os.PathLike, src: str, tgt: str) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """(name, src xml, tgt xml) of fairseq's test sets present in `folder`, in fairseq's order,
    and the names of the other IWSLT14.*.xml sets there (not used)."""
    folder, pair = Path(folder), f"{src}-{tgt}"
    suffix = f".{pair}.{src}.xml"
    names = sorted(p.name[: -len(suffix)] for p in folder.glob(f"IWSLT14.*{suffix}"))
    sets = []
    for name in [n for n in TEST_ORDER if n in names]:
        a, b = folder / f"{name}.{pair}.{src}.xml", folder / f"{name}.{pair}.{tgt}.xml"
        if not b.is_file():
            raise DataError(f"{a} has no {tgt} side: {b} not found")
        sets.append((name, a, b))
    return sets, [n for n in names if n not in TEST_ORDER]


def prepare_iwslt(
    raw: str | os.PathLike, src: str, tgt: str, min_len: int = 1, max_len: int = 175,
    max_ratio: float = 1.5, valid_every: int = 23,
) -> tuple[dict[str, list[Pair]], dict]:
    """Splits and stats from <raw>/{src}-{tgt}/ in the official layout (see module docstring)."""
    pair = f"{src}-{tgt}"
    folder = Path(raw) / pair
    if not folder.is_dir():
        raise DataError(f"{folder}: not found (run the download stage first)")
    tags = [folder / f"train.tags.{pair}.{lang}" for lang in (src, tgt)]
    raw_pairs = _pairs(*read_pair(*tags, read_train_tags))
    words = (moses_words([s for s, _ in raw_pairs], src, f"train.tags.{pair}.{src}"),
             moses_words([t for _, t in raw_pairs], tgt, f"train.tags.{pair}.{tgt}"))
    cleaned = clean(raw_pairs, min_len, max_len, max_ratio, words)
    train, valid = split_valid(cleaned, valid_every)
    sets, unused = find_test_sets(folder, src, tgt)
    if not sets:
        raise DataError(f"{folder}: none of fairseq's test sets ({', '.join(f'{n}.{pair}.{src}.xml' for n in TEST_ORDER)})")
    test, test_sets = [], {}
    for name, a, b in sets:
        segs = _pairs(*read_pair(a, b, read_xml_segments))
        test += segs
        test_sets[name] = len(segs)
    splits = {"train": train, "valid": valid, "test": test}
    stats = {"train_raw": len(raw_pairs), "train_filtered_out": len(raw_pairs) - len(cleaned),
             "train": len(train), "valid": len(valid), "test": len(test), "test_sets": test_sets,
             "test_sets_unused": ", ".join(unused)}
    settings = {"min_len": min_len, "max_len": max_len, "max_ratio": max_ratio, "valid_every": valid_every}
    expected = FAIRSEQ_COUNTS.get(pair)
    standard = expected is not None and settings == FAIRSEQ_SETTINGS  # fairseq's pair and settings
    stats["fairseq_split"] = standard and all(stats[k] == v for k, v in expected.items())
    if standard and not stats["fairseq_split"]:
        log.warning("%s gives %s train / %s valid / %s test pairs, but fairseq's prepare-iwslt14.sh gives "
                    "%s / %s / %s on the official %s.tgz: this is not the standard IWSLT'14 split, and scores "
                    "on it are not comparable with published ones", folder, f"{len(train):,}", f"{len(valid):,}",
                    f"{len(test):,}", *(f"{expected[k]:,}" for k in ("train", "valid", "test")), pair)
    return splits, stats


def prepare_parallel(
    raw: str | os.PathLike, src: str, tgt: str, min_len: int = 1, max_len: int = 175, max_ratio: float = 1.5,
) -> tuple[dict[str, list[Pair]], dict]:
    """Splits and stats from <raw>/parallel/{split}.{src,tgt}; only train is cleaned."""
    folder = Path(raw) / "parallel"
    if not folder.is_dir():
        raise DataError(f"{folder}: not found (run the download stage first)")
    splits = {s: _pairs(*read_pair(folder / f"{s}.{src}", folder / f"{s}.{tgt}", read_lines)) for s in SPLITS}
    n_raw = len(splits["train"])
    splits["train"] = clean(splits["train"], min_len, max_len, max_ratio)
    stats = {"train_raw": n_raw, "train_filtered_out": n_raw - len(splits["train"]),
             **{s: len(splits[s]) for s in SPLITS}, "test_sets": {"test": len(splits["test"])}}
    return splits, stats


def write_splits(out: str | os.PathLike, splits: dict[str, list[Pair]], src: str, tgt: str) -> None:
    """<out>/{split}.{src,tgt} for every split, the folder created atomically."""
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for split, pairs in splits.items():
            write_lines(tmp / f"{split}.{src}", (s for s, _ in pairs))
            write_lines(tmp / f"{split}.{tgt}", (t for _, t in pairs))


def run(cfg, raw: str | os.PathLike, out: str | os.PathLike, stats_path: str | os.PathLike) -> dict:
    """Prepare cfg.data's corpus from `raw` into `out`, stats to `stats_path`; returns the stats."""
    data, f = cfg.data, cfg.data.filter
    if data.source == "iwslt14":
        splits, stats = prepare_iwslt(raw, data.src, data.tgt, f.min_len, f.max_len, f.max_ratio, data.valid_every)
    elif data.source == "parallel":
        splits, stats = prepare_parallel(raw, data.src, data.tgt, f.min_len, f.max_len, f.max_ratio)
    else:
        raise ConfigError(f"data.source={data.source!r} is not one of iwslt14, parallel")
    empty = [s for s in SPLITS if not splits[s]]
    if empty:
        raise DataError(f"{raw}: no {', '.join(empty)} pairs left (stats: {stats})")
    write_splits(out, splits, data.src, data.tgt)
    write_json(stats_path, stats)
    print(f"prepare: train {stats['train']}, valid {stats['valid']}, test {stats['test']} "
          f"({stats['train_filtered_out']} of {stats['train_raw']} training pairs filtered out) -> {out}",
          file=sys.stderr)
    return stats


def _pairs(src: list[str], tgt: list[str]) -> list[Pair]:
    """Zip two aligned sides, turning stray line-break characters into spaces (io.one_line)."""
    return [(one_line(s), one_line(t)) for s, t in zip(src, tgt)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m seq2seq.prepare", description="Stage 2: aligned train/valid/test files.")
    p.add_argument("--params", default="params.yaml", help="resolved parameters (default: params.yaml)")
    p.add_argument("--raw", default="data/raw", help="the download stage's output (default: data/raw)")
    p.add_argument("--out", default="data/prepared", help="output folder (default: data/prepared)")
    p.add_argument("--stats", default="metrics/prepare.json", help="counts as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s: %(message)s")
    run_stage(lambda: run(load_params(args.params), args.raw, args.out, args.stats))


if __name__ == "__main__":
    main()
