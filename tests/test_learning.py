"""The whole training path (SentencePiece, DataModule, LightningModule, search) can memorize a small corpus."""

import random

import lightning as L
import pytest
import sacrebleu
from omegaconf import OmegaConf

from seq2seq.datamodule import TranslationDataModule
from seq2seq.evaluate import translate
from seq2seq.module import TranslationModule
from seq2seq.tokenizer import train_sentencepiece
from seq2seq.train import build_model

WORDS = {"der": "the", "hund": "dog", "katze": "cat", "sieht": "sees", "mag": "likes", "ein": "a",
         "rote": "red", "kleine": "small", "ball": "ball", "mann": "man", "frau": "woman", "haus": "house"}


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Word-for-word 'translations' of random short sentences, all distinct."""
    rng, pairs = random.Random(seed), {}
    keys = sorted(WORDS)
    while len(pairs) < n:
        src = " ".join(rng.choice(keys) for _ in range(rng.randint(3, 7)))
        pairs[src] = " ".join(WORDS[w] for w in src.split())
    return list(pairs), list(pairs.values())


@pytest.mark.slow
def test_memorizes_fifty_pairs(tmp_path):
    src, tgt = corpus(50)
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.de").write_text("\n".join(src) + "\n")
        (tmp_path / f"{split}.en").write_text("\n".join(tgt) + "\n")
    tok = tmp_path / "tok"
    tok.mkdir()
    tok_cfg = OmegaConf.create({"model_type": "word", "vocab_size": 40, "character_coverage": 1.0, "input_sentence_size": 1000})
    train_sentencepiece(src + tgt, tok / "src", tok_cfg, seed=0)
    (tok / "tgt.model").write_bytes((tok / "src.model").read_bytes())

    L.seed_everything(0)
    dm = TranslationDataModule(tmp_path, tok, "de", "en", batch_tokens=200, cache_dir=None)
    model = build_model({"_target_": "seq2seq.models.Seq2Seq", "emb_size": 32, "hidden_size": 64, "dropout": 0.0},
                        dm.src_vocab_size, dm.tgt_vocab_size)
    module = TranslationModule(model, dm.detokenize, dm.valid_refs, lr=0.01, label_smoothing=0.0, lr_patience=100)
    trainer = L.Trainer(max_epochs=40, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=40,
                        use_distributed_sampler=False, accelerator="cpu", gradient_clip_val=1.0)
    trainer.fit(module, datamodule=dm)

    hyps = translate(model, dm.sp_src, dm.sp_tgt, src, beam_size=1)
    assert sacrebleu.corpus_bleu(hyps, [tgt]).score >= 90
    beam = translate(model, dm.sp_src, dm.sp_tgt, src, beam_size=4)
    assert sacrebleu.corpus_bleu(beam, [tgt]).score >= 90
    assert trainer.callback_metrics["valid_bleu"] >= 90  # the module's own valid BLEU agrees
