"""The test scores: sacreBLEU as the headline, and BLEU computed as published IWSLT'14 figures are."""

import pytest
import sacrebleu

from seq2seq.evaluate import score


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
    assert sig.startswith("moses:sacremoses-") and "lang:en" in sig and "case:lc" in sig and "tok:none" in sig
    assert got["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")  # the headline is unchanged
    assert got["bleu"] == pytest.approx(round(sacrebleu.corpus_bleu(hyps, [refs]).score, 4))


def test_tokenized_bleu_names_the_target_language():
    assert "lang:fr" in score(["l'homme"], ["l'homme"], "fr")["bleu_tok_lc_signature"]
