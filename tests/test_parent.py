"""Fine-tuning's parts (trainer.init_from): a checkpoint as a parent (its weights, model settings and
SentencePiece models), the check that the new run's model fits the parent's weights, the parent stage
with no parent, and the tokenizer stage taking the parent's models byte for byte. The whole path
through `dvc exp run` from a registered model is in test_registry.py."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from model_helpers import build
from omegaconf import OmegaConf

from seq2seq.config.params import compose
from seq2seq.config.schema import validate
from seq2seq.data.sentencepiece import train_sentencepiece
from seq2seq.errors import ConfigError, DataError
from seq2seq.stages import parent as parent_stage
from seq2seq.stages import tokenizer as tokenizer_stage
from seq2seq.training.parent import from_checkpoint, parent_state

CFG = {"_target_": "seq2seq.models.Seq2Seq", "emb_size": 16, "hidden_size": 16, "dropout": 0.1}


@pytest.fixture(scope="module")
def spm(tmp_path_factory) -> Path:
    """src.model and tgt.model trained on a few lines."""
    root = tmp_path_factory.mktemp("spm")
    tok = SimpleNamespace(model_type="unigram", vocab_size=30, character_coverage=1.0, input_sentence_size=1000)
    lines = [f"haus baum fluss licht {i} fenster musik" for i in range(200)]
    for side in ("src", "tgt"):
        train_sentencepiece(lines, root / side, tok, seed=1)
    return root


def checkpoint(path: Path, model, cfg: dict, spm: Path | None) -> Path:
    """A checkpoint as the train stage writes it (Lightning's keys, the meta with the SentencePiece models)."""
    meta = {"model": cfg, "src_vocab_size": 20, "tgt_vocab_size": 20, "src": "de", "tgt": "en"}
    if spm is not None:
        meta["tokenizer"] = {s: (spm / f"{s}.model").read_bytes() for s in ("src", "tgt")}
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "seq2seq": meta,
                "optimizer_states": []}, path)
    return path


def parent_from(tmp_path: Path, spm: Path, cfg: dict = CFG) -> tuple[Path, torch.nn.Module]:
    model = build("lstm_bahdanau", **{k: v for k, v in cfg.items() if k != "_target_"})
    ckpt = checkpoint(tmp_path / "parent.ckpt", model, cfg, spm)
    out = tmp_path / "parent"
    out.mkdir()
    info = from_checkpoint(ckpt, out)
    (out / "parent.json").write_text(json.dumps({**info, "checkpoint_md5": "x"}))
    return out, model


def test_a_checkpoint_is_a_parent_with_its_weights_and_sentencepiece_models(tmp_path, spm):
    out, model = parent_from(tmp_path, spm)
    for side in ("src", "tgt"):
        assert (out / "tokenizer" / f"{side}.model").read_bytes() == (spm / f"{side}.model").read_bytes()
    state, info = parent_state(out, CFG, 20, 20)
    assert info["init_from"] == str(tmp_path / "parent.ckpt")
    fresh = build("lstm_bahdanau", emb_size=16, hidden_size=16, dropout=0.1)
    torch.manual_seed(99)
    for p in fresh.parameters():
        torch.nn.init.normal_(p)
    fresh.load_state_dict(state)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    assert "optimizer_states" not in torch.load(out / "model.ckpt", weights_only=True)  # optimizer starts fresh


def test_a_model_that_differs_from_the_parent_is_refused_naming_every_key(tmp_path, spm):
    out, _ = parent_from(tmp_path, spm)
    other = {**CFG, "hidden_size": 32, "dropout": 0.3}
    with pytest.raises(ConfigError) as e:
        parent_state(out, other, 20, 20)
    assert "model.dropout: 0.1 in the parent, 0.3 here; model.hidden_size: 16 in the parent, 32 here" in str(e.value)
    with pytest.raises(ConfigError, match="tgt vocabulary: 20 pieces in the parent, 21 here"):
        parent_state(out, CFG, 20, 21)


def test_checkpoints_that_cannot_be_parents_are_named(tmp_path, spm):
    model = build("lstm_bahdanau", emb_size=16, hidden_size=16, dropout=0.1)
    old = checkpoint(tmp_path / "old.ckpt", model, CFG, None)
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match=r"old\.ckpt: the checkpoint holds no SentencePiece models"):
        from_checkpoint(old, tmp_path / "out")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"junk\.ckpt: not a checkpoint of this project's train stage"):
        from_checkpoint(tmp_path / "junk.ckpt", tmp_path / "out")
    with pytest.raises(DataError, match=r"nope\.ckpt: no such checkpoint"):
        from_checkpoint(tmp_path / "nope.ckpt", tmp_path / "out")


def test_no_parent_means_random_weights_and_a_trained_tokenizer(tmp_path):
    cfg = compose([])
    assert cfg.trainer.init_from is None
    info = parent_stage.run(cfg, tmp_path / "parent")
    assert info == {"init_from": None} and json.loads((tmp_path / "parent/parent.json").read_text()) == info
    assert parent_state(tmp_path / "parent", CFG, 20, 20) is None


def test_the_parent_stage_copies_a_checkpoint_and_names_it(tmp_path, spm):
    model = build("lstm_bahdanau", emb_size=16, hidden_size=16, dropout=0.1)
    ckpt = checkpoint(tmp_path / "p.ckpt", model, CFG, spm)
    cfg = compose([f"trainer.init_from={ckpt}"])
    validate(cfg)
    info = parent_stage.run(cfg, tmp_path / "parent")
    assert info["init_from"] == str(ckpt) and len(info["checkpoint_md5"]) == 32
    again = parent_stage.run(cfg, tmp_path / "again")
    assert (tmp_path / "again/model.ckpt").read_bytes() == (tmp_path / "parent/model.ckpt").read_bytes()
    assert again["checkpoint_md5"] == info["checkpoint_md5"]  # the same parent: the same output, nothing reruns


def test_the_tokenizer_stage_takes_the_parents_models_byte_for_byte(tmp_path, spm):
    out, _ = parent_from(tmp_path, spm)
    data = tmp_path / "prepared"
    data.mkdir()
    for lang in ("de", "en"):  # text that would train other models
        (data / f"train.{lang}").write_text("".join(f"ganz andere woerter {i}\n" for i in range(300)))
    cfg = OmegaConf.merge(compose(["tokenizer.vocab_size=40"]), {"trainer": {"init_from": str(tmp_path / "parent.ckpt")}})
    tokenizer_stage.run(cfg, data, tmp_path / "tok", out)
    for side in ("src", "tgt"):
        assert (tmp_path / "tok" / f"{side}.model").read_bytes() == (spm / f"{side}.model").read_bytes()
    tokenizer_stage.run(compose(["tokenizer.vocab_size=40"]), data, tmp_path / "own", tmp_path / "none")
    assert (tmp_path / "own/src.model").read_bytes() != (spm / "src.model").read_bytes()
