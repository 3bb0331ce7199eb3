"""CTranslate2 export: a Transformer trained here (in seconds, on a word-for-word toy language) is
converted, and CTranslate2 must decode what the project decodes."""

import importlib.metadata
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import sacrebleu
import torch
import torch.nn.functional as F

from conftest import run_env
from seq2seq.data.sentencepiece import train_sentencepiece
from seq2seq.errors import ConfigError, DataError
from seq2seq.inference.ct2 import CT2Translator
from seq2seq.inference.export import export
from seq2seq.inference.translator import Translator
from seq2seq.models.builder import build_model
from seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID

WORDS = {"haus": "house", "katze": "cat", "hund": "dog", "rot": "red", "blau": "blue", "gross": "big",
         "klein": "small", "der": "the", "ein": "a", "und": "and", "mit": "with", "auf": "on",
         "baum": "tree", "wasser": "water", "mann": "man", "frau": "woman", "kind": "child", "lauft": "runs",
         "springt": "jumps", "schlaft": "sleeps", "im": "in", "garten": "garden", "park": "park", "sehr": "very"}
TRANSFORMER = {"_target_": "seq2seq.models.Transformer", "d_model": 32, "n_heads": 4, "ff_size": 64,
               "enc_layers": 2, "dec_layers": 2, "dropout": 0.0, "attention_dropout": 0.0,
               "share_embeddings": False, "tie_embeddings": True}


def pairs(n: int, seed: int, max_words: int = 9) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        src = rng.choices(sorted(WORDS), k=rng.randint(1, max_words))
        out.append((" ".join(src), " ".join(WORDS[w] for w in src)))
    return out


def save_checkpoint(path: Path, model: torch.nn.Module, model_cfg: dict, src_v: int, tgt_v: int) -> None:
    """A checkpoint in the train stage's format: Lightning's state_dict keys and the seq2seq meta."""
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "seq2seq": {"model": model_cfg, "src_vocab_size": src_v, "tgt_vocab_size": tgt_v}}, path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> SimpleNamespace:
    """A 2-layer Transformer taught the toy language for 300 steps, its tokenizers and a CTranslate2 export."""
    root = tmp_path_factory.mktemp("export")
    (root / "tok").mkdir()
    train = pairs(3000, seed=0)
    tok = SimpleNamespace(model_type="unigram", vocab_size=60, character_coverage=1.0, input_sentence_size=100000)
    train_sentencepiece([s for s, _ in train], root / "tok/src", tok, seed=1)
    train_sentencepiece([t for _, t in train], root / "tok/tgt", tok, seed=1)
    import sentencepiece as spm
    sp = {s: spm.SentencePieceProcessor(model_file=str(root / f"tok/{s}.model")) for s in ("src", "tgt")}
    torch.manual_seed(0)
    model = build_model(TRANSFORMER, sp["src"].get_piece_size(), sp["tgt"].get_piece_size())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    src_ids = sp["src"].encode([s for s, _ in train])
    tgt_ids = sp["tgt"].encode([t for _, t in train])
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = torch.randint(len(train), (64,), generator=g).tolist()
        src = [src_ids[i] + [EOS_ID] for i in idx]
        tgt = [[BOS_ID] + tgt_ids[i] + [EOS_ID] for i in idx]
        S, T = max(map(len, src)), max(map(len, tgt))
        src_t = torch.tensor([s + [PAD_ID] * (S - len(s)) for s in src])  # [B, S]
        tgt_t = torch.tensor([t + [PAD_ID] * (T - len(t)) for t in tgt])  # [B, T]
        logits = model(src_t, torch.tensor(list(map(len, src))), tgt_t[:, :-1])  # [B, T - 1, V]
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_t[:, 1:].flatten(), ignore_index=PAD_ID)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ckpt = root / "best.ckpt"
    save_checkpoint(ckpt, model.eval(), TRANSFORMER, sp["src"].get_piece_size(), sp["tgt"].get_piece_size())
    test = pairs(300, seed=1, max_words=14)  # longer sentences than in training, too
    return SimpleNamespace(root=root, ckpt=ckpt, tok=root / "tok", test=test, final_loss=loss.item(),
                           ct2=export(ckpt, root / "tok", root / "ct2"),
                           torch=Translator.load(ckpt, root / "tok"))


def test_the_toy_model_has_learned_something(trained):
    """Parity on a model that outputs noise would say little: this one translates."""
    hyps = trained.torch.translate([s for s, _ in trained.test], beam_size=1)
    assert sacrebleu.corpus_bleu(hyps, [[t for _, t in trained.test]]).score > 50, trained.final_loss


@pytest.mark.parametrize("max_len_a,max_len_b", [(1.5, 10), (0.0, 3), (0.5, 0)])
def test_ctranslate2_greedy_equals_the_project_greedy_on_every_sentence(trained, max_len_a, max_len_b):
    """Same tokens, same per-sentence length limits (tight ones cut hypotheses short), same words."""
    sentences = [s for s, _ in trained.test] + ["", "   ", "haus"]
    kw = dict(beam_size=1, max_len_a=max_len_a, max_len_b=max_len_b, batch_size=16)
    ours = trained.torch.translate(sentences, **kw)
    theirs = CT2Translator.load(trained.ct2).translate(sentences, **kw)
    assert ours[-3:-1] == theirs[-3:-1] == ["", ""]
    diff = [(s, a, b) for s, a, b in zip(sentences, ours, theirs) if a != b]
    assert not diff, diff[:5]
    if max_len_b == 3:  # the limit counts EOS, as in seq2seq.inference.search: at most 3 pieces come out
        assert max(len(trained.torch.sp_tgt.encode(h)) for h in ours) == 3


def test_ctranslate2_beam_search_within_a_tenth_of_a_bleu_point_and_scored_alike(trained):
    """BLEU of beam 5 within 0.1; hypotheses both engines find get the same GNMT-penalised score."""
    sentences, refs = [s for s, _ in trained.test], [[t for _, t in trained.test]]
    ours = trained.torch.translate_nbest(sentences, beam_size=5, n_best=3)
    theirs = CT2Translator.load(trained.ct2).translate_nbest(sentences, beam_size=5, n_best=3)
    bleu = [sacrebleu.corpus_bleu([h[0][0] for h in hyps], refs).score for hyps in (ours, theirs)]
    assert abs(bleu[0] - bleu[1]) <= 0.1, bleu
    pairs_ = [(a, b) for a, b in zip(ours, theirs) if a[0][0] == b[0][0]]
    assert pairs_ and all(a[0][1] == pytest.approx(b[0][1], abs=1e-4) for a, b in pairs_)
    for hyps in theirs:  # n-best lists: three distinct hypotheses, best first
        scores = [score for _, score in hyps]
        assert len(hyps) == 3 and scores == sorted(scores, reverse=True) and len({h for h, _ in hyps}) == 3


def test_int8_export_is_smaller_and_still_translates(trained, tmp_path):
    int8 = export(trained.ckpt, trained.tok, tmp_path / "int8", quantization="int8")
    # int8 linear weights (a quarter of float32); the position table and norms stay float32
    assert (int8 / "model.bin").stat().st_size < 0.8 * (trained.ct2 / "model.bin").stat().st_size
    sentences = [s for s, _ in trained.test]
    hyps = CT2Translator.load(int8).translate(sentences, beam_size=1)
    assert sacrebleu.corpus_bleu(hyps, [[t for _, t in trained.test]]).score > 50


def test_recurrent_models_are_refused_and_nothing_is_written(trained, tmp_path):
    lstm_cfg = {"_target_": "seq2seq.models.Seq2Seq", "emb_size": 8, "hidden_size": 8}
    lstm = build_model(lstm_cfg, 60, 60)
    save_checkpoint(tmp_path / "lstm.ckpt", lstm, lstm_cfg, 60, 60)
    with pytest.raises(DataError, match=r"lstm\.ckpt: a Seq2Seq model .*CTranslate2 runs Transformer models only"):
        export(tmp_path / "lstm.ckpt", trained.tok, tmp_path / "out")
    with pytest.raises(ConfigError, match="--quantization int3"):
        export(trained.ckpt, trained.tok, tmp_path / "out", quantization="int3")
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["lstm.ckpt"]


def test_translate_command_with_the_ctranslate2_engine(trained):
    sentences = [s for s, _ in trained.test[:30]]
    common = [sys.executable, "-m", "seq2seq", "translate", "--checkpoint", str(trained.ckpt),
              "--tokenizer", str(trained.tok), "--beam", "1"]
    run = lambda *extra: subprocess.run([*common, *extra], input="\n".join(sentences) + "\n", env=run_env(),  # noqa: E731
                                        capture_output=True, text=True, check=True).stdout
    ours, theirs = run(), run("--engine", "ctranslate2", "--ct2-model", str(trained.ct2))
    assert ours == theirs and len(ours.splitlines()) == 30
    missing = subprocess.run([*common, "--engine", "ctranslate2", "--ct2-model", str(trained.root / "nope")],
                             input="haus\n", env=run_env(), capture_output=True, text=True)
    assert missing.returncode == 1 and "nope: not a CTranslate2 model folder" in missing.stderr


def test_the_mlflow_model_serves_either_engine(trained, tmp_path):
    """registry.engine=ctranslate2 bundles the export: a request picks the engine with params.engine."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from omegaconf import OmegaConf

    from seq2seq.inference.pyfunc import Limits
    from seq2seq.tracking.registry import save_model

    decode = {"beam_size": 1, "length_penalty": 1.0, "max_len_a": 1.5, "max_len_b": 10, "batch_size": 16}
    sentences = [s for s, _ in trained.test[:Limits().max_rows]]  # as many as a request may hold
    (tmp_path / "params.yaml").write_text("decode: {}\n")
    paths = {}
    for engine in ("torch", "ctranslate2"):
        cfg = OmegaConf.create({"decode": decode, "registry": {"engine": engine}})
        paths[engine] = save_model(tmp_path / engine, cfg, trained.ckpt, trained.tok, tmp_path / "params.yaml", sentences)
    assert (paths["ctranslate2"] / "artifacts/ctranslate2/model.bin").is_file()
    for path in paths.values():  # every requirement pinned to the version this environment runs
        pins = dict(line.split("==") for line in (path / "requirements.txt").read_text().split() if "==" in line)
        assert {"torch", "sentencepiece", "mlflow", "pandas", "tqdm"} <= set(pins)
        assert all(importlib.metadata.version(name).split("+")[0] == version for name, version in pins.items()), pins
        assert not [line for line in (path / "requirements.txt").read_text().split() if "==" not in line]
    assert not (paths["torch"] / "artifacts/ctranslate2").exists()
    served = mlflow.pyfunc.load_model(str(paths["ctranslate2"]))
    frame = pd.DataFrame({"source": sentences})
    default = served.predict(frame)["translation"].tolist()
    assert default == CT2Translator.load(trained.ct2).translate(sentences, **decode)
    assert served.predict(frame, params={"engine": "torch"})["translation"].tolist() == trained.torch.translate(
        sentences, **decode) == default  # greedy: the same words either way
    beam = served.predict(frame, params={"beam_size": 4, "n_best": 2})
    assert all(len(n) == 2 for n in beam["nbest"]) and beam["score"].notna().all()
    torch_only = mlflow.pyfunc.load_model(str(paths["torch"]))
    with pytest.raises(MlflowException, match="engine='ctranslate2': this model has 'torch'"):
        torch_only.predict(frame, params={"engine": "ctranslate2"})


def test_registry_engine_ctranslate2_needs_a_transformer():
    from seq2seq.config.params import compose
    from seq2seq.config.schema import validate

    with pytest.raises(ConfigError, match="registry.engine=ctranslate2 needs a Transformer"):
        validate(compose(["registry.engine=ctranslate2"]))
    validate(compose(["registry.engine=ctranslate2", "model=transformer", "trainer=transformer"]))
    with pytest.raises(ConfigError, match="registry.engine='onnx' is not one of torch, ctranslate2"):
        validate(compose(["registry.engine=onnx"]))
