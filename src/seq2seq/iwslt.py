"""Readers for the official IWSLT'14 (WIT3) layout: `train.tags.*` text files and `IWSLT14.*.xml` sets.

They follow fairseq's prepare-iwslt14.sh: metadata lines are dropped, <title>/<description> keep
their text, each <seg> is one segment. Text stays cased and untokenized.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

from seq2seq.errors import DataError
from seq2seq.io import read_lines

log = logging.getLogger(__name__)

# Lines starting with these tags are talk metadata, not text.
META_TAGS = ("<url>", "<talkid>", "<keywords>", "<speaker>", "<reviewer", "<translator", "<doc", "</doc>")
# These wrap text that fairseq keeps as a training segment.
TEXT_TAGS = re.compile(r"</?(title|description)>")

_SEG_LINE = re.compile(r'<seg\s+id\s*=\s*"([^"]*)"\s*>(.*?)</seg>')
_ENTITY = re.compile(r"&(amp|lt|gt|quot|apos|#[0-9]+|#[xX][0-9a-fA-F]+);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def read_train_tags(path: str | os.PathLike) -> list[str]:
    """Text lines of a `train.tags.{pair}.{lang}` file, metadata dropped, whitespace stripped."""
    out = []
    for line in read_lines(path):
        line = line.strip()
        if line.startswith(META_TAGS):
            continue
        out.append(TEXT_TAGS.sub("", line).strip())
    return out


def read_xml_segments(path: str | os.PathLike) -> list[str]:
    """Text of every `<seg id="N">` in document order, entities unescaped, whitespace stripped.

    Well-formed files are read with an XML parser; others fall back to one `<seg>` per line
    (like fairseq's `grep '<seg id'`). A seg id repeated within one <doc> raises DataError.
    """
    data = Path(path).read_bytes()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        line, col = e.position
        log.warning("%s:%d:%d: not well-formed XML (%s); reading one <seg> per line", path, line, col, e.msg)
        return _read_seg_lines(path)
    segs = []
    for doc in list(root.iter("doc")) or [root]:
        docid = doc.get("docid", "?")
        seen = set()
        for seg in doc.iter("seg"):
            sid = seg.get("id")
            if sid is None:
                raise DataError(f"{path}: doc {docid}: <seg> without an id")
            if sid in seen:
                raise DataError(f"{path}: doc {docid}: duplicate seg id {sid}")
            seen.add(sid)
            segs.append("".join(seg.itertext()).strip())
    return segs


def _read_seg_lines(path: str | os.PathLike) -> list[str]:
    """Fallback for files an XML parser rejects: one `<seg id="N"> text </seg>` per line."""
    segs, seen = [], set()
    for n, line in enumerate(read_lines(path), start=1):
        if line.lstrip().startswith("<doc"):
            seen = set()
        if "<seg" not in line:
            continue
        m = _SEG_LINE.search(line)
        if m is None:
            raise DataError(f"{path}:{n}: cannot read <seg> line: {line.strip()[:80]!r}")
        sid, text = m.groups()
        if sid in seen:
            raise DataError(f"{path}:{n}: duplicate seg id {sid}")
        seen.add(sid)
        segs.append(unescape(text).strip())
    if not segs:
        raise DataError(f"{path}: not well-formed XML and no <seg> lines found")
    return segs


def unescape(text: str) -> str:
    """Replace the five XML entities and numeric character references; leave anything else."""

    def repl(m: re.Match) -> str:
        name = m.group(1)
        if name[0] != "#":
            return _NAMED[name]
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        try:
            return chr(code)
        except (ValueError, OverflowError):
            return m.group(0)

    return _ENTITY.sub(repl, text)


def read_pair(
    path_src: str | os.PathLike,
    path_tgt: str | os.PathLike,
    reader: Callable[[str | os.PathLike], list[str]],
) -> tuple[list[str], list[str]]:
    """Read both sides with `reader`; DataError naming both files and counts if they differ."""
    for path in (path_src, path_tgt):
        if not Path(path).is_file():
            raise DataError(f"{path}: not found")
    src, tgt = reader(path_src), reader(path_tgt)
    if len(src) != len(tgt):
        raise DataError(
            f"misaligned pair: {path_src} has {len(src)} segments but {path_tgt} has {len(tgt)}"
        )
    return src, tgt
