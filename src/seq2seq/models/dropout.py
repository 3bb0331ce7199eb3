"""Dropout whose CPU masks cost a quarter of the random draws, where that is the faster way.

On a CPU, `nn.Dropout` draws its mask with `bernoulli_`. On an AMD CPU that is one number from the
Mersenne Twister per element, one at a time: a fifth of the Transformer's bf16 training step on a
2-core AMD EPYC (torch.profiler, README "Training options"). Here every 64-bit draw gives the masks
of four elements, 16 bits each, so an element is dropped with probability round(p * 65536) / 65536
(within 8e-6 of p) and kept ones are scaled by the inverse of the kept probability: the mean is
unchanged, as with `nn.Dropout`. The draws come from torch's global CPU generator, so
`torch.manual_seed` makes them reproducible. Elsewhere (CUDA) `nn.Dropout`'s own fused kernel runs.

On an Intel CPU PyTorch draws the mask with MKL's vectorized generator instead (its `bernoulli_`
checks the vendor itself), which was not measured against this one: there `Dropout` stays
`nn.Dropout`. The choice is made once, at import, from the CPU vendor (`vendor_id` in
/proc/cpuinfo); $SEQ2SEQ_CPU_DROPOUT=native or =fast overrides it, and `CPU_MASKS` holds it.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from seq2seq.errors import ConfigError

_LEVELS = 1 << 16  # 16 random bits per element
CHOICES = ("native", "fast")  # PyTorch's own CPU masks, or cpu_dropout's


def cpu_vendor(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's vendor_id ("GenuineIntel", "AuthenticAMD", ...), or "" where the file has none or
    does not exist (not Linux, or an ARM Linux that lists no vendor_id)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id":
                    return value.strip()
    except OSError:
        pass
    return ""


def choose_cpu_masks(vendor: str, override: str | None = None) -> str:
    """"native" (PyTorch's bernoulli_, MKL's on Intel) for an Intel CPU, else "fast" (cpu_dropout);
    `override` (from $SEQ2SEQ_CPU_DROPOUT), when set, wins."""
    if override:
        if override not in CHOICES:
            raise ConfigError(f"SEQ2SEQ_CPU_DROPOUT={override!r}: expected one of {', '.join(CHOICES)}")
        return override
    return "native" if vendor == "GenuineIntel" else "fast"


CPU_MASKS = choose_cpu_masks(cpu_vendor(), os.environ.get("SEQ2SEQ_CPU_DROPOUT"))


def cpu_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """x with each element zeroed with probability ~p, the rest scaled by 1 / (1 - p'); any shape."""
    dropped = round(p * _LEVELS)  # of 65,536 equally likely 16-bit values, how many drop
    if dropped == 0:
        return x
    if dropped == _LEVELS:
        return x * 0.0
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)  # full 64-bit range
    bits = bits.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    mask = (bits >= dropped - _LEVELS // 2).to(x.dtype) * (_LEVELS / (_LEVELS - dropped))
    return x * mask  # backward: grad * mask


class Dropout(nn.Dropout):
    """`nn.Dropout` with `cpu_dropout` for CPU tensors in training mode where CPU_MASKS is "fast"."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not self.training or self.p == 0.0 or self.inplace or x.device.type != "cpu"
                or CPU_MASKS == "native"):
            return F.dropout(x, self.p, self.training, self.inplace)
        return cpu_dropout(x, self.p)
