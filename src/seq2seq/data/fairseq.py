"""IWSLT'14 train / valid / test exactly as fairseq's prepare-iwslt14.sh selects them.

  * train.tags.{pair}.{src,tgt} give the training pairs (lines with <url>, <talkid> or
    <keywords> dropped, title and description tags removed: seq2seq.data.iwslt); they are cleaned as
    clean-corpus-n.perl -ratio 1.5 ... 1 175 cleans fairseq's Moses-tokenized text: each side
    is tokenized with the Moses tokenizer (sacremoses, the side's language, escaping on, as
    tokenizer.perl runs there), and the counts of those tokens decide. Then every
    `valid_every`-th cleaned pair (1-based: 23, 46, ...) goes to valid and the rest to train.
  * test is the concatenation of exactly these XML sets, in this order: IWSLT14.TED.dev2010,
    IWSLT14.TEDX.dev2012, IWSLT14.TED.tst2010, IWSLT14.TED.tst2011, IWSLT14.TED.tst2012.
    Other IWSLT14.*.xml sets in the archive are not used (stats: test_sets_unused).
The text kept is the raw, cased, untokenized text of the selected pairs: tokenization only
decides the selection. On the official de-en.tgz this gives fairseq's 160,239 / 7,283 / 6,750
train / valid / test pairs; a warning says when an archive gives other counts (stats: fairseq_split).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path


from seq2seq.data.cleaning import keep_pair, moses_tokenizer, pair_writer, zip_pairs
from seq2seq.data.iwslt import iter_pair, read_pair, read_train_tags, read_xml_segments
from seq2seq.errors import DataError
from seq2seq.io import one_line
from seq2seq.progress import progress

log = logging.getLogger(__name__)

TEST_ORDER = (
    "IWSLT14.TED.dev2010", "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010", "IWSLT14.TED.tst2011", "IWSLT14.TED.tst2012",
)

# What fairseq's prepare-iwslt14.sh makes of the official archive (train, valid, test pairs), with
# the default data.filter and data.valid_every.
FAIRSEQ_COUNTS = {"de-en": {"train": 160_239, "valid": 7_283, "test": 6_750}}
FAIRSEQ_SETTINGS = {"min_len": 1, "max_len": 175, "max_ratio": 1.5, "valid_every": 23}


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
    raw: str | os.PathLike, out: Path, src: str, tgt: str, min_len: int = 1, max_len: int = 175,
    max_ratio: float = 1.5, valid_every: int = 23,
) -> dict:
    """out/{train,valid,test}.{src,tgt} from <raw>/{src}-{tgt}/ in the official layout (see the
    module docstring); returns the stats. The training pairs are read, checked for alignment, tokenized,
    filtered and written a pair at a time: memory stays flat in the size of train.tags."""
    pair = f"{src}-{tgt}"
    folder = Path(raw) / pair
    if not folder.is_dir():
        raise DataError(f"{folder}: not found (run the download stage first)")
    tags = [folder / f"train.tags.{pair}.{lang}" for lang in (src, tgt)]
    words_src, words_tgt = moses_tokenizer(src), moses_tokenizer(tgt)
    raw, kept, counts = 0, 0, {"train": 0, "valid": 0}
    with pair_writer(out, "train", src, tgt) as write_train, pair_writer(out, "valid", src, tgt) as write_valid:
        for s, t in progress(iter_pair(*tags, read_train_tags), desc=f"moses train.tags.{pair}", unit="pair"):
            raw += 1
            s, t = one_line(s), one_line(t)
            if keep_pair(words_src(s), words_tgt(t), min_len, max_len, max_ratio):
                kept += 1  # every valid_every-th kept pair (1-based) goes to valid
                split = "train" if kept % valid_every else "valid"
                (write_train if split == "train" else write_valid)((s, t))
                counts[split] += 1
    sets, unused = find_test_sets(folder, src, tgt)
    if not sets:
        raise DataError(f"{folder}: none of fairseq's test sets ({', '.join(f'{n}.{pair}.{src}.xml' for n in TEST_ORDER)})")
    test_sets = {}
    with pair_writer(out, "test", src, tgt) as write:
        for name, a, b in sets:
            segs = zip_pairs(*read_pair(a, b, read_xml_segments))
            for seg in segs:
                write(seg)
            test_sets[name] = len(segs)
    stats = {"train_raw": raw, "train_filtered_out": raw - kept, **counts,
             "test": sum(test_sets.values()), "test_sets": test_sets, "test_sets_unused": ", ".join(unused)}
    settings = {"min_len": min_len, "max_len": max_len, "max_ratio": max_ratio, "valid_every": valid_every}
    expected = FAIRSEQ_COUNTS.get(pair)
    standard = expected is not None and settings == FAIRSEQ_SETTINGS  # fairseq's pair and settings
    stats["fairseq_split"] = standard and all(stats[k] == v for k, v in expected.items())
    if standard and not stats["fairseq_split"]:
        log.warning("%s gives %s train / %s valid / %s test pairs, but fairseq's prepare-iwslt14.sh gives "
                    "%s / %s / %s on the official %s.tgz: this is not the standard IWSLT'14 split, and scores "
                    "on it are not comparable with published ones", folder, f"{stats['train']:,}",
                    f"{stats['valid']:,}", f"{stats['test']:,}", *(f"{expected[k]:,}" for k in ("train", "valid", "test")),
                    pair)
    return stats
