"""The test scores: sacreBLEU as the headline, and BLEU computed as published IWSLT'14 figures are."""

import pytest
import sacrebleu

from seq2seq.metrics import score


def test_tokenized_bleu_is_moses_tokenized_lowercased_bleu():
    hyps = ["It\u2019s a Test, isn't it?", "We saw 3,000 people... then left."]
    refs = ["it's a test, isn't it?", "We saw 3,000 people ... then we left."]
    got = score(hyps, refs, "en")
    # what tokenizer.perl -l en and lowercasing make of both sides, written out by hand
    hyps_tok = ["it 's a test , isn 't it ?", "we saw 3,000 people ... then left ."]
    refs_tok = ["it 's a test , isn 't it ?", "we saw 3,000 people ... then we left ."]
    expected = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none").corpus_score(hyps_tok, [refs_tok])
    assert got["bleu_tok_lc"] == pytest.approx(expected.score, abs=1e-4)
    assert got["bleu_tok_lc"] > got["bleu"]  # case and ’ do not count against it; sacreBLEU's do
    sig = got["bleu_tok_lc_signature"]
    assert sig.startswith("moses:tokenizer.perl-sacremoses-") and "lang:en" in sig and "case:lc" in sig and "tok:none" in sig
    assert got["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")  # the headline is unchanged
    assert got["bleu"] == pytest.approx(round(sacrebleu.corpus_bleu(hyps, [refs]).score, 4))


def test_tokenized_bleu_names_the_target_language():
    assert "lang:fr" in score(["l'homme"], ["l'homme"], "fr")["bleu_tok_lc_signature"]


def test_tokenized_bleu_splits_the_period_after_a_sentence_final_abbreviation_as_prepare_does():
    """tokenizer.perl splits the last word's period even after a non-breaking prefix ("U.S." at the
    end, "usw." in German); plain sacremoses does not. The score tokenizes as the prepare stage."""
    from seq2seq.data.cleaning import moses_words

    hyps, refs = ["They moved to the U.S."], ["Then they all moved to the U.S."]
    hyps_tok, refs_tok = ["they moved to the u.s ."], ["then they all moved to the u.s ."]  # tokenizer.perl -l en
    expected = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none").corpus_score(hyps_tok, [refs_tok])
    assert score(hyps, refs, "en")["bleu_tok_lc"] == pytest.approx(expected.score, abs=1e-4)
    german = ["Wir kaufen Äpfel, Birnen usw.", "Das ist z.B. gut."]
    assert [" ".join(w) for w in moses_words(german, "de", "t")] == ["Wir kaufen Äpfel , Birnen usw .",
                                                                     "Das ist z.B. gut ."]
    assert score(german, [line.replace("usw.", "usw .") for line in german], "de")["bleu_tok_lc"] == 100.0
