"""Translate with a CTranslate2 export (seq2seq.inference.export) through the same interface as seq2seq.inference.translator.

    from seq2seq.inference.ct2 import CT2Translator
    tr = CT2Translator.load("data/export/ctranslate2")
    tr.translate(["Guten Morgen ."], beam_size=5)

Same inputs, same length limits (max(1, int(a * n + b)) output tokens, EOS included, for n source
tokens with EOS), PAD and BOS never generated, blank sentences give "" (score 0). Greedy output
equals the PyTorch engine's (tested). CTranslate2 has no GNMT length penalty (its own divides log P
by length ** alpha), so beam search asks it for all beam_size finished hypotheses unpenalised and
ranks them by log P / ((5 + length) / 6) ** alpha as seq2seq.inference.search does: scores are on the
project's scale. Its beam stops by its own rule, so a sentence may still come out differently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import sentencepiece as spm

from seq2seq.data.sentencepiece import load_sp
from seq2seq.errors import ConfigError, DataError
from seq2seq.inference.search import gnmt_penalty, max_length
from seq2seq.progress import progress as show_progress
from seq2seq.vocab import BOS_ID, PAD_ID


def require_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ConfigError('the ctranslate2 engine needs the optional extra: pip install -e ".[ctranslate2]"') from None
    return ctranslate2


@dataclass
class CT2Translator:
    """A CTranslate2 model folder made by seq2seq.inference.export, with the SentencePiece models it holds."""

    translator: object  # ctranslate2.Translator
    sp_src: spm.SentencePieceProcessor
    sp_tgt: spm.SentencePieceProcessor

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "cpu", threads: int = 0) -> "CT2Translator":
        """threads: intra-op threads (0: one per core the process may use)."""
        ctranslate2 = require_ctranslate2()
        model_dir = Path(model_dir)
        if not (model_dir / "model.bin").exists():
            raise DataError(f"{model_dir}: not a CTranslate2 model folder (make one with `seq2seq export`)")
        threads = threads or len(os.sched_getaffinity(0))
        translator = ctranslate2.Translator(str(model_dir), device=device, inter_threads=1, intra_threads=threads)
        return cls(translator, load_sp(model_dir, "src"), load_sp(model_dir, "tgt"))

    def translate_nbest(self, sentences: list[str], beam_size: int = 5, length_penalty: float = 1.0,
                        max_len_a: float = 1.5, max_len_b: int = 10, batch_size: int = 64, n_best: int = 1,
                        progress: bool = False) -> list[list[tuple[str, float]]]:
        """Per sentence, the n_best (text, score) pairs, best first (greedy: score nan)."""
        if not 1 <= n_best <= beam_size:
            raise ValueError(f"need 1 <= n_best ({n_best}) <= beam_size ({beam_size})")
        src_pieces = [self.sp_src.id_to_piece(ids) for ids in self.sp_src.encode(sentences, out_type=int)]
        out: list[list[tuple[str, float]]] = [[("", 0.0)] * n_best if not s.strip() else [] for s in sentences]
        todo = [i for i in range(len(sentences)) if not out[i]]
        # CTranslate2 takes one length limit per call: one call per limit, each batched by CTranslate2.
        limit = {i: max_length(len(src_pieces[i]) + 1, max_len_a, max_len_b) for i in todo}
        groups = [list(g) for _, g in groupby(sorted(todo, key=lambda i: limit[i]), key=lambda i: limit[i])]
        suppress = [[self.sp_tgt.id_to_piece(PAD_ID)], [self.sp_tgt.id_to_piece(BOS_ID)]]
        for group in show_progress(groups, desc="decode", unit="length", disable=not progress):
            n = limit[group[0]]
            results = self.translator.translate_batch(
                [src_pieces[i] for i in group], max_batch_size=batch_size, beam_size=beam_size,
                num_hypotheses=beam_size, length_penalty=0.0, max_decoding_length=n, min_decoding_length=0,
                max_input_length=0, suppress_sequences=suppress, return_scores=beam_size > 1,
            )
            for i, result in zip(group, results):
                if beam_size == 1:
                    out[i] = [(self.sp_tgt.decode_pieces(result.hypotheses[0]), float("nan"))]
                    continue
                # length as seq2seq.inference.search counts it: the tokens plus EOS, or the limit when cut there
                ranked = sorted(((score / gnmt_penalty(min(len(h) + 1, n), length_penalty), h)
                                 for h, score in zip(result.hypotheses, result.scores)), key=lambda x: -x[0])
                out[i] = [(self.sp_tgt.decode_pieces(h), score) for score, h in ranked[:n_best]]
        return out

    def translate(self, sentences: list[str], **kw) -> list[str]:
        """The best translation of each sentence, in order (see translate_nbest)."""
        return [hyps[0][0] for hyps in self.translate_nbest(sentences, **kw)]
