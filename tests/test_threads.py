"""Thread budgets (seq2seq.stage): stages of one repository share the cores, OMP_NUM_THREADS pins the
count, OpenMP waits passively.
Determinism policy: bitwise identical results at one thread count (not across counts)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_env
from model_helpers import build, padded_batch, target
from seq2seq import stage
from seq2seq.module import sequence_loss
from seq2seq.stage import StageThreads

SRC = str(Path(stage.__file__).resolve().parents[1])  # the seq2seq under test, for subprocesses run elsewhere


def child(code: str, **env) -> subprocess.Popen:
    """A Python process running `code`, with OMP_NUM_THREADS and OMP_WAIT_POLICY as `env` says."""
    e = run_env(PYTHONPATH=SRC, **env)
    for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY"):
        if key not in env:
            e.pop(key, None)
    return subprocess.Popen([sys.executable, "-c", code], env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def answer(proc: subprocess.Popen) -> str:
    """The child's next line that is not the stage's own "threads: ..." message."""
    while (line := proc.stdout.readline()).startswith("threads:"):
        pass
    return line


def test_stages_share_the_cores_in_the_order_they_started(tmp_path):
    first = StageThreads(tmp_path, cores=3)
    first.register()
    assert first.share() == (3, 1)
    second = StageThreads(tmp_path, cores=3)
    second.pid = os.getppid()  # another live process
    second.entry = tmp_path / str(second.pid)
    second.register()
    assert first.share() == (2, 2) and second.share() == (1, 2)  # 3 cores: the first to start takes the odd one
    assert StageThreads(tmp_path, cores=1).share()[0] == 1  # never 0
    second.unregister()
    assert first.share() == (3, 1)


def test_entries_of_dead_or_reused_pids_are_ignored_and_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / dead.stdout.strip()).write_text(f"{time.time() - 9:.6f} 123\n")  # killed -9: never unregistered
    (tmp_path / str(os.getppid())).write_text(f"{time.time() - 8:.6f} 1\n")  # a live pid, another process's start time
    (tmp_path / "junk").write_text("")
    me = StageThreads(tmp_path, cores=2)
    me.register()
    assert me.running() == [os.getpid()] and me.share() == (2, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([str(os.getpid()), "junk"])


def test_a_stage_gives_threads_up_while_another_runs_and_takes_them_back(tmp_path):
    """Two real stage processes in one registry: the second to start sees two stages and takes half
    the cores; the first, rebalancing, too; once the second has ended the first has all of them.
    OMP_WAIT_POLICY is PASSIVE in both (set before torch loaded), unless the environment says otherwise."""
    code = f"""
import os, sys
import seq2seq, torch
from pathlib import Path
from seq2seq import stage
with stage.running_stage(Path({str(tmp_path)!r})):
    print(os.environ["OMP_WAIT_POLICY"], torch.get_num_threads(), flush=True)
    for line in sys.stdin:
        print(stage.rebalance(), flush=True)
"""
    first = child(code)
    policy, alone = answer(first).split()
    cores = alone = int(alone)
    assert policy == "PASSIVE"
    second = child(code, OMP_WAIT_POLICY="ACTIVE")
    policy, threads = answer(second).split()
    assert policy == "ACTIVE" and int(threads) == max(1, cores // 2)
    first.stdin.write("\n"), first.stdin.flush()
    assert int(answer(first)) == max(1, cores // 2 + cores % 2)
    second.stdin.close()
    assert second.wait(60) == 0
    first.stdin.write("\n"), first.stdin.flush()
    assert int(answer(first)) == cores
    first.stdin.close()
    assert first.wait(60) == 0, first.stderr.read()
    assert not list(tmp_path.iterdir())  # both unregistered


def test_omp_num_threads_pins_the_count(tmp_path):
    """Alone in its registry a stage would take every core; OMP_NUM_THREADS=1 keeps it at 1."""
    code = f"""
import torch
from pathlib import Path
from seq2seq import stage
with stage.running_stage(Path({str(tmp_path)!r})):
    print(torch.get_num_threads(), stage.rebalance())
"""
    proc = child(code, OMP_NUM_THREADS="1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["threads: 1 (OMP_NUM_THREADS=1)", "1 1"]


def steps(name: str, threads: int) -> torch.Tensor:
    """The weights after three seeded Adam steps (dropout on) at `threads` threads."""
    torch.set_num_threads(threads)
    model = build(name, dropout=0.1)  # seeded
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    src, lens = padded_batch([9, 7, 9, 3, 8, 9, 6, 9])
    tgt = target(8, 10)
    torch.manual_seed(1)
    for _ in range(3):
        out = model(src, lens, tgt[:, :-1])
        logits = out[0] if isinstance(out, tuple) else out
        opt.zero_grad()
        sequence_loss(logits, tgt[:, 1:], 0).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("name", ["lstm_bahdanau", "transformer"])
def test_training_steps_are_bitwise_identical_at_one_thread_count(name):
    """The determinism policy: the same thread count gives the same weights to the last bit. Across
    counts they may differ (a reduction split over 2 threads adds in another order); that is why
    the train stage records its count and OMP_NUM_THREADS pins it for an exact rerun."""
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            assert torch.equal(steps(name, threads), steps(name, threads)), f"{threads} threads"
    finally:
        torch.set_num_threads(before)
