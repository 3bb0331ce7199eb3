"""Dropout whose CPU masks cost a quarter of the random draws.

On a CPU, `nn.Dropout` draws one number from the Mersenne Twister per element (`bernoulli_`), one
at a time: a fifth of the Transformer's bf16 training step on a 2-core AMD EPYC (torch.profiler,
README "Training options"). Here every 64-bit draw gives the masks of four elements, 16 bits each,
so an element is dropped with probability round(p * 65536) / 65536 (within 8e-6 of p) and kept
ones are scaled by the inverse of the kept probability: the mean is unchanged, as with
`nn.Dropout`. The draws come from torch's global CPU generator, so `torch.manual_seed` makes them
reproducible. Elsewhere (CUDA) `nn.Dropout`'s own fused kernel runs.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

_LEVELS = 1 << 16  # 16 random bits per element


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
    """`nn.Dropout` with `cpu_dropout` for CPU tensors in training mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or self.inplace or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training, self.inplace)
        return cpu_dropout(x, self.p)
