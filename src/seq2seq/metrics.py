"""Scores, all computed here: sacreBLEU's BLEU, chrF and TER of detokenized hypotheses against raw
references (with their signatures), and `bleu_tok_lc`, BLEU on Moses-tokenized lowercased text as
published IWSLT'14 figures compute it. Validation (greedy valid BLEU) and the evaluate stage use it."""

from __future__ import annotations

import sacrebleu


def corpus_bleu(hyps: list[str], refs: list[str]) -> sacrebleu.metrics.BLEUScore:
    """sacreBLEU (13a tokenisation, cased) of detokenized hypotheses against raw references."""
    return sacrebleu.metrics.BLEU().corpus_score(hyps, [refs])


def score(hyps: list[str], refs: list[str], lang: str = "en") -> dict:
    """BLEU, chrF and TER of detokenized hypotheses against raw references, with signatures
    (sacreBLEU: the headline), and `bleu_tok_lc`, BLEU as published IWSLT'14 figures compute it."""
    result = {}
    for name, metric in [("bleu", sacrebleu.metrics.BLEU()), ("chrf", sacrebleu.metrics.CHRF()), ("ter", sacrebleu.metrics.TER())]:
        result[name] = round(metric.corpus_score(hyps, [refs]).score, 4)
        result[f"{name}_signature"] = str(metric.get_signature())
    result["bleu_tok_lc"], result["bleu_tok_lc_signature"] = tokenized_bleu(hyps, refs, lang)
    return result


def tokenized_bleu(hyps: list[str], refs: list[str], lang: str) -> tuple[float, str]:
    """BLEU comparable with published IWSLT'14 figures (fairseq's prepare-iwslt14.sh and scorer,
    Joey NMT): both sides get fairseq's ’ → ' replacement, the Moses tokenizer as the prepare stage
    runs it (seq2seq.data.cleaning.moses_words: tokenizer.perl -l `lang`, the period after a sentence-final
    abbreviation split off) and lowercasing; then corpus BLEU with no further tokenization and no
    smoothing (multi-bleu.perl). Not comparable with sacreBLEU."""
    import sacremoses

    from seq2seq.data.cleaning import moses_words

    def prep(lines: list[str], what: str) -> list[str]:
        return [" ".join(words) for words in moses_words([line.replace("\u2019", "'") for line in lines], lang, what)]

    metric = sacrebleu.metrics.BLEU(tokenize="none", lowercase=True, smooth_method="none", force=True)
    value = round(metric.corpus_score(prep(hyps, "hypotheses"), [prep(refs, "references")]).score, 4)
    return value, f"moses:tokenizer.perl-sacremoses-{sacremoses.__version__}|lang:{lang}|{metric.get_signature()}"
