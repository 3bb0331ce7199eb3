"""Readers for the official IWSLT'14 (WIT3) layout: `train.tags.*` text files and `IWSLT14.*.xml` sets.

They follow fairseq's prepare-iwslt14.sh: metadata lines are dropped, <title>/<description> keep
their text, each <seg> is one segment. Text stays cased and untokenized.

Every reader returns strings that can be written back as UTF-8, or raises DataError naming the
file and, where known, the line. Lines end at LF or CRLF only (io.read_lines): a lone CR, U+0085
or U+2028 stays inside its line; a leading BOM is dropped; invalid UTF-8 is an error.

train.tags files
    Exactly fairseq's `grep -v '<url>' | grep -v '<talkid>' | grep -v '<keywords>'` and its
    `sed` of the title and description tags: a line is metadata when it contains <url>, <talkid>
    or <keywords> anywhere; every other line is a text line, with <title>, </title>,
    <description> and </description> removed wherever they occur and whitespace stripped. So the
    <speaker>, <reviewer ...> and <translator ...> lines stay, markup and all, as fairseq keeps
    them (its length filter drops most of them later), and so do unknown tags such as <foo>.
    Empty text lines stay (as "").

XML sets
    Every <seg> in document order, text stripped, entities and character references
    unescaped, markup inside a <seg> dropped. A segment's key is (docid of the latest
    <doc ...> start tag before it, seg id); ids need not be numbers nor in order, but an id
    may occur only once per <doc>, every <seg> needs an id and a <seg> may not contain
    another; a set without any <seg> is refused. Well-formed files are read with expat; a file expat rejects (a stray </doc>, a
    raw `&`, an unclosed element...) is read as text, every <seg ...>...</seg> having to open
    and close on one line (like fairseq's `grep '<seg id'`). Either way an empty segment
    (`<seg id="3"></seg>` or `<seg id="3"/>`) stays, as "".

Pairing (read_pair)
    Sides pair by position and must have the same number of segments. For these two readers
    each segment also carries a key that must be the same on both sides at every position,
    else DataError naming both files, lines and keys of the first difference:
      * XML: the (docid, seg id) above: ids out of order are accepted when both sides list
        the same keys in the same order; a reordered, renumbered, missing or extra <seg> on
        one side is refused rather than zipped with the wrong partner.
      * train.tags: the talk: each <talkid> line starts one (text lines before the first
        belong to none). Both sides must have the same talks (number and talkid) in the same
        order with the same number of text lines each, so a line lost in one talk and an
        extra line in another cannot cancel out. A lost and an extra line within one talk
        cannot be told from aligned text and are not detected.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from pathlib import Path
from typing import Callable, Iterator, NamedTuple
from xml.parsers import expat

from seq2seq.errors import DataError, DownloadError
from seq2seq.io import iter_lines, read_bytes, read_lines

log = logging.getLogger(__name__)

# A line containing one of these is talk metadata, not text (fairseq's grep -v).
META = ("<url>", "<talkid>", "<keywords>")
# These wrap text that fairseq keeps as a training segment; removed one after the other, as its
# four `sed` commands do.
TEXT_TAGS = ("<title>", "</title>", "<description>", "</description>")
_TALKID = re.compile(r"<talkid>(.*?)(?:</talkid>|$)")

# Text fallback for XML files expat rejects.
_MARK = re.compile(r"<(/?)(doc|seg)(?=[\s>/])")
_OPEN_REST = re.compile(r"""((?:\s+[^\s=/>"']+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(/?)>""")
_ATTR = re.compile(r"""([^\s=/>"']+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_SEG_CLOSE = re.compile(r"</seg\s*>")
_ENTITY = re.compile(r"&(amp|lt|gt|quot|apos|#[0-9]+|#[xX][0-9a-fA-F]+);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


class Segment(NamedTuple):
    """One segment: its text, its 1-based line in the file, and what must match on the other side."""

    text: str
    line: int
    key: tuple


# --- train.tags ------------------------------------------------------------------------------
def read_train_tags(path: str | os.PathLike) -> list[str]:
    """Text lines of a `train.tags.{pair}.{lang}` file, metadata dropped, whitespace stripped."""
    return [s.text for s in train_tags_segments(path)]


def train_tags_segments(path: str | os.PathLike) -> Iterator[Segment]:
    """read_train_tags with lines and keys ("talk", number, talkid), a line at a time; see the module
    docstring."""
    talk = ("talk", 0, None)
    for n, line in enumerate(iter_lines(path), start=1):
        if any(tag in line for tag in META):
            m = _TALKID.search(line)
            if m:
                talk = ("talk", talk[1] + 1, m.group(1).strip())
            continue
        for tag in TEXT_TAGS:
            line = line.replace(tag, "")
        yield Segment(line.strip(), n, talk)


# --- XML sets --------------------------------------------------------------------------------
def read_xml_segments(path: str | os.PathLike) -> list[str]:
    """Text of every `<seg id="N">` in document order, entities unescaped, whitespace stripped."""
    return [s.text for s in xml_segments(path)]


def xml_segments(path: str | os.PathLike) -> list[Segment]:
    """read_xml_segments with lines and keys ("doc", docid, seg id); see the module docstring."""
    data = read_bytes(path)
    try:
        segs = _parse_xml(path, data)
    except expat.ExpatError as e:
        log.warning("%s:%d:%d: not well-formed XML (%s); reading one <seg> per line",
                    path, e.lineno, e.offset, expat.errors.messages.get(e.code, e))
        return _read_seg_lines(path)
    if not segs:
        raise DataError(f"{path}: no <seg> elements")
    return segs


class _Docs:
    """The <doc> a segment belongs to, and the seg ids seen in it."""

    def __init__(self, path) -> None:
        self.path, self.docid, self.seen = path, None, {}

    def start(self, docid: str | None) -> None:
        self.docid, self.seen = docid, {}

    def key(self, sid: str | None, line: int) -> tuple:
        if sid is None:
            raise DataError(f"{self.path}:{line}: <seg> without an id")
        if sid in self.seen:
            raise DataError(f"{self.path}:{line}: duplicate seg id {sid} in doc {self.docid} "
                            f"(first on line {self.seen[sid]})")
        self.seen[sid] = line
        return ("doc", self.docid, sid)


def _parse_xml(path, data: bytes) -> list[Segment]:
    """Segments of a well-formed file; expat.ExpatError if it is not."""
    parser = expat.ParserCreate()
    docs, segs = _Docs(path), []
    open_seg = None  # [line, key, text parts]

    def start(name, attrs):
        nonlocal open_seg
        line = parser.CurrentLineNumber
        if name == "doc":
            docs.start(attrs.get("docid"))
        elif name == "seg":
            if open_seg is not None:
                raise DataError(f"{path}:{line}: <seg> inside the <seg> opened on line {open_seg[0]}")
            open_seg = [line, docs.key(attrs.get("id"), line), []]

    def end(name):
        nonlocal open_seg
        if name == "seg":
            line, key, parts = open_seg
            segs.append(Segment("".join(parts).strip(), line, key))
            open_seg = None

    def text(data):
        if open_seg is not None:
            open_seg[2].append(data)

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    parser.Parse(data, True)
    return segs


def _read_seg_lines(path: str | os.PathLike) -> list[Segment]:
    """Fallback for files expat rejects: every <seg ...>...</seg> opens and closes on one line."""
    docs, segs, any_seg = _Docs(path), [], False
    for n, line in enumerate(read_lines(path), start=1):
        pos = 0
        while m := _MARK.search(line, pos):
            closing, name = m.groups()
            pos = m.end()
            if closing:
                continue  # </doc> and a stray </seg> end nothing here: a doc lasts until the next <doc ...>
            rest = _OPEN_REST.match(line, pos)
            if name == "doc":
                docs.start(_attrs(rest.group(1)).get("docid") if rest else None)
                pos = rest.end() if rest else pos
                continue
            any_seg = True
            if rest is None:
                raise _unreadable(path, n, line, "cannot read its attributes")
            key = docs.key(_attrs(rest.group(1)).get("id"), n)
            if rest.group(2):  # <seg id="N"/>
                segs.append(Segment("", n, key))
                pos = rest.end()
                continue
            close = _SEG_CLOSE.search(line, rest.end())
            if close is None:
                raise _unreadable(path, n, line, "not closed on this line")
            inner = line[rest.end():close.start()]
            if _MARK.search(inner):
                raise _unreadable(path, n, line, "a <seg> or <doc> inside a <seg>")
            segs.append(Segment(unescape(inner).strip(), n, key))
            pos = close.end()
    if not any_seg:
        raise DataError(f"{path}: not well-formed XML and no <seg> lines found")
    return segs


def _attrs(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR.finditer(text)}


def _unreadable(path, n: int, line: str, why: str) -> DataError:
    start = max(line.find("<seg"), 0)
    return DataError(f"{path}:{n}: cannot read <seg> line ({why}): {line[start:start + 80]!r}")


def _xml_char(code: int) -> bool:
    """Whether XML 1.0 allows the character (a reference to any other is kept as written)."""
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def unescape(text: str) -> str:
    """Replace the five XML entities and character references; leave anything else as written."""

    def repl(m: re.Match) -> str:
        name = m.group(1)
        if name[0] != "#":
            return _NAMED[name]
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        return chr(code) if _xml_char(code) else m.group(0)

    return _ENTITY.sub(repl, text)


# --- pairing ---------------------------------------------------------------------------------
_KEYED: dict[Callable, Callable[[str | os.PathLike], list[Segment]]] = {
    read_train_tags: train_tags_segments,
    read_xml_segments: xml_segments,
}


def read_pair(
    path_src: str | os.PathLike,
    path_tgt: str | os.PathLike,
    reader: Callable[[str | os.PathLike], list[str]],
) -> tuple[list[str], list[str]]:
    """Read both sides with `reader`; DataError naming both files if they do not pair up.

    The counts must be equal (the message gives both); for read_train_tags and
    read_xml_segments the keys must be equal too (see the module docstring).
    """
    for path in (path_src, path_tgt):
        if not Path(path).is_file():
            raise DataError(f"{path}: not found")
    if reader in _KEYED:
        src, tgt = [], []
        for a, b in iter_pair(path_src, path_tgt, reader):
            src.append(a)
            tgt.append(b)
        return src, tgt
    src, tgt = reader(path_src), reader(path_tgt)
    if len(src) != len(tgt):
        raise DataError(f"misaligned pair: {path_src} has {len(src)} segments but {path_tgt} has {len(tgt)}")
    return src, tgt


def iter_pair(
    path_src: str | os.PathLike,
    path_tgt: str | os.PathLike,
    reader: Callable[[str | os.PathLike], list[str]],
) -> Iterator[tuple[str, str]]:
    """read_pair for read_train_tags or read_xml_segments, a pair at a time: train.tags files are read
    a line at a time, so memory stays flat in their size. The DataError for sides that do not pair up
    (the same as read_pair's) comes when the first difference is reached, after the pairs before it."""
    for path in (path_src, path_tgt):
        if not Path(path).is_file():
            raise DataError(f"{path}: not found")
    a, b = iter(_KEYED[reader](path_src)), iter(_KEYED[reader](path_tgt))
    done = 0
    for x, y in itertools.zip_longest(a, b):
        if x is None or y is None or x.key != y.key:
            total_a = done + (x is not None) + sum(1 for _ in a)
            total_b = done + (y is not None) + sum(1 for _ in b)
            if total_a != total_b:
                raise DataError(f"misaligned pair: {path_src} has {total_a} segments but {path_tgt} has {total_b}; "
                                f"first difference: {_where(path_src, x)} vs {_where(path_tgt, y)}")
            raise DataError(f"misaligned pair: segment {done + 1} is {_where(path_src, x)} but {_where(path_tgt, y)}")
        yield x.text, y.text
        done += 1


def _where(path, seg: Segment | None) -> str:
    if seg is None:
        return f"{path}: no more segments"
    line, key = seg.line, seg.key
    if key[0] == "talk":
        what = f"talk {key[1]} (talkid {key[2]})" if key[1] else "before the first <talkid>"
    else:
        what = f"doc {key[1]} seg id {key[2]}" if key[1] is not None else f"seg id {key[2]} outside any <doc>"
    return f"{path}:{line} ({what})"


def check_layout(folder: str | os.PathLike, src: str, tgt: str, archive: str | os.PathLike) -> None:
    """DownloadError naming what is missing unless `folder` holds the official IWSLT'14 layout."""
    pair = f"{src}-{tgt}"
    base = Path(folder) / pair
    missing = [f"{pair}/train.tags.{pair}.{lang}" for lang in (src, tgt)
               if not (base / f"train.tags.{pair}.{lang}").is_file()]
    missing += [f"{pair}/IWSLT14.TED*.{pair}.{lang}.xml" for lang in (src, tgt)
                if not list(base.glob(f"IWSLT14.TED*.{pair}.{lang}.xml"))]
    if missing:
        raise DownloadError(f"{archive}: not an IWSLT'14 {pair} archive; missing {', '.join(missing)}")
