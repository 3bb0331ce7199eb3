"""seq2seq.models.Dropout: the rate, the scale and the gradient of nn.Dropout, from a quarter of the
random draws (PyTorch's own masks on Intel CPUs); reproducible under torch.manual_seed; used by every model."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from model_helpers import V
from omegaconf import OmegaConf
from torch import nn

from conftest import run_env
from seq2seq.errors import ConfigError
from seq2seq.models import dropout
from seq2seq.models.builder import build_model
from seq2seq.models.dropout import Dropout, choose_cpu_masks, cpu_dropout, cpu_vendor

MODEL_DIR = Path(__file__).resolve().parents[1] / "conf" / "model"


@pytest.mark.parametrize("p", [0.1, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drops_at_rate_p_in_every_16_bit_lane_and_keeps_the_mean(p, dtype):
    torch.manual_seed(0)
    x = torch.ones(1000, 400, dtype=dtype)  # 400,000 elements, 100,000 of each lane
    out = cpu_dropout(x, p)
    assert out.dtype == dtype and out.shape == x.shape
    dropped = (out == 0).reshape(-1, 4).double().mean(0)  # [4]: each 16-bit slice of a 64-bit draw
    sd = (p * (1 - p) / 100_000) ** 0.5
    assert torch.all((dropped - p).abs() < 5 * sd), dropped
    kept = out[out != 0].float()
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p)), rtol=4e-3, atol=0)  # bf16 rounds 1/(1-p)
    assert abs(out.double().mean().item() - 1.0) < 6 * (p / (1 - p) / x.numel()) ** 0.5 + 4e-3


def test_masks_are_seeded_and_not_the_same_along_the_tensor():
    x = torch.ones(64, 256)
    torch.manual_seed(3)
    a = cpu_dropout(x, 0.2)
    torch.manual_seed(3)
    b = cpu_dropout(x, 0.2)
    assert torch.equal(a, b)
    assert not torch.equal(a, cpu_dropout(x, 0.2))  # the generator moved on
    assert not torch.equal(a[0], a[1])  # rows get their own bits, not one repeated pattern


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(32, 50, requires_grad=True)
    drop = Dropout(0.25).train()
    out = drop(x)
    out.sum().backward()
    mask = (out != 0).float() / 0.75
    torch.testing.assert_close(out, x.detach() * mask)
    torch.testing.assert_close(x.grad, mask)


def test_identity_in_eval_mode_and_at_p_zero_zero_at_p_one():
    x = torch.randn(8, 16)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))


@pytest.mark.parametrize("name", ["lstm_bahdanau", "cnn", "transformer"])
def test_every_model_drops_out_through_it(name):
    cfg = OmegaConf.to_container(OmegaConf.load(MODEL_DIR / f"{name}.yaml"), resolve=True)
    model = build_model(cfg, V, V)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(type(m) is Dropout for m in drops)


# --- which masks: PyTorch's on Intel (MKL), cpu_dropout's elsewhere -------------------------------
INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n"
AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n"  # no vendor_id line


@pytest.mark.parametrize("text, vendor", [(INTEL, "GenuineIntel"), (AMD, "AuthenticAMD"), (ARM, ""), (None, "")],
                         ids=["intel", "amd", "arm", "no-file"])
def test_the_cpu_vendor_is_read_from_cpuinfo(tmp_path, text, vendor):
    path = tmp_path / "cpuinfo"
    if text is not None:
        path.write_text(text)
    assert cpu_vendor(path) == vendor


def test_intel_gets_pytorchs_masks_other_cpus_the_fast_ones_unless_overridden():
    assert choose_cpu_masks("GenuineIntel") == "native"
    assert choose_cpu_masks("AuthenticAMD") == choose_cpu_masks("") == choose_cpu_masks("HygonGenuine") == "fast"
    assert choose_cpu_masks("GenuineIntel", "fast") == "fast" and choose_cpu_masks("AuthenticAMD", "native") == "native"
    with pytest.raises(ConfigError, match="SEQ2SEQ_CPU_DROPOUT='mkl': expected one of native, fast"):
        choose_cpu_masks("GenuineIntel", "mkl")


@pytest.mark.parametrize("override", [None, "native", "fast"])
def test_the_choice_made_at_import_follows_the_cpu_and_the_environment(override):
    env = run_env()
    env.pop("SEQ2SEQ_CPU_DROPOUT", None)
    if override:
        env["SEQ2SEQ_CPU_DROPOUT"] = override
    script = "from seq2seq.models import dropout; print(dropout.CPU_MASKS)"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    on_this_cpu = "native" if cpu_vendor() == "GenuineIntel" else "fast"
    assert out.strip() == (override or on_this_cpu)


@pytest.mark.parametrize("masks", ["native", "fast"])
def test_both_kinds_of_masks_are_dropout_at_rate_p_seeded(monkeypatch, masks):
    monkeypatch.setattr(dropout, "CPU_MASKS", masks)
    p, x = 0.3, torch.ones(1000, 400)
    drop = Dropout(p).train()
    torch.manual_seed(5)
    out = drop(x)
    assert abs((out == 0).double().mean().item() - p) < 5 * (p * (1 - p) / x.numel()) ** 0.5
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p)))
    torch.manual_seed(5)
    assert torch.equal(drop(x), out)  # seeded
    assert not torch.equal(drop(x), out)  # the generator moved on
    torch.manual_seed(5)
    theirs = torch.nn.functional.dropout(x, p, True) if masks == "native" else cpu_dropout(x, p)
    assert torch.equal(out, theirs)  # the kind asked for, not the other
