"""Threads: every stage takes its share of the cores (seq2seq.command registers each one).

PyTorch starts one compute thread per core in every process. Two stages computing at once
(`dvc queue start -j 2`, or a second `dvc exp run` beside a first) each start a full set, and the
threads of one steal the cores from those of the other, which OpenMP makes worse by spinning while
it waits: a smoke experiment took 9 times as long beside a second training as alone. So:

- each stage registers itself, while it runs, as a file `<repo root>/.running-stages/<pid>` (the
  repo root is $DVC_ROOT under DVC: queued and `--temp` experiments register in the real
  repository); entries of processes that are gone are ignored and removed;
- a stage that computes with torch takes its share of the cores: cores // running stages (the
  first `cores % n` to have started take one more), at least 1; training takes its share again
  every few seconds (seq2seq.training.callbacks.ThreadBudget), so a run gives cores away when another
  starts and takes them back when it ends;
- OpenMP's threads wait passively (OMP_WAIT_POLICY=PASSIVE, set by the package's __init__ before
  torch loads);
- an explicit OMP_NUM_THREADS wins: the stage keeps that many threads and never changes them.

Results are bitwise reproducible at one thread count only (reductions add in another order with
another count): pin the count with OMP_NUM_THREADS to rerun a run exactly.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from seq2seq.config.params import repo_root

REGISTRY = ".running-stages"  # under the repository root
# OMP_NUM_THREADS as this process found it, before anything (Lightning's DDP launcher) set it
PINNED = os.environ.get("OMP_NUM_THREADS")


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' elsewhere: with the pid it
    names one process, so an entry whose pid was reused by another process counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name (field 2) may hold spaces


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return not started or _start_time(pid) in ("", started)


class StageThreads:
    """This process's entry in `folder` (one file per running stage) and its share of `cores`.
    `pinned`: the thread count was set from outside (OMP_NUM_THREADS); then it is never changed."""

    def __init__(self, folder: Path, cores: int, pinned: bool = False):
        self.folder, self.cores, self.pinned = Path(folder), cores, pinned
        self.pid = os.getpid()
        self.entry = self.folder / str(self.pid)

    def register(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{self.pid}.tmp"
        tmp.write_text(f"{time.time():.6f} {_start_time(self.pid)}\n")
        tmp.replace(self.entry)  # whole or absent for the others

    def unregister(self) -> None:
        with contextlib.suppress(OSError):
            self.entry.unlink()

    def running(self) -> list[int]:
        """Pids of the live registered stages, in the order they registered; removes dead entries."""
        entries = []
        for path in self.folder.glob("[0-9]*"):
            try:
                since, _, started = path.read_text().strip().partition(" ")
                pid, since = int(path.name), float(since)
            except (OSError, ValueError):
                continue
            if _alive(pid, started):
                entries.append((since, pid))
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        pids = [pid for _, pid in sorted(entries)]
        return pids if self.pid in pids else [*pids, self.pid]

    def share(self) -> tuple[int, int]:
        """(threads for this stage, running stages)."""
        pids = self.running()
        n, i = len(pids), pids.index(self.pid)
        return max(1, self.cores // n + (i < self.cores % n)), n


_current: StageThreads | None = None


@contextlib.contextmanager
def running_stage(folder: Path | None = None):
    """Registers this process as a running stage of the repository while the block runs and, if it
    computes with torch (imported by then), sets its thread count to its share of the cores.
    Outside DVC and outside a pipeline repository (the translate command run elsewhere) it does
    nothing: no folder appears where a user happens to be."""
    global _current
    if folder is None and not os.environ.get("DVC_ROOT") and not (repo_root() / "dvc.yaml").is_file():
        yield
        return
    torch = sys.modules.get("torch")
    pinned = PINNED is not None
    cores = torch.get_num_threads() if torch is not None else (os.cpu_count() or 1)  # torch's own default
    budget = StageThreads(folder or repo_root() / REGISTRY, cores, pinned)
    try:
        budget.register()
    except OSError as e:  # a read-only checkout: run on torch's default threads
        print(f"threads: cannot register in {budget.folder} ({e.strerror}); using {cores} threads", file=sys.stderr)
        yield
        return
    _current = budget
    try:
        if torch is not None:
            rebalance()  # quiet unless it changes the count; the train stage announces its own
        yield
    finally:
        _current = None
        budget.unregister()


def rebalance(announce: bool = False) -> int:
    """Sets torch's thread count to this stage's share of the cores now (no change when pinned or
    outside a stage) and returns the count; prints it (on stderr: a command's output stays its own)
    at the start and whenever it changes."""
    import torch

    before = torch.get_num_threads()
    if _current is None or _current.pinned:
        if announce:
            print(f"threads: {before} (OMP_NUM_THREADS={PINNED})" if PINNED else f"threads: {before}", file=sys.stderr,
                  flush=True)
        return before
    threads, n = _current.share()
    if threads != before:
        torch.set_num_threads(threads)
    if announce or threads != before:
        change = f"{before} -> {threads}" if threads != before and not announce else str(threads)
        print(f"threads: {change} ({_current.cores} cores, {n} running stage{'s' * (n > 1)} in this repository; "
              f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; pin with OMP_NUM_THREADS)", file=sys.stderr,
              flush=True)
    return threads
