"""Property-based tests (hypothesis) of the corpus readers: train.tags, the XML sets, parallel files.

Every input either parses to exactly the expected aligned pairs or fails with the project's own
error (DataError, a Seq2SeqError) whose message names the file and, where known, the line: never
another exception, never pairs zipped with the wrong partner. Inputs are rendered from a model
(talks, docs, splits), given harmless changes (BOM, CRLF, unknown tags, odd characters, 100,000
character lines, empty segments) and, in some examples, one change that breaks the alignment or
the format; the model says which outcome is right. The text expected of a train.tags file is what
fairseq's own commands (grep, sed) make of it, run on the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seq2seq.data import parallel
from seq2seq.data.iwslt import read_pair, read_train_tags, read_xml_segments
from seq2seq.data.parallel import copy_parallel
from seq2seq.errors import DataError, Seq2SeqError
from seq2seq.io import read_lines

# SEQ2SEQ_PROPERTY_EXAMPLES=2000 for a longer search than the default run's.
SETTINGS = settings(max_examples=int(os.environ.get("SEQ2SEQ_PROPERTY_EXAMPLES", 80)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = 100_000
BOM = b"\xef\xbb\xbf"

# fairseq's prepare-iwslt14.sh on a train.tags file, its commands as written there; the train.tags
# oracle runs them (GNU grep and sed, C locale: bytes are bytes; grep -a: a NUL byte does not make
# the text "binary"), so the expected pairs come from other code than the reader's.
FAIRSEQ_TAGS = ("grep -a -v '<url>' | grep -a -v '<talkid>' | grep -a -v '<keywords>' | "
                "sed -e 's/<title>//g' | sed -e 's/<\\/title>//g' | "
                "sed -e 's/<description>//g' | sed -e 's/<\\/description>//g'")
GREP_V = ["<url>", "<talkid>", "<keywords>"]
BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits on


def tmpdir():
    return tempfile.TemporaryDirectory(prefix="seq2seq-prop-")


def _short(x):
    if isinstance(x, (str, bytes)) and len(x) > 300:
        return x[:120] + x[-60:]  # shortened only in the report of a failing example
    if isinstance(x, dict):
        return {k: _short(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_short(v) for v in x)
    return x


class Case(dict):
    """A generated example; its repr (what hypothesis reports) shortens 100,000-character lines."""

    def __repr__(self) -> str:
        return f"Case({_short(dict(self))!r})"


# --- text --------------------------------------------------------------------------------------
SPECIAL = ["\r", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\t", "  ", "<", ">", "&", "&amp;",
           "&#39;", "&#xD800;", '"', "'", "\ufeff", "\x00", '<seg id="9">', "</seg>", "<title>",
           "</description>", "<doc", "<url>", "<foo>", "\u00e9", "\U0001f600", "\ufffe"]
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n")
any_text = st.lists(st.one_of(st.text(_chars, max_size=6), st.sampled_from(SPECIAL)), max_size=5).map("".join)


def long_text(seed: str) -> str:
    seed = seed.replace("\n", " ") or "x"
    return (seed * (LONG // len(seed) + 1))[:LONG]


def eol_join(lines: list[str], crlf: bool, final: bool) -> str:
    """The lines with LF or CRLF ends; the last end only if `final` (or needed: an empty last line)."""
    eol = "\r\n" if crlf else "\n"
    final = final or bool(lines and lines[-1] == "")
    return eol.join(lines) + (eol if final and lines else "")


# --- train.tags --------------------------------------------------------------------------------
def not_meta(s: str) -> bool:
    return not any(g in s for g in GREP_V)


tags_text = any_text.filter(not_meta)
# Text lines that look like tags but are not metadata for fairseq: kept as written.
TAG_LIKE_TEXT = ["<foo>bar</foo>", "<applause/>", "<docs>", "<reviewers> x", "<urls>", "</p>",
                 "<speakers>", "<title></title>", '<seg id="1">x</seg>', "&amp; <3", "<speaker>S</speaker>",
                 '<reviewer href="http://r">R</reviewer>', "<translator>T</translator>", '<doc docid="1">',
                 "</doc>", "  <reviewer></reviewer>  ", "<<title>/title>", "<url >", "<tit<title>le>"]
# Metadata that may turn up inside a talk's text: any line holding <url> or <keywords>.
META_LINES = ["<url>http://x</url>", "<keywords>a, b</keywords>", "text <url> inside", "  x<keywords>"]
MISALIGN_TAGS = ["drop", "extra", "move", "swap_talks"]


@st.composite
def train_tags_case(draw):
    """Two sides with the same talks and text lines per talk, maybe one misalignment."""
    n_talks = draw(st.integers(1, 4))
    talks = []
    for t in range(n_talks):
        body = draw(st.lists(st.tuples(tags_text, tags_text), max_size=5))
        for _ in range(draw(st.integers(0, 2))):  # tag-like text and metadata inside the text
            at = draw(st.integers(0, len(body)))
            kind = draw(st.sampled_from(["text", "meta"]))
            pool = TAG_LIKE_TEXT if kind == "text" else META_LINES
            body.insert(at, (kind, draw(st.sampled_from(pool)), draw(st.sampled_from(pool))))
        talks.append({
            "talkid": str(1000 + t),
            "title": draw(st.tuples(tags_text, tags_text)),
            "description": draw(st.tuples(tags_text, tags_text)),
            "meta": draw(st.tuples(any_text, any_text)),  # dropped whatever it holds
            "body": body,
            "credits_at_end": draw(st.booleans()),  # WIT3 puts <reviewer>/<translator> after the text
        })
    if draw(st.integers(0, 9)) == 0:  # now and then a 100,000-character pair
        talk = draw(st.sampled_from(talks))
        pair = tuple(long_text(draw(tags_text)) for _ in range(2))
        talk["body"].insert(0, tuple(t if not_meta(t) else "x" * LONG for t in pair))  # "\r<doc" * n is metadata
    sides = [_tags_lines(talks, side) for side in (0, 1)]
    misalign = draw(st.sampled_from([None] * 5 + MISALIGN_TAGS))
    if misalign:
        side = draw(st.integers(0, 1))
        if not _misalign_tags(draw, sides[side], misalign):
            misalign = None
    files = [eol_join([line for line, _ in lines], draw(st.booleans()), draw(st.booleans()))
             for lines in sides]
    boms = [draw(st.booleans()), draw(st.booleans())]
    return Case({"files": [(BOM if bom else b"") + text.encode("utf-8") for bom, text in zip(boms, files)],
            "sides": sides, "misalign": misalign})


def _tags_lines(talks: list[dict], side: int) -> list[tuple[str, int | None]]:
    """The file's lines as (line, talk index or None for metadata)."""
    lines = []
    for i, talk in enumerate(talks):
        meta = talk["meta"][side].replace("\n", " ")
        # The <speaker> line comes before <talkid>, so the reader counts it in the talk before:
        # like the credits and tag-like lines, it is text but never chosen to break alignment (None).
        name = meta.replace("<url>", "").replace("<talkid>", "").replace("<keywords>", "")
        lines += [(f"<url>http://www.ted.com/talks/{meta}</url>", None), (f"<keywords>{meta}</keywords>", None),
                  (f"<speaker>{name}</speaker>", None), (f"<talkid>{talk['talkid']}</talkid>", None),
                  (f"<title>{talk['title'][side]}</title>", i),
                  (f"  <description>{talk['description'][side]}</description> ", i)]
        credits = [(f'<reviewer href="http://www.ted.com/profiles/{i}">{name}</reviewer>' if side == 0 else
                    "<reviewer></reviewer>", None),
                   (f'<translator href="http://www.ted.com/profiles/{i}">{name}</translator>' if side == 0 else
                    "<translator></translator>", None)]
        if not talk["credits_at_end"]:
            lines += credits
        for item in talk["body"]:
            if len(item) == 3:  # ("text" | "meta", src line, tgt line): never chosen to break alignment
                lines.append((item[1 + side], None))
            else:
                lines.append((item[side], i))
        if talk["credits_at_end"]:
            lines += credits
    return lines


def _misalign_tags(draw, lines: list, how: str) -> bool:
    """Break one side's alignment in place; False if this side has nothing to break."""
    text_at = [k for k, (_, talk) in enumerate(lines) if talk is not None]
    talks = sorted({lines[k][1] for k in text_at})
    if how == "drop":
        del lines[draw(st.sampled_from(text_at))]
    elif how == "extra":
        k = draw(st.sampled_from(text_at))
        lines.insert(k, ("an extra line", lines[k][1]))
    elif how == "move":  # a line lost in one talk, an extra one in another: same total count
        if len(talks) < 2:
            return False
        a, b = draw(st.permutations(talks))[:2]
        del lines[draw(st.sampled_from([k for k in text_at if lines[k][1] == a]))]
        k = max(k for k, (_, talk) in enumerate(lines) if talk == b)
        lines.insert(k + 1, ("an extra line", b))
    elif how == "swap_talks":  # same counts, other order
        if len(talks) < 2:
            return False
        a, b = draw(st.permutations(talks))[:2]
        ia, ib = _talk_span(lines, a), _talk_span(lines, b)
        (s1, e1), (s2, e2) = sorted([ia, ib])
        lines[s1:e2] = lines[s2:e2] + lines[e1:s2] + lines[s1:e1]
    return True


def _talk_span(lines, talk):
    """[start, end) of a talk's lines, from its <url> line to the next talk's <url> line."""
    starts = [k for k, (line, _) in enumerate(lines) if line.startswith("<url>http://www.ted.com/talks/")]
    start = starts[talk]
    end = starts[talk + 1] if talk + 1 < len(starts) else len(lines)
    return start, end


def expected_tags(data: bytes) -> list[str]:
    """What fairseq's commands (FAIRSEQ_TAGS) make of a train.tags file, then the project's rules for
    every reader: a leading BOM is dropped, lines end at LF (with a CR before it), whitespace stripped."""
    data = data.removeprefix(BOM)
    out = subprocess.run(["bash", "-c", FAIRSEQ_TAGS], input=data, capture_output=True, check=True,
                         env={**os.environ, "LC_ALL": "C"}).stdout
    lines = out.split(b"\n")[:-1]  # grep ends every line it prints with LF, the last one too
    return [line.decode("utf-8").strip() for line in lines]


def utf8_ok(strings) -> bool:
    for s in strings:
        assert isinstance(s, str)
        s.encode("utf-8")  # no lone surrogates: whatever a reader returns can be written back
    return True


@SETTINGS
@given(train_tags_case())
def test_train_tags_pairs_are_the_rendered_pairs_or_data_error(case):
    with tmpdir() as d:
        paths = [Path(d) / "train.tags.de-en.de", Path(d) / "train.tags.de-en.en"]
        for path, data in zip(paths, case["files"]):
            path.write_bytes(data)
        if case["misalign"]:
            with pytest.raises(DataError) as e:
                read_pair(*paths, read_train_tags)
            assert str(paths[0]) in str(e.value) and str(paths[1]) in str(e.value)
            return
        src, tgt = read_pair(*paths, read_train_tags)
        assert utf8_ok(src) and utf8_ok(tgt)
        assert src == expected_tags(case["files"][0])
        assert tgt == expected_tags(case["files"][1])
        assert src == read_train_tags(paths[0]) and tgt == read_train_tags(paths[1])


# --- random bytes --------------------------------------------------------------------------------
FRAGMENTS = [BOM, b"\r\n", b"\n", b"\r", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x80\xa8", b"\xc2\x85",
             b"<url>u</url>", b"<talkid>7</talkid>", b"<title>t</title>", b'<doc docid="1">', b"</doc>",
             b'<seg id="1">', b'<seg id="2"/>', b"</seg>", b"<seg>", b"&amp;", b"&#xD800;", b"&#0;", b"&",
             b"<mteval>", b"</mteval>", b'<?xml version="1.0" encoding="UTF-8"?>', b"<", b" x y "]
random_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(st.binary(max_size=8), st.sampled_from(FRAGMENTS)), max_size=30).map(b"".join),
)


def first_bad_line(data: bytes) -> int | None:
    """1-based line of the first invalid UTF-8 in a file read by read_lines, or None."""
    if data.startswith(BOM):
        data = data[3:]
    for n, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return n
    return None


@SETTINGS
@given(random_bytes, st.sampled_from([read_lines, read_train_tags, read_xml_segments]))
@example(b'<mteval>\n<seg id="1">&#xD800; a & b</seg>\n', read_xml_segments)  # was: a lone surrogate
@example(b'<doc docid="1">\n<seg id="1">a</seg><seg id="1">b</seg>\n', read_xml_segments)
@example(BOM + b"<talkid>1</talkid>\r\nok\r\n\xff bad\r\n", read_train_tags)
@example(b"a\rb\r\r\n\xc2\x85\n\n", read_lines)
def test_random_bytes_give_strings_or_an_error_naming_file_and_line(data, reader):
    with tmpdir() as d:
        path = Path(d) / "corpus.de"
        path.write_bytes(data)
        bad = first_bad_line(data)
        try:
            out = reader(path)
        except Seq2SeqError as e:
            msg = str(e)
            assert isinstance(e, DataError) and str(path) in msg
            if bad is not None and reader is not read_xml_segments:
                assert f"{path}:{bad}: not valid UTF-8" in msg
            elif bad is not None and "no <seg> lines" not in msg:
                assert re.search(re.escape(str(path)) + r":\d+", msg), msg
            return
        assert isinstance(out, list) and utf8_ok(out)
        if reader is not read_xml_segments:  # an XML declaration may name another encoding
            assert bad is None
        if reader is read_lines:  # one string per LF, plus an unterminated last line
            raw = data.removeprefix(BOM).split(b"\n")
            assert len(out) == len(raw) - (raw[-1] == b"")


# --- XML sets --------------------------------------------------------------------------------
# Changes that keep the set readable and aligned, each on one side or both.
XML_BENIGN = ["decl", "bom", "crlf", "unknown_tags", "raw_amp", "stray_doc_end", "unclosed_doc", "join"]
# Changes after which read_pair must fail; "invalid" ones name the broken line.
XML_INVALID = ["dup_id", "no_id", "unclosed_seg", "nested_seg"]
XML_MISALIGN = ["swap_ids", "swap_segs", "drop_seg", "move_seg", "docid"]
_XML_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_escape(text: str, refs: bool) -> str:
    out = []
    for c in text:
        if c in "&<>":
            out.append({"&": "&amp;", "<": "&lt;", ">": "&gt;"}[c])
        elif c in "\r\n":
            out.append(f"&#{ord(c)};")
        elif refs and not _XML_BAD_CHARS.match(c) and c not in " \t":
            out.append(f"&#x{ord(c):X};" if ord(c) % 2 else f"&#{ord(c)};")
        else:
            out.append(c)  # characters XML forbids go in raw: the file is then read as text
    return "".join(out)


seg_text = st.one_of(any_text, st.sampled_from(["", "   ", "\t"]), st.text(_chars, max_size=4).map(lambda s: s + "\n" + s))


@st.composite
def xml_case(draw):
    docids = draw(st.lists(st.integers(1, 999), min_size=1, max_size=3, unique=True))
    docs = []
    for docid in docids:
        ids = [str(i) for i in range(1, draw(st.integers(0, 5)) + 1)]
        if draw(st.booleans()):
            ids = draw(st.permutations(ids))  # out of order, the same on both sides: accepted
        docs.append({"docid": str(docid), "title": draw(st.tuples(any_text, any_text)),
                     "segs": [{"id": sid, "text": draw(st.tuples(seg_text, seg_text)),
                               "refs": draw(st.tuples(st.booleans(), st.booleans())),
                               "selfclose": draw(st.tuples(st.booleans(), st.booleans()))} for sid in ids]})
    all_segs = [seg for doc in docs for seg in doc["segs"]]
    if all_segs and draw(st.integers(0, 9)) == 0:
        seg = draw(st.sampled_from(all_segs))
        seg["text"] = (long_text(draw(any_text)), long_text(draw(any_text)))
    benign = [draw(st.sets(st.sampled_from(XML_BENIGN))) for _ in range(2)]
    bad = draw(st.sampled_from([None] * 4 + XML_INVALID + XML_MISALIGN))
    side = draw(st.integers(0, 1))
    sides = [_side_docs(docs, s) for s in (0, 1)]
    if bad and not _break_xml(draw, sides[side], bad):
        bad = None
    rendered = [_render_xml(draw, sides[s], s, benign[s]) for s in (0, 1)]
    return Case({"docs": docs, "sides": sides, "rendered": rendered, "bad": bad, "side": side})


def _side_docs(docs, side):
    return [{"docid": d["docid"], "title": d["title"][side],
             "segs": [{"id": s["id"], "text": s["text"][side], "refs": s["refs"][side],
                       "selfclose": s["selfclose"][side] and not s["text"][side], "flag": None}
                      for s in d["segs"]]} for d in docs]


def _break_xml(draw, docs, bad) -> bool:
    segs = [(d, k) for d, doc in enumerate(docs) for k in range(len(doc["segs"]))]
    pairs = [(d, k) for d, k in segs if k >= 1]  # a seg with an earlier one in its doc
    if bad in ("dup_id", "swap_ids", "swap_segs"):
        if not pairs:
            return False
        d, k = draw(st.sampled_from(pairs))
        j = draw(st.integers(0, k - 1))
        a, b = docs[d]["segs"][j], docs[d]["segs"][k]
        if bad == "dup_id":
            b["id"], b["flag"] = a["id"], "bad"
        elif bad == "swap_ids":
            a["id"], b["id"] = b["id"], a["id"]
        else:
            docs[d]["segs"][j], docs[d]["segs"][k] = b, a
        return True
    if not segs:
        return False
    d, k = draw(st.sampled_from(segs))
    seg = docs[d]["segs"][k]
    if bad == "no_id":
        seg["id"], seg["flag"] = None, "bad"
    elif bad == "unclosed_seg":
        seg["selfclose"], seg["flag"] = False, "unclosed"
    elif bad == "nested_seg":
        seg["selfclose"], seg["flag"] = False, "nested"
    elif bad == "drop_seg":
        del docs[d]["segs"][k]
    elif bad == "move_seg":  # one seg fewer here, one more elsewhere: same count
        del docs[d]["segs"][k]
        other = draw(st.sampled_from(docs))
        other["segs"].append({"id": "new", "text": "moved", "refs": False, "selfclose": False, "flag": None})
    elif bad == "docid":
        docs[d]["docid"] += "0"
    return True


def _render_xml(draw, docs, side, benign):
    """(bytes, line of the seg flagged "bad"/"unclosed"/"nested" or None)."""
    lines = []  # (text, flagged)
    if "decl" in benign:
        lines.append(('<?xml version="1.0" encoding="UTF-8"?>', False))
    lines += [("<mteval>", False),
              ('<srcset setlang="de" srclang="de">' if side == 0 else
               '<refset setlang="en" srclang="de" trglang="en" refid="ref">', False)]
    for n, doc in enumerate(docs):
        lines.append((f'<doc docid="{doc["docid"]}" genre="lectures">', False))
        lines += [(f"<url>http://www.ted.com/talks/{doc['docid']}.html</url>", False),
                  (f"<title>{xml_escape(doc['title'], False)}</title>", False)]
        if "unknown_tags" in benign:
            lines += [('<applause kind="x"/>', False), ("<foo>bar <b>baz</b></foo>", False)]
        if "raw_amp" in benign and n == 0:
            lines.append(("<p>Tom & Jerry</p>", False))
        for seg in doc["segs"]:
            attr = "" if seg["id"] is None else f' id="{seg["id"]}"'
            if seg["selfclose"]:
                line = f"<seg{attr}/>"
            else:
                body = xml_escape(seg["text"], seg["refs"])
                close = "" if seg["flag"] == "unclosed" else "</seg>"
                inner = '<seg id="inner">x</seg>' if seg["flag"] == "nested" else ""
                line = f"<seg{attr}> {body} {inner}{close}"
            lines.append((line, seg["flag"] is not None))
        if not ("unclosed_doc" in benign and n == len(docs) - 1):
            lines.append(("</doc>", False))
        if "stray_doc_end" in benign:
            lines.append(("</doc>", False))
    lines += [("</srcset>" if side == 0 else "</refset>", False), ("</mteval>", False)]
    if "join" in benign:  # two segs on one line
        seg_at = [k for k, (line, _) in enumerate(lines) if line.startswith("<seg")]
        if len(seg_at) >= 2:
            k = draw(st.sampled_from(seg_at[:-1]))
            if lines[k + 1][0].startswith("<seg"):
                lines[k:k + 2] = [(lines[k][0] + lines[k + 1][0], lines[k][1] or lines[k + 1][1])]
    flagged = next((k + 1 for k, (_, flag) in enumerate(lines) if flag), None)
    text = eol_join([line for line, _ in lines], "crlf" in benign, True)
    return (BOM if "bom" in benign else b"") + text.encode("utf-8"), flagged


def expected_xml(docs) -> list[str]:
    return [seg["text"].strip() for doc in docs for seg in doc["segs"]]


@SETTINGS
@given(xml_case())
def test_xml_sets_pair_by_doc_and_seg_id_or_data_error(case):
    with tmpdir() as d:
        paths = [Path(d) / "IWSLT14.TED.tst2010.de-en.de.xml", Path(d) / "IWSLT14.TED.tst2010.de-en.en.xml"]
        for path, (data, _) in zip(paths, case["rendered"]):
            path.write_bytes(data)
        bad, side = case["bad"], case["side"]
        empty = [s for s in (0, 1) if not expected_xml(case["sides"][s])]
        if empty and not (bad in XML_INVALID and side == empty[0]):  # a set without any <seg> is refused
            with pytest.raises(DataError, match=re.escape(f"{paths[empty[0]]}: ") + ".*no <seg>"):
                read_pair(*paths, read_xml_segments)
            return
        if bad:
            with pytest.raises(DataError) as e:
                read_pair(*paths, read_xml_segments)
            msg = str(e.value)
            if bad in XML_INVALID:
                line = case["rendered"][side][1]
                assert str(paths[side]) in msg and re.search(rf"(:|line ){line}\b", msg), msg
            else:
                assert str(paths[0]) in msg and str(paths[1]) in msg, msg
            return
        src, tgt = read_pair(*paths, read_xml_segments)
        assert utf8_ok(src) and utf8_ok(tgt)
        assert src == expected_xml(case["sides"][0])
        assert tgt == expected_xml(case["sides"][1])


# --- parallel files via copy_parallel ----------------------------------------------------------
SPLITS = ("train", "valid", "test")
parallel_text = any_text


@st.composite
def parallel_case(draw):
    files = {}
    for split in SPLITS:
        pairs = draw(st.lists(st.tuples(parallel_text, parallel_text), max_size=5))
        if pairs and draw(st.integers(0, 14)) == 0:
            k = draw(st.integers(0, len(pairs) - 1))
            pairs[k] = (long_text(pairs[k][0]), long_text(pairs[k][1]))
        for side, lang in enumerate(("de", "en")):
            files[f"{split}.{lang}"] = {"lines": [p[side] for p in pairs], "bom": draw(st.booleans()),
                                        "crlf": draw(st.booleans()), "final": draw(st.booleans()), "bad_line": None}
    files = Case(files)
    bad = draw(st.sampled_from([None] * 4 + ["drop", "bad_utf8"]))
    if bad:
        name = draw(st.sampled_from(sorted(files)))
        f = files[name]
        if not f["lines"]:
            bad = None
        elif bad == "drop":
            del f["lines"][draw(st.integers(0, len(f["lines"]) - 1))]
        else:
            f["bad_line"] = draw(st.integers(1, len(f["lines"])))
    return files


def _parallel_bytes(f) -> bytes:
    lines = list(f["lines"])
    final = (f["final"] or not lines or lines[-1] == "" or lines[-1].endswith("\r")
             or (len(lines) == 1 and not f["bom"] and lines[0] == "\ufeff"))  # else: an empty file
    eol = b"\r\n" if f["crlf"] else b"\n"
    encoded = [line.encode("utf-8") for line in lines]
    if f["bad_line"]:
        encoded[f["bad_line"] - 1] = b"ok \xc3\x28 " + encoded[f["bad_line"] - 1]
    data = eol.join(encoded) + (eol if final and lines else b"")
    return (BOM if f["bom"] else b"") + data


def _parallel_expected(f) -> list[str]:
    """What read_lines gives: LF files lose one trailing CR per line (it is a CRLF), a leading U+FEFF goes."""
    lines = [line if f["crlf"] else line.removesuffix("\r") for line in f["lines"]]
    if lines and not f["bom"]:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines


@SETTINGS
@given(parallel_case())
def test_copy_parallel_keeps_pairs_aligned_or_names_files_lines_and_counts(files):
    with tmpdir() as d:
        folder, dest = Path(d) / "corpus", Path(d) / "raw/parallel"
        folder.mkdir()
        for name, f in files.items():
            (folder / name).write_bytes(_parallel_bytes(f))
        problem = None  # the first one copy_parallel meets: splits in order, de before en, then counts
        for split in SPLITS:
            for lang in ("de", "en"):
                if files[f"{split}.{lang}"]["bad_line"]:
                    problem = problem or f"{folder / f'{split}.{lang}'}:{files[f'{split}.{lang}']['bad_line']}: not valid UTF-8"
            n, m = len(files[f"{split}.de"]["lines"]), len(files[f"{split}.en"]["lines"])
            if n != m:
                problem = problem or f"{folder / f'{split}.de'} has {n} segments but {folder / f'{split}.en'} has {m}"
        if problem:
            with pytest.raises(DataError) as e:
                copy_parallel(folder, dest, "de", "en")
            assert problem in str(e.value)
            return
        counts = copy_parallel(folder, dest, "de", "en")
        for split in SPLITS:
            want = {lang: [re.sub(f"[{BREAKS}]+", " ", line) for line in _parallel_expected(files[f"{split}.{lang}"])]
                    for lang in ("de", "en")}
            assert counts[split] == len(want["de"]) == len(want["en"])
            for lang in ("de", "en"):
                data = (dest / f"{split}.{lang}").read_bytes()
                assert read_lines(dest / f"{split}.{lang}") == want[lang]
                assert b"\r" not in data  # and no BOM, unless the text starts with U+FEFF:
                assert data.startswith(BOM) == (want[lang][:1] != [] and want[lang][0].startswith("\ufeff"))
                assert data.count(b"\n") == counts[split]  # one line per segment, for any line reader
                assert len(data.decode("utf-8").splitlines()) == counts[split]
        out = Path(d) / "prepared"
        out.mkdir()
        parallel.prepare_parallel(Path(d) / "raw", out, "de", "en")
        for split in ("valid", "test"):  # as given, still aligned
            for lang in ("de", "en"):
                assert (out / f"{split}.{lang}").read_bytes() == (dest / f"{split}.{lang}").read_bytes()


# --- the bugs these properties found, as plain examples ------------------------------------------
def test_line_moved_between_talks_is_refused_though_counts_match(tmp_path):
    de = "<talkid>1</talkid>\na1\na2\n<talkid>2</talkid>\nb1\n"
    en = "<talkid>1</talkid>\nA1\n<talkid>2</talkid>\nB1\nB2\n"
    (tmp_path / "t.de").write_text(de)
    (tmp_path / "t.en").write_text(en)
    with pytest.raises(DataError, match=r"t\.de:3 \(talk 1 \(talkid 1\)\) but \S*t\.en:4 \(talk 2 \(talkid 2\)\)"):
        read_pair(tmp_path / "t.de", tmp_path / "t.en", read_train_tags)


def test_tag_like_text_lines_are_text(tmp_path):
    (tmp_path / "t.de").write_text("<talkid>1</talkid>\n<docs> sind gut\n<reviewers> x\n<reviewer href='r'>R</reviewer>\n"
                                   "x <keywords> y\n<<title>/title>\n")
    assert read_train_tags(tmp_path / "t.de") == ["<docs> sind gut", "<reviewers> x", "<reviewer href='r'>R</reviewer>", ""]


def test_xml_reordered_segments_are_refused(tmp_path):
    de = '<mteval><doc docid="1">\n<seg id="1">eins</seg>\n<seg id="2">zwei</seg>\n</doc></mteval>\n'
    en = '<mteval><doc docid="1">\n<seg id="2">two</seg>\n<seg id="1">one</seg>\n</doc></mteval>\n'
    (tmp_path / "a.de.xml").write_text(de)
    (tmp_path / "a.en.xml").write_text(en)
    with pytest.raises(DataError, match=r"a\.de\.xml:2 \(doc 1 seg id 1\) but \S*a\.en\.xml:2 \(doc 1 seg id 2\)"):
        read_pair(tmp_path / "a.de.xml", tmp_path / "a.en.xml", read_xml_segments)
    (tmp_path / "a.en.xml").write_text(de.replace("eins", "one").replace("zwei", "two"))
    assert read_pair(tmp_path / "a.de.xml", tmp_path / "a.en.xml", read_xml_segments) == (["eins", "zwei"], ["one", "two"])


def test_xml_ids_out_of_order_accepted_when_both_sides_agree(tmp_path):
    for lang, words in (("de", ("drei", "eins")), ("en", ("three", "one"))):
        (tmp_path / f"b.{lang}.xml").write_text(f'<mteval><doc docid="9">\n<seg id="3">{words[0]}</seg>\n'
                                                f'<seg id="1">{words[1]}</seg>\n</doc></mteval>\n')
    assert read_pair(tmp_path / "b.de.xml", tmp_path / "b.en.xml", read_xml_segments) == (["drei", "eins"], ["three", "one"])


def test_xml_fallback_reads_every_seg_on_a_line_and_self_closing_segs(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text('<mteval>\n<doc docid="1">\n<seg id="1">a & b</seg><seg id="2">c</seg>\n<seg id="3"/>\n</doc>\n</doc>\n')
    assert read_xml_segments(path) == ["a & b", "c", ""]


def test_xml_fallback_leaves_references_to_forbidden_characters(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text('<mteval>\n<seg id="1">&#xD800; &#0; &#x263A; & </seg>\n')
    assert read_xml_segments(path) == ["&#xD800; &#0; \u263a &"]


def test_xml_nested_seg_names_both_lines(tmp_path):
    path = tmp_path / "n.xml"
    path.write_text('<mteval>\n<seg id="1">a\n<seg id="2">b</seg></seg>\n</mteval>\n')
    with pytest.raises(DataError, match=r"n\.xml:3: <seg> inside the <seg> opened on line 2"):
        read_xml_segments(path)


def test_copy_parallel_line_break_characters_become_spaces(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for split in SPLITS:
        (folder / f"{split}.de").write_bytes(b"a\rb\r\r\nc\xc2\x85d\n")
        (folder / f"{split}.en").write_bytes(BOM + b"x\xe2\x80\xa8y\r\nz\r\n")
    assert copy_parallel(folder, tmp_path / "out", "de", "en") == {s: 2 for s in SPLITS}
    assert (tmp_path / "out/train.de").read_bytes() == b"a b \nc d\n"
    assert (tmp_path / "out/train.en").read_bytes() == b"x y\nz\n"
