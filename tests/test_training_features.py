"""Schedules, weight averaging, throughput counting, reseeding and the precision warning of the train stage."""

import warnings
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from seq2seq.config.params import compose
from seq2seq.config.schema import validate
from seq2seq.errors import ConfigError
from seq2seq.models.builder import build_model
from seq2seq.models.dropout import Dropout
from seq2seq.training import hardware
from seq2seq.training.callbacks import KeepLastWeights, ReseedEachStep, epoch_checkpoints, micro_batch_seed
from seq2seq.training.hardware import slow_cpu_bf16_warning
from seq2seq.training.module import TranslationModule


class Tiny(torch.nn.Module):
    pad_id, bos_id, eos_id = 0, 2, 3

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(2, 2)


def lrs(module: TranslationModule, steps: int) -> list[float]:
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_inverse_sqrt_warms_up_linearly_then_decays():
    module = TranslationModule(Tiny(), str, [], lr=1.0, scheduler="inverse_sqrt", warmup_steps=4)
    assert module.configure_optimizers()["lr_scheduler"]["interval"] == "step"
    got = lrs(module, 16)
    assert got[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert got[15] == pytest.approx((4 / 16) ** 0.5)  # step 16: sqrt(warmup / step)
    assert all(a > b for a, b in zip(got[4:], got[5:]))


def test_plateau_follows_valid_bleu_upwards_and_is_saved_with_the_module():
    module = TranslationModule(Tiny(), str, [], lr=1.0, lr_factor=0.5, lr_patience=0)
    optimizer = module.configure_optimizers()
    sched = module.plateau
    assert sched.mode == "max"
    sched.step(10.0)
    sched.step(12.0)  # improving: lr stays
    assert optimizer.param_groups[0]["lr"] == 1.0
    sched.step(11.0)  # worse: halved
    assert optimizer.param_groups[0]["lr"] == 0.5
    ckpt = {}
    module.on_save_checkpoint(ckpt)
    restored = TranslationModule(Tiny(), str, [], lr=1.0, lr_factor=0.5, lr_patience=0)
    restored.on_load_checkpoint(ckpt)
    restored.configure_optimizers()
    assert restored.plateau.best == 12.0 and restored.plateau.num_bad_epochs == sched.num_bad_epochs


def test_unknown_scheduler_is_rejected():
    with pytest.raises(ValueError, match="scheduler"):
        TranslationModule(Tiny(), str, [], scheduler="cosine")


def test_averaging_keeps_the_last_n_epochs():
    keep = KeepLastWeights(2)
    module = torch.nn.Linear(1, 1)
    for value in (1.0, 2.0, 4.0):  # three epochs, the first must be forgotten
        with torch.no_grad():
            module.weight.fill_(value)
            module.bias.fill_(-value)
        keep.on_train_epoch_end(None, module)
    avg = keep.average()
    assert avg["weight"].item() == 3.0 and avg["bias"].item() == -3.0
    # copies, not references: changing the module afterwards changes nothing kept
    with torch.no_grad():
        module.weight.fill_(100.0)
    assert keep.average()["weight"].item() == 3.0


def test_averaged_checkpoint_needs_average_last():
    with pytest.raises(ConfigError, match="average_last"):
        validate(compose(["decode.checkpoint=averaged"]))
    validate(compose(["decode.checkpoint=averaged", "trainer.average_last=3"]))


def test_transformer_trainer_uses_warmup_schedule():
    cfg = compose(["trainer=transformer"])
    assert cfg.trainer.scheduler == "inverse_sqrt" and list(cfg.trainer.adam_betas) == [0.9, 0.98]
    assert OmegaConf.select(cfg, "trainer.lightning.max_epochs") == 30  # the rest comes from default


@pytest.mark.parametrize("uri, shown", [
    ("https://alice:s3cret@mlflow.example.org/", "https://***@mlflow.example.org/"),
    ("http://token@127.0.0.1:5000", "http://***@127.0.0.1:5000"),
    ("sqlite:////work/mlflow.db", "sqlite:////work/mlflow.db"),
])
def test_credentials_in_tracking_uris_are_masked(uri, shown):
    from seq2seq.io import redact

    assert redact(uri) == shown
    assert redact(f"error talking to {uri}: refused") == f"error talking to {shown}: refused"


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_native_bf16_is_warned_about(monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    message = slow_cpu_bf16_warning(True, "bf16-mixed")
    if native:
        assert message is None
    else:
        assert "trainer.lightning.precision=bf16-mixed" in message and "32-true" in message
    assert slow_cpu_bf16_warning(True, "32-true") is None
    assert slow_cpu_bf16_warning(False, "bf16-mixed") is None  # a GPU


@pytest.mark.parametrize("supported", [True, False])
def test_bf16_recurrent_models_are_refused_where_onednn_has_no_bf16_rnn(monkeypatch, supported):
    """On an AVX2-only CPU oneDNN builds no bf16 LSTM: the train stage says so before training."""
    monkeypatch.setattr(hardware, "cpu_runs_rnns_in_bf16", lambda: supported)
    lstm = build_model({"_target_": "seq2seq.models.Seq2Seq", "emb_size": 8, "hidden_size": 8}, 20, 20)
    transformer = build_model({"_target_": "seq2seq.models.Transformer", "d_model": 8, "n_heads": 2, "ff_size": 16,
                               "enc_layers": 1, "dec_layers": 1}, 20, 20)
    for on_cpu, precision, model in ((True, "32-true", lstm), (False, "bf16-mixed", lstm),
                                     (True, "bf16-mixed", transformer)):
        hardware.check_cpu_bf16_rnn(on_cpu, precision, model)  # nothing to refuse
    if supported:
        hardware.check_cpu_bf16_rnn(True, "bf16-mixed", lstm)
    else:
        with pytest.raises(ConfigError, match="precision=bf16-mixed: this CPU cannot run recurrent layers in bf16"):
            hardware.check_cpu_bf16_rnn(True, "bf16-mixed", lstm)


def test_the_bf16_rnn_probe_says_whether_a_bf16_training_step_of_the_lstm_model_runs():
    """The probe is what happens, checked by other code than the probe's: a forward and backward pass
    of the project's LSTM model under bf16 autocast, as training runs it, works exactly where the
    probe says bf16 RNNs run (on this CPU, whichever that is), and fails in oneDNN where it says not."""
    model = build_model({"_target_": "seq2seq.models.Seq2Seq", "emb_size": 8, "hidden_size": 8}, 20, 20).train()
    gen = torch.Generator().manual_seed(0)
    src, lens = torch.randint(4, 20, (3, 5), generator=gen), torch.tensor([5, 4, 2])  # [3, 5], [3]
    tgt_in = torch.randint(4, 20, (3, 6), generator=gen)  # [3, 6]
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(src, lens, tgt_in)  # [3, 6, 20]
        logits.float().sum().backward()
        runs = True
    except RuntimeError as e:
        assert "could not create a primitive" in str(e), e  # oneDNN's refusal, not another failure
        runs = False
    assert hardware.cpu_runs_rnns_in_bf16() is runs


@pytest.mark.parametrize("runs", [True, False])
def test_the_bf16_rnn_probe_gives_both_answers(monkeypatch, runs):
    """Whatever this CPU does: an LSTM that runs under bf16 autocast (here one that computes in fp32)
    makes the probe say yes; one that fails as oneDNN does without AVX512 makes it say no."""

    class LSTM(torch.nn.LSTM):
        def forward(self, x, *args):
            if not runs:
                raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive")
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float(), *args)

    monkeypatch.setattr(torch.nn, "LSTM", LSTM)
    assert hardware.cpu_runs_rnns_in_bf16.__wrapped__() is runs  # not the cached answer of this CPU


def test_lightning_prints_no_cloud_logger_advertisement(caplog):
    import logging

    import lightning as L

    import seq2seq.stages.train  # noqa: F401 - installs the filter, as the train stage does

    with caplog.at_level(logging.INFO):
        L.Trainer(logger=False, accelerator="cpu", enable_progress_bar=False, enable_checkpointing=False)
    messages = [r.getMessage() for r in caplog.records]
    assert any("GPU available" in m for m in messages), messages  # Lightning's other info still shows
    assert not any("litlogger" in m for m in messages), messages


def test_params_logged_to_mlflow_keep_no_secret(tmp_path):
    from mlflow import MlflowClient

    from seq2seq.tracking.runs import log_params

    cfg = compose(["data.archive='https://alice:s3cret@example.org/de-en.tgz?X-Amz-Signature=deadbeef'",
                   "data.mirrors=['https://bob:pw@m.example.org/{src}-{tgt}.tgz']",
                   "mlflow.tracking_uri='https://carol:key@mlflow.example.org'"])
    mlc = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    run = mlc.create_run(mlc.create_experiment("x"))
    log_params(mlc, run.info.run_id, cfg)
    params = mlc.get_run(run.info.run_id).data.params
    assert params["data.archive"] == "https://***@example.org/de-en.tgz?X-Amz-Signature=***"
    assert params["data.mirrors"] == "['https://***@m.example.org/{src}-{tgt}.tgz']"
    assert params["mlflow.tracking_uri"] == "https://***@mlflow.example.org"
    assert params["model.hidden_size"] == "256"  # the rest as it is


@pytest.mark.parametrize("bf16", [False, True])
def test_compiled_loss_equals_the_eager_loss_and_its_gradient_for_every_shape(bf16):
    from seq2seq.training.module import compiled_sequence_loss, sequence_loss

    generator = torch.Generator().manual_seed(0)
    for B, T in [(5, 7), (3, 11), (8, 2)]:  # one compiled graph serves every batch shape
        logits = (torch.randn(B, T, 50, generator=generator) * 3).requires_grad_()
        target = torch.randint(1, 50, (B, T), generator=generator)
        target[0, -2:] = 0  # padding, ignored
        grads, losses = [], []
        for fn in (sequence_loss, compiled_sequence_loss()):
            logits.grad = None
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = fn(logits.to(torch.bfloat16) if bf16 else logits, target, 0, 0.1)
            loss.backward()
            losses.append(loss.item())
            grads.append(logits.grad.clone())
        assert losses[1] == pytest.approx(losses[0], rel=1e-5)
        torch.testing.assert_close(grads[1], grads[0], rtol=1e-2 if bf16 else 1e-5, atol=1e-6)
        assert grads[0].abs().sum() > 0 and grads[0][0, -2:].abs().sum() == 0  # padding gets no gradient


@pytest.mark.parametrize("bf16", [False, True])
def test_compiled_rdrop_kl_equals_the_eager_one_and_its_gradients_for_every_shape(bf16):
    from seq2seq.training.module import compiled_symmetric_kl, symmetric_kl

    generator = torch.Generator().manual_seed(0)
    for B, T in [(5, 7), (3, 11), (8, 2)]:
        a, b = ((torch.randn(B, T, 50, generator=generator) * 3).requires_grad_() for _ in range(2))
        target = torch.randint(1, 50, (B, T), generator=generator)
        target[0, -2:] = 0  # padding, ignored
        grads, kls = [], []
        for fn in (symmetric_kl, compiled_symmetric_kl()):
            a.grad = b.grad = None
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                kl = fn(a.to(torch.bfloat16) if bf16 else a, b.to(torch.bfloat16) if bf16 else b, target, 0)
            kl.backward()
            kls.append(kl.item())
            grads.append((a.grad.clone(), b.grad.clone()))
        assert kls[0] > 0 and kls[1] == pytest.approx(kls[0], rel=1e-5)
        for got, want in zip(grads[1], grads[0]):
            torch.testing.assert_close(got, want, rtol=1e-2 if bf16 else 1e-5, atol=1e-6)
            assert want.abs().sum() > 0 and want[0, -2:].abs().sum() == 0  # padding gets no gradient


def test_training_falls_back_to_the_eager_loss_with_a_warning_when_compiling_fails(tmp_path):
    import os
    import subprocess
    import sys

    script = """
import warnings, torch
from seq2seq.training.module import TranslationModule, sequence_loss
from seq2seq.data.batching import Batch

class M(torch.nn.Module):
    pad_id = 0
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Embedding(20, 20)
    def forward(self, src, lens, tgt_in):
        return self.w(tgt_in)

torch.manual_seed(0)
module = TranslationModule(M(), str, [], compile_loss=True)
module.log = lambda *a, **k: None
tgt = torch.randint(1, 20, (4, 6))
batch = Batch(torch.arange(4), tgt, torch.full((4,), 6), tgt, tgt, 24)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    loss = module.training_step(batch, 0)
assert not module.compile_loss
assert loss.item() == sequence_loss(module.model.w(tgt), tgt, 0, 0.1).item()
print([str(w.message) for w in caught if "compile_loss" in str(w.message)])
"""
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"),
           "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch.compile failed, the loss runs eagerly" in out.stdout and "C++ compiler" in out.stdout


@pytest.mark.parametrize("capacity, evicted", [(1, True), (64, False)])
def test_onednn_cache_capacity_is_set_by_the_train_stage_before_onednn_starts(capacity, evicted):
    """After the train stage's imports, its setting still reaches oneDNN: with room for one kernel,
    a convolution at shape A is rebuilt after one at shape B; with room for 64 it is found again.
    oneDNN's verbose log says which (create:cache_hit / cache_miss)."""
    import os
    import subprocess
    import sys

    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch has no oneDNN")
    script = """
import sys, torch
from seq2seq.training import hardware
hardware.set_onednn_cache_capacity(int(sys.argv[1]))
conv = torch.nn.Conv1d(8, 8, 3)
with torch.no_grad():
    for n in (5, 9, 5):
        conv(torch.randn(2, 8, n))
"""
    env = {**os.environ, "ONEDNN_VERBOSE": "2"}
    env.pop("ONEDNN_PRIMITIVE_CACHE_CAPACITY", None)
    out = subprocess.run([sys.executable, "-c", script, str(capacity)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    convs = [line for line in out.stdout.splitlines() if ",create:cache_" in line and ",convolution," in line]
    assert len(convs) == 3, out.stdout[-2000:]
    assert "cache_miss" in convs[0] and "cache_miss" in convs[1]
    assert ("cache_miss" if evicted else "cache_hit") in convs[2]
    assert compose([]).trainer.onednn_cache_capacity == 8192  # what the train stage sets by default


@pytest.mark.parametrize("name", ["transformer", "lstm_bahdanau"])
def test_validation_scores_fp32_greedy_decoding_under_bf16_autocast(name):
    """Under bf16-mixed the validation loss is computed as training computes it (autocast), but the
    greedy decoding behind valid BLEU runs in fp32, as the evaluate stage decodes."""
    from model_helpers import build, output_layer

    from seq2seq.data.batching import Batch

    if name.startswith("lstm") and not hardware.cpu_runs_rnns_in_bf16():
        pytest.skip("this CPU has no bf16 LSTM in oneDNN (no AVX512)")
    model = build(name)
    dtypes = []
    output_layer(model).register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    module = TranslationModule(model, str, ["ref"] * 4, compile_loss=False)
    tgt = torch.randint(3, 20, (4, 6), generator=torch.Generator().manual_seed(0))
    batch = Batch(torch.arange(4), tgt, torch.full((4,), 6), tgt, tgt, 24)
    module.on_validation_epoch_start()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):  # as Lightning validates
        module.validation_step(batch, 0)
    assert dtypes[0] == torch.bfloat16  # the loss's forward pass
    assert len(dtypes) > 1 and set(dtypes[1:]) == {torch.float32}  # every decoding step
    assert sorted(module._val_hyps) == [0, 1, 2, 3]


# --- ReseedEachStep: dropout masks per micro-batch and rank, the same after a resume -------------
class MaskRecorder(L.LightningModule):
    """Five one-sample batches an epoch; records the dropout mask each training micro-batch draws."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(4))
        self.drop = Dropout(0.5)
        self.masks: list[tuple[int, int, torch.Tensor]] = []  # (epoch, optimizer steps done, mask [256])

    def training_step(self, batch, batch_idx):
        mask = self.drop(torch.ones(256)) != 0  # [256]
        self.masks.append((self.current_epoch, self.trainer.global_step, mask))
        return (self.w * batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(5, 4)), batch_size=1)


def fit_recording(max_epochs: int, state, resume: bool = False) -> MaskRecorder:
    """Fit with accumulate_grad_batches=2 (optimizer steps after micro-batches 2, 4 and 5 of an epoch),
    checkpointing at each epoch's end as the train stage does; resume from `state`/last.ckpt."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    torch.manual_seed(1234 if resume else 0)  # what the global generator held before does not matter
    module = MaskRecorder()
    checkpoint = ModelCheckpoint(dirpath=state, save_last=True, save_on_train_epoch_end=True,
                                 enable_version_counter=False)
    trainer = L.Trainer(max_epochs=max_epochs, accumulate_grad_batches=2, accelerator="cpu", logger=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[ReseedEachStep(7), checkpoint], default_root_dir=state)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(does not have many workers|smaller than the logging interval"
                                                  "|exists and is not empty).*")
        trainer.fit(module, ckpt_path=str(state / "last.ckpt") if resume else None)
    return module


class ScriptedBleu(L.LightningModule):
    """Validation reports valid_bleu from a script, one value an epoch."""

    def __init__(self, bleu: list[float]):
        super().__init__()
        self.w, self.bleu = torch.nn.Parameter(torch.ones(4)), bleu

    def training_step(self, batch, batch_idx):
        return (self.w * batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("valid_bleu", self.bleu[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(3, 4)), batch_size=1)

    val_dataloader = train_dataloader


def test_last_checkpoint_is_the_last_epoch_even_when_it_did_not_improve(tmp_path):
    """What a killed run resumes from and `decode.checkpoint=last` decodes: the last epoch, not the best."""
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[*epoch_checkpoints(tmp_path)],
                        default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(does not have many workers|smaller than the logging interval).*")
        trainer.fit(ScriptedBleu([1.0, 3.0, 2.0, 2.5]))
    read = lambda name: torch.load(tmp_path / name, map_location="cpu", weights_only=True)  # noqa: E731
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    assert (read("last.ckpt")["epoch"], read("last.ckpt")["global_step"]) == (3, 12)
    assert (read("best.ckpt")["epoch"], read("best.ckpt")["global_step"]) == (1, 6)


def test_micro_batches_of_one_optimizer_step_draw_different_dropout_masks(tmp_path):
    masks = fit_recording(2, tmp_path).masks
    assert [(epoch, step) for epoch, step, _ in masks] == [(0, 0), (0, 0), (0, 1), (0, 1), (0, 2),
                                                           (1, 3), (1, 3), (1, 4), (1, 4), (1, 5)]
    drawn = [m for _, _, m in masks]
    assert all(not torch.equal(a, b) for i, a in enumerate(drawn) for b in drawn[i + 1:])  # every micro-batch its own


def test_a_resumed_run_draws_the_masks_of_an_uninterrupted_one(tmp_path):
    uninterrupted = fit_recording(2, tmp_path / "through").masks
    fit_recording(1, tmp_path / "killed")
    resumed = fit_recording(2, tmp_path / "killed", resume=True).masks
    assert [(e, s) for e, s, _ in resumed] == [(e, s) for e, s, _ in uninterrupted if e == 1]
    assert all(torch.equal(a, b) for (_, _, a), (_, _, b) in zip(resumed, uninterrupted[5:]))


def masks_at(micro_batch: int, rank: int, seed: int = 7) -> torch.Tensor:
    """The mask a training micro-batch draws on a DDP rank, after whatever the generator did before."""
    torch.rand(100)
    trainer = SimpleNamespace(global_rank=rank, global_step=micro_batch // 2,
                              fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(total_batch_idx=micro_batch)))
    ReseedEachStep(seed).on_train_batch_start(trainer, None, None, micro_batch)
    return Dropout(0.5)(torch.ones(256)) != 0  # [256]


def test_ddp_ranks_draw_different_masks_and_the_same_micro_batch_and_rank_the_same():
    assert all(not torch.equal(masks_at(3, rank=a), masks_at(3, rank=b)) for a in range(4) for b in range(a))
    assert torch.equal(masks_at(3, rank=1), masks_at(3, rank=1))
    assert not torch.equal(masks_at(3, rank=0), masks_at(3, rank=0, seed=8))
    ranks, micro_batches = range(256), [*range(64), *range(2**24 - 64, 2**24)]
    seeds = {micro_batch_seed(7, m, r) for m in micro_batches for r in ranks}
    assert len(seeds) == len(ranks) * len(micro_batches) and max(seeds) < 2**32  # mt19937 keeps 32 bits


# --- R-Drop ----------------------------------------------------------------------------------------
def rdrop_case(name: str = "lstm_bahdanau", dropout: float = 0.3):
    """A small model of conf/model/<name>.yaml with dropout, and a padded batch."""
    from model_helpers import build

    from seq2seq.data.batching import Batch

    model = build(name, dropout=dropout)
    g = torch.Generator().manual_seed(0)
    src, tgt = torch.randint(3, 20, (4, 7), generator=g), torch.randint(3, 20, (4, 6), generator=g)
    src[1, 5:], tgt[2, 4:] = 0, 0  # padding
    lens = (src != 0).sum(1)
    return model, Batch(torch.arange(4), src, lens, tgt, tgt, int((tgt != 0).sum()))


@pytest.mark.parametrize("name", ["lstm_bahdanau", "transformer"])
def test_rdrop_alpha_0_trains_exactly_as_without_it(name):
    """alpha 0 is today's step: one forward pass, the same loss and the same gradients."""
    from seq2seq.training.module import sequence_loss

    model, batch = rdrop_case(name)
    module = TranslationModule(model, str, [], compile_loss=False, label_smoothing=0.1, rdrop_alpha=0.0)
    module.log = lambda *a, **k: None
    calls = []
    model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    torch.manual_seed(5)
    module.training_step(batch, 0).backward()
    got = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    torch.manual_seed(5)
    sequence_loss(model(batch.src, batch.src_lens, batch.tgt_in), batch.tgt_out, model.pad_id, 0.1).backward()
    assert calls == [4, 4]  # one pass each, over the batch as it is
    for k, p in model.named_parameters():
        assert torch.equal(got[k], p.grad), k


def direct_symmetric_kl(logits_a, logits_b, target, pad_id):
    """(KL(Pa||Pb) + KL(Pb||Pa)) / 2 a token, from torch's kl_div, averaged over non-pad tokens."""
    import torch.nn.functional as F

    la, lb = F.log_softmax(logits_a.double(), -1), F.log_softmax(logits_b.double(), -1)
    kl = F.kl_div(lb, la, log_target=True, reduction="none").sum(-1) + F.kl_div(la, lb, log_target=True, reduction="none").sum(-1)
    keep = target != pad_id
    return float((0.5 * kl * keep).sum() / keep.sum())


@pytest.mark.parametrize("name", ["lstm_bahdanau", "transformer"])
def test_rdrop_adds_the_papers_symmetric_kl_of_two_dropout_passes(name):
    """alpha > 0: the batch twice (two dropout masks), objective CE_a + CE_b + alpha * (KL(Pa||Pb) +
    KL(Pb||Pa)) / 2 (Wu et al., 2021), label smoothing on each CE; checked against a direct
    computation from the same two passes."""
    from seq2seq.training.module import sequence_loss, symmetric_kl

    model, batch = rdrop_case(name)
    module = TranslationModule(model, str, [], compile_loss=False, label_smoothing=0.1, rdrop_alpha=5.0)
    torch.manual_seed(3)
    objective, ce, kl = module._rdrop_loss(batch)
    torch.manual_seed(3)  # the same masks: the same stacked forward
    twice = lambda t: torch.cat([t, t])  # noqa: E731
    logits = model(twice(batch.src), twice(batch.src_lens), twice(batch.tgt_in))
    a, b = logits[:4], logits[4:]
    assert not torch.allclose(a, b)  # two different dropout masks
    ce_a, ce_b = (sequence_loss(x, batch.tgt_out, model.pad_id, 0.1).item() for x in (a, b))
    expected_kl = direct_symmetric_kl(a.detach(), b.detach(), batch.tgt_out, model.pad_id)
    assert expected_kl > 0 and kl.item() == pytest.approx(expected_kl, rel=1e-5)
    assert ce.item() == pytest.approx((ce_a + ce_b) / 2, rel=1e-5)
    assert objective.item() == pytest.approx(ce_a + ce_b + 5.0 * expected_kl, rel=1e-5)
    objective.backward()  # gradients reach the model through both passes and the KL
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # without dropout the two passes agree: no KL
    same = torch.randn(2, 3, 9)
    assert symmetric_kl(same, same.clone(), torch.ones(2, 3, dtype=torch.long), 0).item() == pytest.approx(0, abs=1e-7)


def test_rdrop_alpha_must_not_be_negative():
    with pytest.raises(ConfigError, match="trainer.rdrop_alpha=-1 must be >= 0"):
        validate(compose(["trainer.rdrop_alpha=-1"]))
    validate(compose(["trainer.rdrop_alpha=5"]))


def test_the_progress_bar_counts_epochs_from_1():
    from seq2seq.training.callbacks import EpochProgressBar

    bar = EpochProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=2)
    assert bar._get_train_description(0).strip() == "Epoch 1/2"
    assert bar._get_train_description(1).strip() == "Epoch 2/2"
    bar._trainer = SimpleNamespace(max_epochs=-1)  # no limit
    assert bar._get_train_description(4).strip() == "Epoch 5"
