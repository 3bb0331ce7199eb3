"""Small, deterministic corpora in the exact IWSLT'14 (WIT3) layout, and parallel folders.

`make_corpus` says what a built archive holds; tests derive their expectations from it:
`train_pairs` (text pairs of train.tags in file order), `BAD_PAIRS` (the ones the default
filter must drop) and `xml_pairs` (every <seg> of the five sets, in fairseq's test order).
"""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = {
    "de": "Haus Baum Fluss Licht Fenster Musik Stadt Wasser Freund R&D \"Idee\" gibt's <neu> Welt".split(),
    "en": "house tree river light window music city water friend R&D \"idea\" it's <new> world".split(),
}
TEST_SETS = {  # name -> segments per doc (ids restart at 1 in each doc, as in WIT3)
    "IWSLT14.TED.dev2010": [3, 2],
    "IWSLT14.TEDX.dev2012": [4],
    "IWSLT14.TED.tst2010": [2, 3, 1],
    "IWSLT14.TED.tst2011": [5],
    "IWSLT14.TED.tst2012": [2, 2],
}
# Written into talk 1 after its 5th line; the default filter (1, 175, 1.5) drops exactly these.
BAD_PAIRS = [
    ("nur Quelle", ""),                                   # empty target
    ("eins zwei", "one two three four"),                  # ratio 2 > 1.5
    (" ".join(["Wort"] * 176), " ".join(["word"] * 176)),  # 176 > max_len words
]
# Also in talk 1: borderline pairs the filter keeps.
EDGE_PAIRS = [
    ("eins zwei", "one two three"),                       # ratio exactly 1.5
    (" ".join(["Wort"] * 175), " ".join(["word"] * 175)),  # exactly max_len words
    ("Rock & Roll <3", "rock & roll <3"),                 # raw & and < stay as they are
]
# Also in talk 1: pairs that counting whitespace-separated words would judge the other way. The
# filter counts Moses tokens, as fairseq's clean-corpus-n.perl sees them after tokenizer.perl.
MOSES_DROPPED = ("Hallo, Welt! Ja? Nein!", "Hello world no")  # 4 words against 3, but 8 Moses tokens against 3
MOSES_KEPT = ("Ja, nein, vielleicht.", "Yes no maybe maybe so")  # 3 words against 5, but 6 tokens against 5
# Credits as WIT3 writes them: filled in on the translated side, empty on the other. They stay
# training pairs, as in fairseq (whose length filter drops these: 22 Moses tokens against 7).
REVIEWER = ('<reviewer href="http://www.ted.com/profiles/1">Rita Reviewer</reviewer>', "<reviewer></reviewer>")
TRANSLATOR = ('<translator href="http://www.ted.com/profiles/2">Tom Translator</translator>', "<translator></translator>")
# A test segment the filter would drop; test is never filtered.
TEST_ODD_PAIR = ("kurz", "")


def make_corpus(src: str = "de", tgt: str = "en", n_talks: int = 3, lines_per_talk: int = 80, seed: int = 0) -> dict:
    """{"talks": [{"talkid", "title", "description", "lines"}], "test": {name: [[pair, ...] per doc]}}."""
    rng = random.Random(seed)
    words = {src: WORDS.get(src, WORDS["de"]), tgt: WORDS.get(tgt, WORDS["en"])}

    def sentence(tag: str) -> tuple[str, str]:
        idx = [rng.randrange(len(words[src])) for _ in range(rng.randint(3, 8))]
        return (f"{tag} " + " ".join(words[src][i] for i in idx),
                f"{tag} " + " ".join(words[tgt][i] for i in idx))

    talks = []
    for t in range(1, n_talks + 1):
        lines = [sentence(f"t{t}.{i}") for i in range(1, lines_per_talk + 1)]
        if t == 1:
            lines[5:5] = BAD_PAIRS + EDGE_PAIRS + [MOSES_DROPPED, MOSES_KEPT]
        talks.append({
            "talkid": 100 + t,
            "speaker": (f"Speaker {100 + t}", f"Speaker {100 + t}"),
            "title": (f"Titel {t}: Ideen", f"Title {t}: ideas"),
            "description": (f"Beschreibung {t} des Vortrags", f"Description {t} of the talk"),
            "lines": lines,
        })
    test = {name: [[sentence(f"{name[8:]}.{d}.{s}") for s in range(1, n + 1)] for d, n in enumerate(docs, 1)]
            for name, docs in TEST_SETS.items()}
    test["IWSLT14.TED.tst2011"][0][2] = TEST_ODD_PAIR
    return {"src": src, "tgt": tgt, "talks": talks, "test": test}


def train_pairs(corpus: dict) -> list[tuple[str, str]]:
    """Every text pair of train.tags as fairseq reads it, in file order: the <speaker> lines,
    markup included, titles and descriptions without their tags, the credits, the text."""
    return [p for talk in corpus["talks"]
            for p in [tuple(f"<speaker>{s}</speaker>" for s in talk["speaker"]), talk["title"], talk["description"],
                      REVIEWER, TRANSLATOR, *talk["lines"]]]


def filtered_out(corpus: dict) -> set[tuple[str, str]]:
    """The training pairs the default filter (1, 175, 1.5 on Moses tokens) drops."""
    return {*BAD_PAIRS, MOSES_DROPPED, REVIEWER, TRANSLATOR}


def xml_pairs(corpus: dict) -> list[tuple[str, str]]:
    """Every test segment pair, sets in fairseq's order (the order of TEST_SETS)."""
    return [p for name in TEST_SETS for doc in corpus["test"][name] for p in doc]


def build_iwslt_archive(
    tmp_dir: str | Path,
    src: str = "de",
    tgt: str = "en",
    n_talks: int = 3,
    lines_per_talk: int = 80,
    misaligned: bool = False,
    misaligned_test: bool = False,
    escape_member: str | bool | None = None,
    fmt: str = "tgz",
    corpus: dict | None = None,
) -> Path:
    """Write `{src}-{tgt}.tgz` (or .tar) into tmp_dir, laid out like the official archive.

    misaligned: the tgt train.tags loses its last line; misaligned_test: tst2010's tgt loses
    its last <seg>. escape_member adds one hostile member: "dotdot" (True), "absolute",
    "symlink", "chain" (links through a link), "hardlink" or "fifo".
    """
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    corpus = corpus or make_corpus(src, tgt, n_talks, lines_per_talk)
    pair = f"{src}-{tgt}"
    files = {}
    for side, lang in enumerate((src, tgt)):
        text = _train_tags(corpus, side)
        if misaligned and lang == tgt:
            text = text[: text.rstrip("\n").rfind("\n") + 1]
        files[f"{pair}/train.tags.{pair}.{lang}"] = text
        for name in TEST_SETS:
            drop = misaligned_test and lang == tgt and name == "IWSLT14.TED.tst2010"
            files[f"{pair}/{name}.{pair}.{lang}.xml"] = _xml(corpus, name, side, drop_last=drop)
    path = tmp_dir / f"{pair}.{fmt}"
    with tarfile.open(path, "w:gz" if fmt == "tgz" else "w") as tar:
        _add_dir(tar, pair)
        for name, text in files.items():
            _add_file(tar, name, text.encode("utf-8"))
        if escape_member:
            _add_hostile(tar, pair, "dotdot" if escape_member is True else escape_member, tmp_dir)
    return path


def _train_tags(corpus: dict, side: int) -> str:
    out = []
    for talk in corpus["talks"]:
        tid = talk["talkid"]
        out += [f"<url>http://www.ted.com/talks/talk_{tid}.html</url>",
                "<keywords>talks, culture, music</keywords>",
                f"<speaker>{talk['speaker'][side]}</speaker>",
                f"<talkid>{tid}</talkid>",
                f"<title>{talk['title'][side]}</title>",
                f"<description>{talk['description'][side]}</description>",
                REVIEWER[side], TRANSLATOR[side]]
        out += [f"  {line[side]} " if i % 7 == 3 else line[side] for i, line in enumerate(talk["lines"])]
    return "\n".join(out) + "\n"


def _xml(corpus: dict, name: str, side: int, drop_last: bool = False) -> str:
    src, tgt = corpus["src"], corpus["tgt"]
    if side == 0:
        head, tail = f'<srcset setlang="{src}" srclang="{src}">', "</srcset>"
    else:
        head, tail = f'<refset setlang="{tgt}" srclang="{src}" trglang="{tgt}" refid="ref">', "</refset>"
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<mteval>", head]
    docs = corpus["test"][name]
    for d, doc in enumerate(docs, 1):
        segs = doc[:-1] if drop_last and d == len(docs) else doc
        out += [f'<doc docid="{500 + d}" genre="lectures">',
                f"<url>http://www.ted.com/talks/doc_{d}.html</url>",
                "<description>TED Talk Subtitles and Transcript: a talk</description>",
                "<keywords>talks, science</keywords>",
                f"<talkid>{500 + d}</talkid>",
                f"<title>Doc {d} &amp; more</title>"]
        out += [f'<seg id="{s}"> {_esc(p[side])} </seg>' for s, p in enumerate(segs, 1)]
        out.append("</doc>")
    out += [tail, "</mteval>"]
    return "\n".join(out) + "\n"


def _esc(text: str) -> str:
    return escape(text, {'"': "&quot;", "'": "&#39;"})


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_hostile(tar: tarfile.TarFile, pair: str, kind: str, tmp_dir: Path) -> None:
    if kind == "dotdot":
        _add_file(tar, f"{pair}/../../evil.txt", b"evil\n")
    elif kind == "absolute":
        _add_file(tar, str((tmp_dir / "evil_abs.txt").absolute()), b"evil\n")
    elif kind == "symlink":
        info = tarfile.TarInfo(f"{pair}/link")
        info.type, info.linkname = tarfile.SYMTYPE, "../../.."
        tar.addfile(info)
        _add_file(tar, f"{pair}/link/evil.txt", b"evil\n")
    elif kind == "chain":  # each link looks inside on its own; followed, d/e is the target's parent
        for name, target in ((f"{pair}/d", ".."), (f"{pair}/d/e", "../evil")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    elif kind == "hardlink":
        info = tarfile.TarInfo(f"{pair}/hard")
        info.type, info.linkname = tarfile.LNKTYPE, "../outside.txt"
        tar.addfile(info)
    elif kind == "fifo":
        info = tarfile.TarInfo(f"{pair}/fifo")
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    else:
        raise ValueError(f"unknown escape_member {kind!r}")


def make_parallel(n_train: int = 40, n_valid: int = 5, n_test: int = 6, seed: int = 1) -> dict[str, list[tuple[str, str]]]:
    """{split: pairs}; train holds BAD_PAIRS at positions 3..5, test holds TEST_ODD_PAIR first."""
    rng = random.Random(seed)

    def sentence(tag: str) -> tuple[str, str]:
        idx = [rng.randrange(len(WORDS["de"])) for _ in range(rng.randint(2, 6))]
        return (f"{tag} " + " ".join(WORDS["de"][i] for i in idx), f"{tag} " + " ".join(WORDS["en"][i] for i in idx))

    splits = {s: [sentence(f"{s}{i}") for i in range(n)] for s, n in
              (("train", n_train), ("valid", n_valid), ("test", n_test))}
    splits["train"][3:3] = BAD_PAIRS
    splits["test"].insert(0, TEST_ODD_PAIR)
    return splits


def write_parallel(folder: str | Path, splits: dict | None = None, src: str = "de", tgt: str = "en",
                   misaligned: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """Write folder/{split}.{src,tgt}; `misaligned` names a split whose tgt file loses its last line."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    splits = splits or make_parallel()
    for split, pairs in splits.items():
        tgt_side = [t for _, t in pairs][: -1 if split == misaligned else None]
        (folder / f"{split}.{src}").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
        (folder / f"{split}.{tgt}").write_text("".join(t + "\n" for t in tgt_side), encoding="utf-8")
    return splits
