"""seq2seq.models.Dropout: the rate, the scale and the gradient of nn.Dropout, from a quarter of the
random draws; reproducible under torch.manual_seed; used by every model."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from model_helpers import V
from seq2seq.models.dropout import Dropout, cpu_dropout
from seq2seq.models.builder import build_model

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
