"""The inference library: load a trained checkpoint with its SentencePiece models and translate.

    from seq2seq.inference.translator import Translator
    tr = Translator.load("data/train/checkpoints/best.ckpt", "data/tokenizer")
    tr.translate(["Guten Morgen ."], beam_size=5)                 # ["Good morning ."]
    tr.translate_nbest(["Guten Morgen ."], beam_size=5, n_best=3)  # [[(text, score), ...]]

It imports torch, sentencepiece and the model code only (neither Lightning, Hydra, OmegaConf nor
MLflow, tested), so that anything that translates — the evaluate stage, the translate command,
the benchmarks, a service — loads fast and carries nothing of the training stack. Models are built
by seq2seq.models.builder, as the train stage and the config check build them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch

from seq2seq.data.sentencepiece import load_sp
from seq2seq.inference.checkpoint import read_checkpoint
from seq2seq.inference.search import beam_search, greedy_search
from seq2seq.progress import progress as show_progress
from seq2seq.models.builder import build_model
from seq2seq.vocab import EOS_ID, PAD_ID


def load_model(checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model from a checkpoint alone (see read_checkpoint). DataError naming the file when it
    is missing or not a checkpoint of this project's train stage."""
    ckpt = read_checkpoint(checkpoint, missing="checkpoint not found (run `dvc repro` first, or pass --checkpoint)")
    return model_from_checkpoint(ckpt, source=str(checkpoint)), ckpt["seq2seq"]


def model_from_checkpoint(ckpt: dict, source: str) -> torch.nn.Module:
    """The model of a checkpoint already read by read_checkpoint, in eval mode; `source` names it in errors."""
    meta = ckpt["seq2seq"]
    model = build_model(meta["model"], meta["src_vocab_size"], meta["tgt_vocab_size"], source=source)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def translate_nbest(model, sp_src, sp_tgt, sentences: list[str], beam_size: int = 5, length_penalty: float = 1.0,
                    max_len_a: float = 1.5, max_len_b: int = 10, batch_size: int = 64, n_best: int = 1,
                    progress: bool = False) -> list[list[tuple[str, float]]]:
    """Per sentence, the `n_best` detokenized hypotheses with their scores, best first (greedy
    when beam_size is 1: score nan). Batches hold sentences of similar length; output is in order.
    A blank sentence translates to the empty string (score 0): nothing in, nothing out."""
    model.eval()
    device = next(model.parameters()).device
    ids = [s + [EOS_ID] for s in sp_src.encode(sentences, out_type=int)]
    out: list[list[tuple[str, float]]] = [[("", 0.0)] * n_best if not s.strip() else [] for s in sentences]
    order = sorted((i for i in range(len(ids)) if not out[i]), key=lambda i: len(ids[i]))
    for start in show_progress(range(0, len(order), batch_size), desc="decode", unit="batch", disable=not progress):
        chunk = order[start : start + batch_size]
        lens = torch.tensor([len(ids[i]) for i in chunk])  # [B]
        src = torch.full((len(chunk), int(lens.max())), PAD_ID, dtype=torch.long)  # [B, S]
        for row, i in enumerate(chunk):
            src[row, : len(ids[i])] = torch.tensor(ids[i])
        src, lens = src.to(device), lens.to(device)
        if beam_size == 1:
            nbest = [[(h, float("nan"))] for h in greedy_search(model, src, lens, max_len_a, max_len_b)]
        else:
            nbest = beam_search(model, src, lens, beam_size, length_penalty, max_len_a, max_len_b, n_best=n_best)
        for i, hyps in zip(chunk, nbest):
            out[i] = [(sp_tgt.decode(h), score) for h, score in hyps]
    return out


def translate(model, sp_src, sp_tgt, sentences: list[str], beam_size: int = 5, length_penalty: float = 1.0,
              max_len_a: float = 1.5, max_len_b: int = 10, batch_size: int = 64, progress: bool = False) -> list[str]:
    """The best detokenized translation of each of `sentences`, in order."""
    nbest = translate_nbest(model, sp_src, sp_tgt, sentences, beam_size, length_penalty, max_len_a, max_len_b,
                            batch_size, progress=progress)
    return [hyps[0][0] for hyps in nbest]


@dataclass
class Translator:
    """A trained model with its source and target SentencePiece models."""

    model: torch.nn.Module
    sp_src: spm.SentencePieceProcessor
    sp_tgt: spm.SentencePieceProcessor
    meta: dict

    @classmethod
    def load(cls, checkpoint: str | Path, tokenizer_dir: str | Path, device: str | torch.device = "cpu") -> "Translator":
        model, meta = load_model(checkpoint)
        return cls(model.to(device), load_sp(tokenizer_dir, "src"), load_sp(tokenizer_dir, "tgt"), meta)

    def translate_nbest(self, sentences: list[str], **kw) -> list[list[tuple[str, float]]]:
        """See translate_nbest (beam_size, length_penalty, max_len_a, max_len_b, batch_size, n_best, progress)."""
        return translate_nbest(self.model, self.sp_src, self.sp_tgt, sentences, **kw)

    def translate(self, sentences: list[str], **kw) -> list[str]:
        """See translate (beam_size, length_penalty, max_len_a, max_len_b, batch_size, progress)."""
        return translate(self.model, self.sp_src, self.sp_tgt, sentences, **kw)
