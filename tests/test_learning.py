"""The whole training path (SentencePiece, DataModule, LightningModule, search) can memorize a small corpus."""

import random

import lightning as L
import pytest
import sacrebleu
import torch
from model_helpers import output_layer
from omegaconf import OmegaConf

from seq2seq.data.sentencepiece import train_sentencepiece
from seq2seq.data.store import write_store
from seq2seq.inference.translator import translate
from seq2seq.models.builder import build_model
from seq2seq.training.datamodule import TranslationDataModule
from seq2seq.training.hardware import cpu_runs_rnns_in_bf16
from seq2seq.training.module import TranslationModule

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


class StopAtBleu(L.Callback):
    """Stop training once the module's valid BLEU reaches `target`; remember the epoch."""

    def __init__(self, target: float):
        self.target, self.reached_at = target, None

    def on_validation_end(self, trainer, module) -> None:
        if float(trainer.callback_metrics.get("valid_bleu", 0.0)) >= self.target:
            self.reached_at = trainer.current_epoch + 1
            trainer.should_stop = True


def memorize(folder, model_cfg: dict, target_bleu: float = 95.0, max_epochs: int = 200, lr: float = 0.01,
             precision: str = "32-true", output_dtypes: set | None = None, compile_loss: bool = False):
    """Train on 50 pairs, validating on the same 50 every 5 epochs, until valid BLEU reaches
    `target_bleu` or `max_epochs` pass: (model, datamodule, trainer, src, tgt, epochs to the target
    or None). Training to a criterion, not for a fixed number of epochs, keeps the tests independent
    of the CPU: bf16 (and fp32) arithmetic differs between AMX, AVX512-BF16 and emulation, so how
    many epochs a run needs varies, but whether it learns does not.
    `output_dtypes` collects the dtypes of the vocabulary projection's outputs seen in training."""
    src, tgt = corpus(50)
    for split in ("train", "valid", "test"):
        (folder / f"{split}.de").write_text("\n".join(src) + "\n")
        (folder / f"{split}.en").write_text("\n".join(tgt) + "\n")
    tok = folder / "tok"
    tok.mkdir()
    tok_cfg = OmegaConf.create({"model_type": "word", "vocab_size": 40, "character_coverage": 1.0, "input_sentence_size": 1000})
    train_sentencepiece(src + tgt, tok / "src", tok_cfg, seed=0)
    (tok / "tgt.model").write_bytes((tok / "src.model").read_bytes())

    L.seed_everything(0)
    (folder / "store").mkdir()
    write_store(folder, tok, "de", "en", folder / "store")
    dm = TranslationDataModule(folder, tok, folder / "store", "de", "en", batch_tokens=200)
    model = build_model(model_cfg, dm.src_vocab_size, dm.tgt_vocab_size)
    if output_dtypes is not None:
        output_layer(model).register_forward_hook(lambda module, args, out: output_dtypes.add(out.dtype))
    module = TranslationModule(model, dm.detokenize, dm.valid_refs, lr=lr, label_smoothing=0.0, lr_patience=100,
                               compile_loss=compile_loss)
    stop = StopAtBleu(target_bleu)
    trainer = L.Trainer(max_epochs=max_epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=5,
                        use_distributed_sampler=False, accelerator="cpu", gradient_clip_val=1.0, precision=precision,
                        callbacks=[stop])
    trainer.fit(module, datamodule=dm)
    return model, dm, trainer, src, tgt, stop.reached_at


@pytest.mark.slow
def test_memorizes_fifty_pairs(tmp_path):
    model, dm, trainer, src, tgt, epochs = memorize(
        tmp_path, {"_target_": "seq2seq.models.Seq2Seq", "emb_size": 32, "hidden_size": 64, "dropout": 0.0})
    assert epochs is not None, f"valid BLEU {float(trainer.callback_metrics['valid_bleu']):.1f} after 200 epochs"
    # the module's valid BLEU (greedy, in training) agrees with decoding the trained model afterwards
    hyps = translate(model, dm.sp_src, dm.sp_tgt, src, beam_size=1)
    assert sacrebleu.corpus_bleu(hyps, [tgt]).score == pytest.approx(float(trainer.callback_metrics["valid_bleu"]))
    beam = translate(model, dm.sp_src, dm.sp_tgt, src, beam_size=4)
    assert sacrebleu.corpus_bleu(beam, [tgt]).score >= 95


@pytest.mark.slow
@pytest.mark.parametrize("model_cfg", [
    {"_target_": "seq2seq.models.Seq2Seq", "emb_size": 32, "hidden_size": 64, "dropout": 0.0},
    {"_target_": "seq2seq.models.Transformer", "d_model": 32, "n_heads": 2, "ff_size": 64, "enc_layers": 1,
     "dec_layers": 1, "dropout": 0.0, "attention_dropout": 0.0, "share_embeddings": True, "tie_embeddings": True},
], ids=["lstm", "transformer"])
def test_bf16_mixed_precision_learns_too(tmp_path, model_cfg):
    """trainer.lightning.precision=bf16-mixed (as on a GPU) runs on CPU autocast: training, the
    validation (its loss under autocast, its greedy search in fp32), then fp32 decoding of the
    trained weights.
    It must reach the same criterion as fp32 (valid BLEU 95), however many epochs this CPU's bf16
    arithmetic needs within the budget."""
    if "Seq2Seq" in model_cfg["_target_"] and not cpu_runs_rnns_in_bf16():
        pytest.skip("this CPU has no bf16 LSTM in oneDNN (no AVX512): the train stage refuses bf16 for RNNs here")
    dtypes = set()
    model, dm, trainer, src, tgt, epochs = memorize(tmp_path, model_cfg, precision="bf16-mixed", output_dtypes=dtypes,
                                                    compile_loss=True)  # as the CPU recipes train
    assert torch.bfloat16 in dtypes  # autocast was on
    assert all(p.dtype == torch.float32 for p in model.parameters())  # mixed: master weights stay fp32
    assert epochs is not None, f"valid BLEU {float(trainer.callback_metrics['valid_bleu']):.1f} after 200 epochs"
    hyps = translate(model, dm.sp_src, dm.sp_tgt, src, beam_size=4)  # fp32 decoding of the bf16-trained weights
    assert sacrebleu.corpus_bleu(hyps, [tgt]).score >= 90
