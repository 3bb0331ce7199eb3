"""What training needs to know about the machine it runs on: bf16 on CPUs with and without native
support, oneDNN's kernel cache, the thread count it ran with, and which distributed rank it is."""

from __future__ import annotations

import functools
import os

import torch

from seq2seq import threads
from seq2seq.errors import ConfigError


def bf16_on_cpu(on_cpu: bool, precision: str) -> bool:
    """Whether training runs bf16 autocast on the CPU."""
    return on_cpu and str(precision).startswith("bf16")


def slow_cpu_bf16_warning(on_cpu: bool, precision: str) -> str | None:
    """A warning when bf16 autocast would run on a CPU without native bf16 (AVX512-BF16 or AMX):
    there it is emulated and slower than fp32, the opposite of what the setting is for."""
    if not bf16_on_cpu(on_cpu, precision):
        return None
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        return None
    return (f"trainer.lightning.precision={precision} on a CPU without AVX512-BF16 or AMX: bf16 is "
            "emulated there and slower than fp32; set trainer.lightning.precision=32-true")


@functools.cache
def cpu_runs_rnns_in_bf16() -> bool:
    """Whether this CPU's oneDNN builds a bf16 LSTM (it does not without AVX512: 'could not create
    a primitive descriptor for the LSTM forward propagation primitive')."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(8, 8, batch_first=True)(torch.zeros(1, 2, 8))
    except RuntimeError:
        return False
    return True


def check_cpu_bf16_rnn(on_cpu: bool, precision: str, model: torch.nn.Module) -> None:
    """ConfigError before training when bf16 autocast would run a recurrent model on a CPU whose
    oneDNN has no bf16 RNN: training would crash at the first batch."""
    if not bf16_on_cpu(on_cpu, precision):
        return
    if any(isinstance(m, torch.nn.RNNBase) for m in model.modules()) and not cpu_runs_rnns_in_bf16():
        raise ConfigError(f"trainer.lightning.precision={precision}: this CPU cannot run recurrent layers in bf16 "
                          "(oneDNN needs AVX512 for a bf16 LSTM/GRU); set trainer.lightning.precision=32-true")


def set_onednn_cache_capacity(capacity: int | None) -> None:
    """How many primitives (kernels built for one op at one shape) oneDNN keeps. Its default, 1024,
    is too few for training on batches of varying shape: kernels are evicted and rebuilt every
    epoch, which costs time and fragments memory. oneDNN reads the setting when it first runs, so
    this must come before the process's first CPU matrix op (the train stage calls it first);
    it also reaches the processes a run starts (DDP). None leaves the environment's setting."""
    if capacity is not None:
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(capacity)


def threads_tag(low: int, high: int) -> str:
    """The MLflow tag `seq2seq.threads`: the thread count training ran with ("2"), or the range
    when other stages of the repository made it change ("1-2"); "(OMP_NUM_THREADS)" when pinned."""
    count = str(low) if low == high else f"{low}-{high}"
    return f"{count} (OMP_NUM_THREADS)" if threads.PINNED else count


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed run (Lightning, torchrun, SLURM)."""
    return all(int(os.environ.get(k, 0)) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))
