"""Stage 2 and the IWSLT readers, on archives built in the official layout (tests/iwslt_fixtures.py)."""

import json

import pytest
from iwslt_fixtures import (
    BAD_PAIRS,
    EDGE_PAIRS,
    MOSES_DROPPED,
    MOSES_KEPT,
    REVIEWER,
    TEST_ODD_PAIR,
    TEST_SETS,
    build_iwslt_archive,
    filtered_out,
    make_corpus,
    make_parallel,
    train_pairs,
    write_parallel,
    xml_pairs,
)
from omegaconf import OmegaConf

from seq2seq.config.params import compose
from seq2seq.data import cleaning, fairseq, parallel
from seq2seq.data.fetch import safe_extract
from seq2seq.data.iwslt import read_pair, read_train_tags, read_xml_segments
from seq2seq.data.parallel import copy_parallel
from seq2seq.errors import DataError
from seq2seq.io import read_lines
from seq2seq.stages import prepare

CORPUS = make_corpus()
# 3 talks of speaker, title, description, reviewer, translator, 80 lines; extras in talk 1
N_RAW = 3 * (5 + 80) + len(BAD_PAIRS) + len(EDGE_PAIRS) + 2
CLEAN = [p for p in train_pairs(CORPUS) if p not in filtered_out(CORPUS)]


def extract(tmp_path, **kw):
    """Build an archive and extract it; returns the raw folder (holding de-en/)."""
    archive = build_iwslt_archive(tmp_path / "archive", **kw)
    safe_extract(archive, tmp_path / "raw")
    return tmp_path / "raw"


def cfg_for(**data):
    cfg = compose(["data=parallel"] if data.get("source") == "parallel" else [])
    for key, value in data.items():
        cfg.data[key] = value
    return cfg


# --- readers ---------------------------------------------------------------------------------
def test_train_tags_drop_metadata_keep_title_and_description(tmp_path):
    raw = extract(tmp_path)
    de = read_train_tags(raw / "de-en/train.tags.de-en.de")
    en = read_train_tags(raw / "de-en/train.tags.de-en.en")
    assert de == [s for s, _ in train_pairs(CORPUS)]
    assert en == [t for _, t in train_pairs(CORPUS)]
    assert len(de) == N_RAW == 263
    # fairseq drops only the <url>, <talkid> and <keywords> lines and the title/description tags
    assert de[:6] == ["<speaker>Speaker 101</speaker>", "Titel 1: Ideen", "Beschreibung 1 des Vortrags", REVIEWER[0],
                      '<translator href="http://www.ted.com/profiles/2">Tom Translator</translator>',
                      CORPUS["talks"][0]["lines"][0][0]]
    assert en[3:5] == ["<reviewer></reviewer>", "<translator></translator>"]
    assert not [line for line in de if any(tag in line for tag in ("<url>", "<talkid>", "<keywords>", "<title>",
                                                                    "</title>", "<description>", "</description>"))]
    assert "Rock & Roll <3" in de  # train text is not XML: nothing unescaped or stripped


def test_train_tags_strips_whitespace_bom_crlf(tmp_path):
    path = tmp_path / "t.de"
    path.write_bytes(b"\xef\xbb\xbf<url>u</url>\r\n  <title> Hallo </title>\r\n  Welt  \r\n<talkid>1</talkid>\r\n")
    assert read_train_tags(path) == ["Hallo", "Welt"]


def test_train_tags_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "t.de"
    path.write_bytes(b"gut\n\xff kaputt\n")
    with pytest.raises(DataError, match=r"t\.de:2: not valid UTF-8"):
        read_train_tags(path)


def test_xml_segments_document_order_and_entities(tmp_path):
    raw = extract(tmp_path)
    en = read_xml_segments(raw / "de-en/IWSLT14.TED.tst2011.de-en.en.xml")
    assert en == [t for doc in CORPUS["test"]["IWSLT14.TED.tst2011"] for _, t in doc]
    assert en[2] == ""  # an empty <seg> stays
    path = tmp_path / "e.xml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<mteval><srcset setlang="de" srclang="de">\n'
                    '<doc docid="1"><title>T</title>\n'
                    '<seg id="1"> A &amp; B &lt;c&gt; &quot;d&quot; &apos;e&apos; &#39;f&#39; &#x263A; </seg>\n'
                    '<seg id="2">zwei</seg>\n</doc>\n'
                    '<doc docid="2">\n<seg id="1">drei</seg>\n</doc></srcset></mteval>\n', encoding="utf-8")
    assert read_xml_segments(path) == ["A & B <c> \"d\" 'e' 'f' \u263a", "zwei", "drei"]


def test_xml_not_well_formed_falls_back_to_seg_lines(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text('<mteval>\n<doc docid="1">\n<seg id="1"> Tom & Jerry &amp; co &#39;x&#39; </seg>\n'
                    '<seg id="2">zwei</seg>\n</doc>\n<doc docid="2">\n<seg id="1">drei</seg>\n', encoding="utf-8")
    assert read_xml_segments(path) == ["Tom & Jerry & co 'x'", "zwei", "drei"]


@pytest.mark.parametrize("well_formed", [True, False])
def test_xml_duplicate_seg_id_in_a_doc(tmp_path, well_formed):
    path = tmp_path / "dup.xml"
    amp = "&amp;" if well_formed else "&"
    path.write_text(f'<mteval><doc docid="7">\n<seg id="1">a {amp} b</seg>\n<seg id="1">c</seg>\n</doc></mteval>\n')
    with pytest.raises(DataError, match=r"dup\.xml.*duplicate seg id 1"):
        read_xml_segments(path)


def test_xml_unreadable_seg_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text('<mteval>\n<seg id="1">a & b</seg>\n<seg id="2">no end\n')
    with pytest.raises(DataError, match=r"broken\.xml:3: cannot read <seg>"):
        read_xml_segments(path)


def test_read_pair_names_both_files_and_counts(tmp_path):
    (tmp_path / "a.de").write_text("1\n2\n3\n")
    (tmp_path / "a.en").write_text("1\n2\n")
    with pytest.raises(DataError, match=r"a\.de has 3 segments but .*a\.en has 2"):
        read_pair(tmp_path / "a.de", tmp_path / "a.en", read_lines)


# --- filter and split ------------------------------------------------------------------------
@pytest.mark.parametrize("src,tgt,kept", [
    ("a b", "x y z", True),            # ratio 1.5 is allowed
    ("a b", "w x y z", False),         # ratio 2
    ("a b c d", "x y", False),         # ratio 2 the other way
    ("a", "", False),                  # empty side
    ("  ", "x", False),                # blank side
    ("a " * 175, "x " * 175, True),    # max_len words
    ("a " * 176, "x " * 176, False),   # one word too many
    ("a " + "b" * 1000, "x y", True),  # a word of 1,000 characters
    ("a " + "b" * 1001, "x y", False),  # clean-corpus-n.perl's max-word-length
])
def test_keep_pair_like_moses_clean_corpus(src, tgt, kept):
    assert cleaning.keep_pair(src.split(), tgt.split(), min_len=1, max_len=175, max_ratio=1.5) is kept


def test_keep_pair_min_len():
    assert not cleaning.keep_pair(["a", "b"], ["x", "y"], min_len=3, max_len=10, max_ratio=9)
    assert cleaning.keep_pair(["a", "b", "c"], ["x", "y", "z"], min_len=3, max_len=10, max_ratio=9)


def test_the_filter_counts_moses_tokens_as_fairseq_does():
    # tokenizer.perl -l de / -l en (escaping on), written out by hand
    assert cleaning.moses_words([MOSES_DROPPED[0]], "de", "t") == [["Hallo", ",", "Welt", "!", "Ja", "?", "Nein", "!"]]
    assert cleaning.moses_words(["it's R&D <3", ""], "en", "t") == [["it", "&apos;s", "R", "&amp;", "D", "&lt;", "3"], []]
    assert cleaning.moses_words(["Er sagt's."], "de", "t") == [["Er", "sagt", "&apos;", "s", "."]]
    # the last word's period goes even after a non-breaking prefix; inside, it stays; "..." is one token
    assert cleaning.moses_words(["Äpfel, Birnen usw.", "z.B. der U.S. Senat", "Und dann..."], "de", "t") == [
        ["Äpfel", ",", "Birnen", "usw", "."], ["z.B.", "der", "U.S.", "Senat"], ["Und", "dann", "..."]]


def test_test_sets_are_fairseqs_five_in_order_and_only_those(tmp_path):
    names = ["IWSLT14.TED.tst2013", "IWSLT14.TED.tst2012", "IWSLT14.TEDX.dev2012", "IWSLT14.ABC.dev",
             "IWSLT14.TED.dev2010"]
    for name in names:
        for lang in ("de", "en"):
            (tmp_path / f"{name}.de-en.{lang}.xml").touch()
    found, unused = fairseq.find_test_sets(tmp_path, "de", "en")
    assert [name for name, _, _ in found] == ["IWSLT14.TED.dev2010", "IWSLT14.TEDX.dev2012", "IWSLT14.TED.tst2012"]
    assert unused == ["IWSLT14.ABC.dev", "IWSLT14.TED.tst2013"]
    (tmp_path / "IWSLT14.TED.tst2012.de-en.en.xml").unlink()
    with pytest.raises(DataError, match=r"IWSLT14\.TED\.tst2012\.de-en\.de\.xml has no en side"):
        fairseq.find_test_sets(tmp_path, "de", "en")


def run_into(tmp_path, prepare_fn, raw, *args, **kw):
    """(splits as lists of pairs, stats) of prepare_iwslt / prepare_parallel, which write their output folder."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    stats = prepare_fn(raw, out, "de", "en", *args, **kw)
    return {s: list(zip(read_lines(out / f"{s}.de"), read_lines(out / f"{s}.en"))) for s in ("train", "valid", "test")}, stats


# --- iwslt14 end to end ----------------------------------------------------------------------
def test_prepare_iwslt_splits_and_stats(tmp_path):
    raw = extract(tmp_path)
    splits, stats = run_into(tmp_path, fairseq.prepare_iwslt, raw, 1, 175, 1.5, 23)
    assert len(CLEAN) == 263 - 10 == 253  # 3 bad, 1 judged by its Moses tokens, 3 reviewers, 3 translators
    assert splits["valid"] == CLEAN[22::23]
    assert splits["train"] == [p for i, p in enumerate(CLEAN, 1) if i % 23]
    assert splits["test"] == xml_pairs(CORPUS)
    assert not filtered_out(CORPUS) & set(splits["train"] + splits["valid"])
    assert {*EDGE_PAIRS, MOSES_KEPT} <= set(splits["train"] + splits["valid"])
    assert ("<speaker>Speaker 102</speaker>",) * 2 in splits["train"] + splits["valid"]
    assert TEST_ODD_PAIR in splits["test"]  # test is never filtered
    assert stats == {
        "train_raw": 263, "train_filtered_out": 10, "train": 242, "valid": 11, "test": 24,
        "test_sets": {"IWSLT14.TED.dev2010": 5, "IWSLT14.TEDX.dev2012": 4, "IWSLT14.TED.tst2010": 6,
                      "IWSLT14.TED.tst2011": 5, "IWSLT14.TED.tst2012": 4},
        "test_sets_unused": "", "fairseq_split": False,
    }
    assert list(stats["test_sets"]) == list(TEST_SETS)


def test_run_writes_files_and_stats(tmp_path, capsys):
    raw = extract(tmp_path)
    cfg = cfg_for(valid_every=10)
    cfg.data.filter.max_ratio = 2.0  # now the ratio-2 pair stays
    stats = prepare.run(cfg, raw, tmp_path / "prepared", tmp_path / "metrics/prepare.json")
    out = tmp_path / "prepared"
    clean = [p for p in train_pairs(CORPUS) if p not in filtered_out(CORPUS) or p == BAD_PAIRS[1]]
    assert sorted(p.name for p in out.iterdir()) == [f"{s}.{lang}" for s in ("test", "train", "valid")
                                                      for lang in ("de", "en")]
    assert read_lines(out / "valid.de") == [s for s, _ in clean[9::10]]
    assert read_lines(out / "valid.en") == [t for _, t in clean[9::10]]
    assert read_lines(out / "train.en") == [t for i, (_, t) in enumerate(clean, 1) if i % 10]
    assert read_lines(out / "test.de") == [s for s, _ in xml_pairs(CORPUS)]
    assert read_lines(out / "test.en") == [t for _, t in xml_pairs(CORPUS)]
    assert json.loads((tmp_path / "metrics/prepare.json").read_text()) == stats
    assert (stats["train_raw"], stats["train_filtered_out"], stats["train"], stats["valid"]) == (263, 9, 229, 25)
    assert "prepare: train 229, valid 25, test 24" in capsys.readouterr().err


def test_misaligned_train_names_both_files_and_counts(tmp_path):
    raw = extract(tmp_path, misaligned=True)
    with pytest.raises(DataError, match=r"train\.tags\.de-en\.de has 263 segments but \S*train\.tags\.de-en\.en has 262"):
        prepare.run(cfg_for(), raw, tmp_path / "prepared", tmp_path / "stats.json")
    assert not (tmp_path / "prepared").exists() and not (tmp_path / "stats.json").exists()


def test_misaligned_test_set_names_both_files_and_counts(tmp_path):
    raw = extract(tmp_path, misaligned_test=True)
    with pytest.raises(DataError, match=r"IWSLT14\.TED\.tst2010\.de-en\.de\.xml has 6 segments but "
                                        r"\S*IWSLT14\.TED\.tst2010\.de-en\.en\.xml has 5"):
        run_into(tmp_path, fairseq.prepare_iwslt, raw)


def test_line_breaks_inside_a_segment_become_spaces(tmp_path):
    folder = tmp_path / "raw/parallel"
    splits = {"train": [("a\rb", "x y"), ("c", "z")], "valid": [("v", "v")], "test": [("t\u2028u", "t u")]}
    write_parallel(folder, splits)
    out, _ = run_into(tmp_path, parallel.prepare_parallel, tmp_path / "raw")
    assert out["train"][0] == ("a b", "x y") and out["test"] == [("t u", "t u")]


def test_main_ok_and_error_exit(tmp_path, capsys):
    raw = extract(tmp_path)
    params = tmp_path / "params.yaml"
    OmegaConf.save(compose(), params)
    args = ["--params", str(params), "--raw", str(raw), "--out", str(tmp_path / "p"), "--stats", str(tmp_path / "s.json")]
    prepare.main(args)
    assert json.loads((tmp_path / "s.json").read_text())["train"] == 242
    args[3] = str(tmp_path / "nowhere")
    with pytest.raises(SystemExit) as exc:
        prepare.main(args)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "error: " in err and "nowhere/de-en: not found" in err and "Traceback" not in err


# --- parallel --------------------------------------------------------------------------------
def test_prepare_parallel_filters_train_only(tmp_path):
    splits = make_parallel()
    write_parallel(tmp_path / "corpus", splits)
    copy_parallel(tmp_path / "corpus", tmp_path / "raw/parallel", "de", "en")
    stats = prepare.run(cfg_for(source="parallel", path=str(tmp_path / "corpus")), tmp_path / "raw",
                        tmp_path / "prepared", tmp_path / "stats.json")
    out = tmp_path / "prepared"
    assert read_lines(out / "train.de") == [s for s, t in splits["train"] if (s, t) not in BAD_PAIRS]
    assert read_lines(out / "valid.en") == [t for _, t in splits["valid"]]
    assert read_lines(out / "test.en") == [t for _, t in splits["test"]] and read_lines(out / "test.en")[0] == ""
    assert stats == {"train_raw": 43, "train_filtered_out": 3, "train": 40, "valid": 5, "test": 7,
                     "test_sets": {"test": 7}}


def test_prepare_parallel_misaligned(tmp_path):
    write_parallel(tmp_path / "raw/parallel", misaligned="test")
    with pytest.raises(DataError, match=r"test\.de has 7 segments but \S*test\.en has 6"):
        run_into(tmp_path, parallel.prepare_parallel, tmp_path / "raw")


def test_other_counts_than_fairseqs_are_said_clearly(tmp_path, caplog, monkeypatch):
    raw = extract(tmp_path)
    with caplog.at_level("WARNING", logger="seq2seq.data.fairseq"):
        _, stats = run_into(tmp_path, fairseq.prepare_iwslt, raw)
    assert stats["fairseq_split"] is False
    (message,) = [r.getMessage() for r in caplog.records]
    assert "242 train / 11 valid / 24 test" in message and "160,239 / 7,283 / 6,750" in message
    assert "not the standard IWSLT'14 split" in message
    # an archive that gives fairseq's counts is the standard split, and nothing is said
    caplog.clear()
    monkeypatch.setitem(fairseq.FAIRSEQ_COUNTS, "de-en", {"train": 242, "valid": 11, "test": 24})
    with caplog.at_level("WARNING", logger="seq2seq.data.fairseq"):
        _, stats = run_into(tmp_path, fairseq.prepare_iwslt, raw)
    assert stats["fairseq_split"] is True and not caplog.records
    # other filter settings are never the standard split, but a deliberate choice: not warned about
    _, stats = run_into(tmp_path, fairseq.prepare_iwslt, raw, max_ratio=2.0)
    assert stats["fairseq_split"] is False and not caplog.records
