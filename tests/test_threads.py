"""Thread budgets (seq2seq.threads): stages of one repository share the cores, OMP_NUM_THREADS pins the
count, OpenMP waits passively; the train stage records the count and prints progress lines.
Determinism policy: bitwise identical results at one thread count (not across counts)."""

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from model_helpers import build, padded_batch, target
from omegaconf import OmegaConf
from test_learning import corpus

from conftest import run_env
from seq2seq import threads as budget
from seq2seq.config.params import compose
from seq2seq.threads import StageThreads
from seq2seq.training.callbacks import Progress, Throughput, clock
from seq2seq.training.module import sequence_loss

SRC = str(Path(budget.__file__).resolve().parents[1])  # the seq2seq under test, for subprocesses run elsewhere


def child(code: str, **env) -> subprocess.Popen:
    """A Python process running `code`, with OMP_NUM_THREADS and OMP_WAIT_POLICY as `env` says."""
    e = run_env(PYTHONPATH=SRC, **env)
    for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY"):
        if key not in env:
            e.pop(key, None)
    return subprocess.Popen([sys.executable, "-c", code], env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def answer(proc: subprocess.Popen) -> str:
    """The child's next line (the stage's own "threads: ..." messages go to stderr)."""
    return proc.stdout.readline()


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
from seq2seq import threads as budget
with budget.running_stage(Path({str(tmp_path)!r})):
    print(os.environ["OMP_WAIT_POLICY"], torch.get_num_threads(), flush=True)
    for line in sys.stdin:
        print(budget.rebalance(), flush=True)
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
from seq2seq import threads as budget
with budget.running_stage(Path({str(tmp_path)!r})):
    print(torch.get_num_threads(), budget.rebalance())
"""
    proc = child(code, OMP_NUM_THREADS="1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["1 1"]


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


class FakeTrainer:
    is_global_zero, max_epochs, current_epoch, global_step, num_training_batches = True, 3, 0, 0, 10
    callback_metrics: dict = {}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_lines_only_where_no_terminal_shows_the_bar():
    throughput = Throughput()
    shown, hidden = io.StringIO(), Terminal()
    for stream in (shown, hidden):
        progress, trainer = Progress(throughput, every_s=0.0, stream=stream), FakeTrainer()
        progress.on_train_start(trainer, None)
        progress.on_train_epoch_start(trainer, None)
        throughput.tokens, throughput.seconds = 3000, 2.0
        trainer.global_step = 4
        progress.on_train_batch_end(trainer, None, None, None, 3)
        trainer.callback_metrics = {"valid_bleu": torch.tensor(12.345)}
        progress.on_train_epoch_end(trainer, None)
    assert hidden.getvalue() == ""
    lines = shown.getvalue().splitlines()
    assert re.fullmatch(r"epoch 1/3 batch 4/10  step 4  tgt tok/s 1,500  elapsed 0:00  threads \d+", lines[0]), lines
    assert re.fullmatch(r"epoch 1/3 done  step 4  tgt tok/s 1,500  elapsed 0:00  valid BLEU 12.35  threads \d+",
                        lines[1]), lines
    assert clock(3725) == "1:02:05" and clock(65) == "1:05"


@pytest.fixture(scope="module")
def tiny_stage(tmp_path_factory) -> Path:
    """Prepared data, tokenizers and token store of 50 pairs, params for two short epochs: the train stage's inputs."""
    from seq2seq.data.sentencepiece import train_sentencepiece
    from seq2seq.data.store import write_store

    work = tmp_path_factory.mktemp("tiny")
    src, tgt = corpus(50)
    (work / "prepared").mkdir()
    for split in ("train", "valid", "test"):
        (work / "prepared" / f"{split}.de").write_text("\n".join(src) + "\n")
        (work / "prepared" / f"{split}.en").write_text("\n".join(tgt) + "\n")
    (work / "tokenizer").mkdir()
    tok_cfg = OmegaConf.create({"model_type": "word", "vocab_size": 40, "character_coverage": 1.0, "input_sentence_size": 1000})
    train_sentencepiece(src + tgt, work / "tokenizer" / "src", tok_cfg, seed=0)
    (work / "tokenizer" / "tgt.model").write_bytes((work / "tokenizer" / "src.model").read_bytes())
    (work / "encoded").mkdir()
    write_store(work / "prepared", work / "tokenizer", "de", "en", work / "encoded")
    cfg = compose(["experiment=smoke", "trainer.batch_tokens=200", "data.src=de", "data.tgt=en"])
    OmegaConf.save(cfg, work / "params.yaml")
    return work


@pytest.mark.slow
def test_train_stage_takes_its_share_records_it_and_prints_progress(tiny_stage):
    """The train stage beside another running stage of the repository (no OMP_NUM_THREADS): it says
    how many threads it took, prints a progress line an epoch (its stdout is a pipe), and records the
    count in timing.json and in MLflow (the tag seq2seq.threads, the metric threads)."""
    from mlflow import MlflowClient

    registry = tiny_stage / budget.REGISTRY
    registry.mkdir(exist_ok=True)
    other = child("import sys; sys.stdin.read()")  # stands for a stage that registered earlier
    try:
        (registry / str(other.pid)).write_text(f"{time.time():.6f} {budget._start_time(other.pid)}\n")
        env = run_env(DVC_ROOT=str(tiny_stage), PYTHONPATH=SRC)
        env.pop("OMP_NUM_THREADS", None)
        proc = subprocess.run([sys.executable, "-m", "seq2seq.stages.train", "--data", "prepared", "--tokenizer", "tokenizer",
                               "--encoded", "encoded", "--out", "train", "--metrics", "train.json", "--state", "state", "--history", "history.csv"],
                              cwd=tiny_stage, env=env, capture_output=True, text=True, timeout=600)
    finally:
        other.stdin.close()
        other.wait(30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    announced = re.search(r"^threads: (\d+) \((\d+) cores, 2 running stages in this repository; "
                          r"OMP_WAIT_POLICY=PASSIVE", proc.stderr, re.M)
    assert announced, proc.stderr
    threads, cores = int(announced[1]), int(announced[2])
    assert threads == max(1, cores // 2)
    for epoch in (1, 2):
        assert re.search(rf"^epoch {epoch}/2 done  step \d+  tgt tok/s [\d,]+  elapsed \d+:\d\d  valid BLEU [\d.]+  "
                         rf"threads {threads}$", proc.stdout, re.M), proc.stdout
    timing = json.loads((tiny_stage / "train" / "timing.json").read_text())
    assert timing["threads_min"] == timing["threads_max"] == threads
    run_id = json.loads((tiny_stage / "train" / "mlflow_run.json").read_text())["run_id"]
    mlc = MlflowClient(f"sqlite:///{tiny_stage / 'mlflow.db'}")
    run = mlc.get_run(run_id)
    assert run.data.tags["seq2seq.threads"] == str(threads)
    assert {m.value for m in mlc.get_metric_history(run_id, "threads")} == {threads}
    assert len(mlc.get_metric_history(run_id, "threads")) >= 3  # the start and each epoch's end
    assert [p.name for p in registry.iterdir()] == [str(other.pid)]  # the train stage unregistered
