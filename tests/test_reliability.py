"""Crashes, lost tracking servers, DDP and unsafe checkpoints: the promises of issue 4, tested for real."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from iwslt_fixtures import build_iwslt_archive
from omegaconf import OmegaConf

from conftest import MlflowServer, dvc, free_port, make_repo_copy, run_env, sh
from seq2seq.config.params import compose
from seq2seq.errors import DataError
from seq2seq.io import atomic_path

METRICS = ("metrics/prepare.json", "metrics/train.json", "metrics/test.json", "plots/history.csv")


def smoke_params(archive: Path, *extra: str):
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    return compose(["experiment=smoke", f"data.archive={archive}", f"data.md5.de-en={md5}", *extra])


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory) -> Path:
    """Enough text that an epoch takes a moment: a kill can land between two epochs' checkpoints."""
    return build_iwslt_archive(tmp_path_factory.mktemp("big"), n_talks=20, lines_per_talk=150)


@pytest.fixture(scope="module")
def stages_dir(tmp_path_factory, big_archive) -> Path:
    """Download, prepare, tokenizer and encode run once (no DVC); tests then run the train stage alone."""
    work = tmp_path_factory.mktemp("stages")
    OmegaConf.save(smoke_params(big_archive), work / "params.yaml")
    py = [sys.executable, "-m"]
    sh([*py, "seq2seq.stages.download", "--out", "raw", "--cache-dir", "downloads"], cwd=work)
    sh([*py, "seq2seq.stages.prepare", "--raw", "raw", "--out", "prepared", "--stats", "prepare.json"], cwd=work)
    sh([*py, "seq2seq.stages.tokenizer", "--data", "prepared", "--out", "tokenizer"], cwd=work)
    sh([*py, "seq2seq.stages.encode", "--data", "prepared", "--tokenizer", "tokenizer", "--out", "encoded"], cwd=work)
    return work


def train_cmd(params: str = "params.yaml", out: str = "train", metrics: str = "train.json", state: str = "state",
              history: str = "history.csv") -> list[str]:
    return [sys.executable, "-m", "seq2seq.stages.train", "--params", params, "--data", "prepared", "--tokenizer", "tokenizer",
            "--encoded", "encoded", "--out", out, "--metrics", metrics, "--state", state, "--history", history]


def read_metrics(repo: Path) -> dict[str, str]:
    return {m: (repo / m).read_text() for m in METRICS}


@pytest.mark.slow
def test_killed_training_resumes_and_ends_as_an_uninterrupted_run(tmp_path, big_archive):
    repo = make_repo_copy(tmp_path / "repo")
    OmegaConf.save(smoke_params(big_archive, "trainer.lightning.max_epochs=4"), repo / "params.yaml")
    dvc("repro", cwd=repo)
    uninterrupted = read_metrics(repo)
    assert not (repo / "data/.train_state").exists(), "a finished run leaves no state behind"

    # Determinism: the same pipeline forced again gives identical metrics files.
    dvc("repro", "--force", cwd=repo)
    assert read_metrics(repo) == uninterrupted

    # Kill -9 once the first epoch's checkpoint exists, mid-run.
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "train"], cwd=repo, env=run_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = repo / "data/.train_state"
    deadline = time.time() + 300
    while not (state / "last.ckpt").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # let the checkpoint file be complete (Lightning writes it via a temporary name)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (state / "last.ckpt").exists()
    killed_run = json.loads((state / "state.json").read_text())["run_id"]

    # Forced: the uninterrupted run's outputs are in DVC's cache, and a plain repro would restore them
    rerun = dvc("repro", "--force", "--downstream", "train", cwd=repo)
    assert "train: resuming from" in rerun.stdout
    resumed_after = int(rerun.stdout.split("after epoch ")[1].split(",")[0])
    assert 1 <= resumed_after < 4
    assert read_metrics(repo) == uninterrupted
    assert json.loads((repo / "data/train/timing.json").read_text())["resumed"] is True
    # ... in the same MLflow run, which holds each epoch once and the test scores
    assert json.loads((repo / "data/train/mlflow_run.json").read_text())["run_id"] == killed_run
    from mlflow import MlflowClient

    mlc = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    history = mlc.get_metric_history(killed_run, "valid_bleu")
    assert sorted(m.step for m in history) == sorted({m.step for m in history}) and len(history) == 4
    assert mlc.get_run(killed_run).data.metrics["test_bleu"] == json.loads(uninterrupted["metrics/test.json"])["bleu"]


@pytest.mark.slow
def test_a_killed_train_stage_leaves_no_outputs(stages_dir):
    """Run without DVC (which deletes a stage's outputs before it runs, and would hide a stage that
    wrote them early): outputs appear only once training is over."""
    proc = subprocess.Popen(train_cmd(out="killed", metrics="killed.json", state="killed_state", history="killed.csv"),
                            cwd=stages_dir, env=run_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (stages_dir / "killed_state" / "last.ckpt").exists():  # an epoch is over
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not any((stages_dir / name).exists() for name in ("killed", "killed.json", "killed.csv"))


def test_a_write_killed_half_way_leaves_the_old_version_whole(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    child = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from seq2seq.io import atomic_path
with atomic_path({str(target)!r}) as tmp:
    with open(tmp, "w") as f:
        f.write("half of the new")
        f.flush()
        print("half", flush=True)
        time.sleep(60)
"""], stdout=subprocess.PIPE, text=True, env=run_env())
    assert child.stdout.readline() == "half\n"
    child.kill()
    child.wait()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["out.txt"]


@pytest.mark.slow
def test_a_checkpoint_of_other_settings_is_not_resumed(stages_dir, tmp_path):
    work = stages_dir
    (work / "state").mkdir(exist_ok=True)
    (work / "state" / "state.json").write_text(json.dumps({"fingerprint": "something else", "run_id": "x"}))
    torch.save({"epoch": 3}, work / "state" / "last.ckpt")
    out = sh(train_cmd(), cwd=work, env=run_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}"))
    assert "resuming" not in out.stdout
    assert json.loads((work / "train" / "timing.json").read_text())["resumed"] is False
    assert not (work / "state").exists()


@pytest.mark.slow
def test_unreachable_tracking_server_fails_before_training_without_leaking_credentials(stages_dir):
    uri = f"http://alice:s3cret@127.0.0.1:{free_port()}"
    start = time.time()
    proc = sh(train_cmd(), cwd=stages_dir, env=run_env(MLFLOW_TRACKING_URI=uri), check=False)
    assert proc.returncode == 1
    assert "cannot be reached" in proc.stderr and "127.0.0.1" in proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr and "alice" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (stages_dir / "state").exists() and time.time() - start < 60


@pytest.mark.slow
def test_tracking_server_lost_mid_run_does_not_stop_training(stages_dir, tmp_path):
    server = MlflowServer(tmp_path)
    try:
        server.wait_ready()
        params = stages_dir / "params_lost.yaml"
        OmegaConf.save(OmegaConf.merge(OmegaConf.load(stages_dir / "params.yaml"),
                                       {"trainer": {"lightning": {"max_epochs": 3}}}), params)
        train = subprocess.Popen(train_cmd(str(params)), cwd=stages_dir, env=run_env(MLFLOW_TRACKING_URI=server.uri),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not (stages_dir / "state" / "state.json").exists():  # the run exists on the server
            assert train.poll() is None, train.communicate()
            time.sleep(0.05)
    finally:
        server.kill()
    stdout, stderr = train.communicate(timeout=600)
    assert train.returncode == 0, stderr[-3000:]
    assert "not logged" in stderr
    assert (stages_dir / "train" / "checkpoints" / "best.ckpt").exists()
    assert json.loads((stages_dir / "train.json").read_text())["epochs"] == 3
    # the server back at its address: the track stage adds the curves and summary training could not log
    run_id = json.loads((stages_dir / "train" / "mlflow_run.json").read_text())["run_id"]
    server = MlflowServer(tmp_path, port=int(server.uri.rsplit(":", 1)[1]))
    try:
        server.wait_ready()
        env = run_env(MLFLOW_TRACKING_URI=server.uri)
        sh([sys.executable, "-m", "seq2seq.stages.evaluate", "--params", str(params), "--data", "prepared", "--tokenizer",
            "tokenizer", "--checkpoints", "train/checkpoints", "--out", "evaluate_lost", "--metrics", "test_lost.json"],
           cwd=stages_dir, env=env)
        from mlflow import MlflowClient

        mlc = MlflowClient(server.uri)
        assert len(mlc.get_metric_history(run_id, "valid_bleu")) < 3 and "train.epochs" not in mlc.get_run(run_id).data.metrics
        track = [sys.executable, "-m", "seq2seq.stages.track", "--params", str(params), "--data", "prepared", "--tokenizer",
                 "tokenizer", "--checkpoints", "train/checkpoints", "--run", "train/mlflow_run.json", "--evaluate",
                 "evaluate_lost", "--metrics", "test_lost.json", "--train-metrics", "train.json", "--history", "history.csv"]
        out = sh(track, cwd=stages_dir, env=env).stdout
        assert "training values the train stage could not log added" in out
        history = mlc.get_metric_history(run_id, "valid_bleu")
        rows = (stages_dir / "history.csv").read_text().splitlines()[1:]
        assert [round(m.value, 4) for m in sorted(history, key=lambda m: m.step)] == [
            round(float(r.split(",")[5]), 4) for r in rows]  # every epoch once, in order
        assert len({m.step for m in history}) == 3
        assert mlc.get_run(run_id).data.metrics["train.epochs"] == 3
        assert "could not log" not in sh(track, cwd=stages_dir, env=env).stdout  # nothing more the second time
        assert len(mlc.get_metric_history(run_id, "valid_bleu")) == 3
    finally:
        server.kill()


@pytest.mark.slow
def test_ddp_on_cpu_gives_one_run_one_checkpoint_and_metrics_logged_once(stages_dir, tmp_path):
    from seq2seq.data.batching import TokenBatchSampler
    from seq2seq.training.datamodule import TranslationDataModule

    params = stages_dir / "params_ddp.yaml"
    cfg = OmegaConf.load(stages_dir / "params.yaml")
    cfg.trainer.lightning.merge_with({"accelerator": "cpu", "devices": 2, "strategy": "ddp", "max_epochs": 2})
    # an odd number of valid batches, so that two processes cannot simply split them evenly
    valid = TranslationDataModule(stages_dir / "prepared", stages_dir / "tokenizer", stages_dir / "encoded", "de",
                                  "en").dataset("valid")
    cfg.trainer.batch_tokens = next(b for b in range(256, 4096, 32) if len(TokenBatchSampler(valid, b, False).batches) % 2)
    n_valid = min(len(valid), cfg.trainer.val_max_sentences)
    OmegaConf.save(cfg, params)
    db = tmp_path / "ddp.db"
    sh(train_cmd(str(params)), cwd=stages_dir, env=run_env(MLFLOW_TRACKING_URI=f"sqlite:///{db}"))
    from mlflow import MlflowClient

    mlc = MlflowClient(f"sqlite:///{db}")
    runs = mlc.search_runs([mlc.get_experiment_by_name("seq2seq").experiment_id])
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    assert [m.step for m in mlc.get_metric_history(run_id, "valid_bleu")] == sorted({m.step for m in mlc.get_metric_history(run_id, "valid_bleu")})
    assert len(mlc.get_metric_history(run_id, "valid_bleu")) == 2  # once an epoch, not once a process
    # every valid sentence scored exactly once, and the loss over all their target tokens
    assert [m.value for m in mlc.get_metric_history(run_id, "valid_sentences")] == [n_valid] * 2
    tokens = int(valid.tgt_lens.sum())  # target tokens + EOS of every valid sentence
    assert [m.value for m in mlc.get_metric_history(run_id, "valid_tokens")] == [tokens] * 2
    assert sorted(p.name for p in (stages_dir / "train" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def listing(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file (size, mtime) and folder (None) under `folder`, by relative path."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None
            for p in folder.rglob("*")}


@pytest.mark.slow
def test_two_nodes_give_one_run_one_set_of_checkpoints_and_nothing_on_node_1(stages_dir, tmp_path):
    """Issue 26: 2 nodes x 1 process on localhost, launched as Lightning documents for a general
    cluster: `python -m seq2seq.stages.train` on every node, each in its own checkout, with the
    MASTER_ADDR, MASTER_PORT, NODE_RANK and WORLD_SIZE a scheduler sets (Lightning's
    LightningEnvironment; no LOCAL_RANK, so Lightning starts each node's devices=1 process itself)."""
    from seq2seq.data.batching import TokenBatchSampler
    from seq2seq.training.datamodule import TranslationDataModule

    cfg = OmegaConf.load(stages_dir / "params.yaml")
    cfg.trainer.lightning.merge_with({"accelerator": "cpu", "devices": 1, "num_nodes": 2, "strategy": "ddp",
                                      "max_epochs": 1, "limit_train_batches": 10})
    # an odd number of valid batches, so that the two nodes cannot simply split them evenly
    valid = TranslationDataModule(stages_dir / "prepared", stages_dir / "tokenizer", stages_dir / "encoded", "de",
                                  "en").dataset("valid")
    cfg.trainer.batch_tokens = next(b for b in range(256, 4096, 32) if len(TokenBatchSampler(valid, b, False).batches) % 2)
    n_valid = min(len(valid), cfg.trainer.val_max_sentences)
    nodes = []
    for rank in (0, 1):  # each node its own checkout holding the same prepared data, tokenizer, token store and params
        node = make_repo_copy(tmp_path / f"node{rank}")
        for folder in ("prepared", "tokenizer", "encoded"):
            shutil.copytree(stages_dir / folder, node / "data" / folder)
        OmegaConf.save(cfg, node / "params.yaml")
        nodes.append(node)
    before = listing(nodes[1])
    uri = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"  # one store both nodes reach (a shared filesystem)
    env = run_env(MLFLOW_TRACKING_URI=uri, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2")
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]
    procs = []
    for rank, (node, log) in enumerate(zip(nodes, logs)):
        with log.open("w") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "seq2seq.stages.train"], cwd=node,
                                          env={**env, "NODE_RANK": str(rank)}, stdout=out, stderr=subprocess.STDOUT))
    deadline = time.time() + 300
    try:  # a node that fails leaves the other waiting for it: stop at the first failure
        while any(p.poll() is None for p in procs) and all(p.poll() in (None, 0) for p in procs):
            assert time.time() < deadline, "the nodes did not finish in 300 s"
            time.sleep(0.5)
    finally:
        for p in procs:
            p.kill()
    failed = [rank for rank, p in enumerate(procs) if p.wait() != 0]  # -9: stopped after the other failed
    assert not failed, "\n".join(f"node {r} exited {procs[r].returncode}:\n{logs[r].read_text()[-4000:]}" for r in failed)
    from mlflow import MlflowClient

    mlc = MlflowClient(uri)
    runs = mlc.search_runs([e.experiment_id for e in mlc.search_experiments()])
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    assert len(mlc.get_metric_history(run_id, "valid_bleu")) == 1  # once an epoch, not once a node
    # every valid sentence scored exactly once, and the loss over all their target tokens
    assert [m.value for m in mlc.get_metric_history(run_id, "valid_sentences")] == [n_valid]
    assert [m.value for m in mlc.get_metric_history(run_id, "valid_tokens")] == [int(valid.tgt_lens.sum())]
    node0 = nodes[0]
    assert sorted(p.name for p in (node0 / "data" / "train" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert json.loads((node0 / "data" / "train" / "mlflow_run.json").read_text())["run_id"] == run_id
    assert json.loads((node0 / "metrics" / "train.json").read_text())["epochs"] == 1
    assert len((node0 / "plots" / "history.csv").read_text().splitlines()) == 2
    # node 1: nothing new and nothing changed, but for the emptied registry of this machine's
    # running stages (seq2seq.threads), which any stage computing there leaves
    after = listing(nodes[1])
    changed = {k for k in before.keys() & after.keys() if before[k] != after[k]}
    assert not changed and before.keys() <= after.keys()
    assert after.keys() - before.keys() <= {".running-stages"}
    assert not any((nodes[1] / ".running-stages").glob("*"))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_checkpoints_load_without_running_pickled_code(tmp_path, monkeypatch):
    from seq2seq.inference.translator import load_model

    monkeypatch.chdir(tmp_path)
    torch.save({"seq2seq": {"model": {}, "src_vocab_size": 8, "tgt_vocab_size": 8}, "state_dict": {}, "x": _Exploit()},
               tmp_path / "evil.ckpt", pickle_protocol=2)
    with pytest.raises(DataError, match=r"evil\.ckpt: not a checkpoint of this project's train stage$"):
        load_model(tmp_path / "evil.ckpt")
    assert not (tmp_path / "pwned").exists()


def test_an_interrupted_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"] and len(list(tmp_path.iterdir())) == 1


@pytest.mark.slow
def test_a_store_lost_inside_track_is_completed_by_running_it_again(stages_dir, tmp_path, monkeypatch):
    """The server stops at a fixed point of the track stage (scores logged, model not yet): the stage
    fails saying how to complete it; run again with the store back, it completes the same run, tagged
    evaluated only now; a third run adds nothing."""
    from mlflow import MlflowClient

    from seq2seq.config.params import load_params
    from seq2seq.errors import Seq2SeqError
    from seq2seq.stages import track
    from seq2seq.tracking import registry

    store = tmp_path / "store"
    store.mkdir()
    server = MlflowServer(store)
    server.wait_ready()
    env = run_env(MLFLOW_TRACKING_URI=server.uri)
    params = stages_dir / "params_track.yaml"
    OmegaConf.save(OmegaConf.merge(OmegaConf.load(stages_dir / "params.yaml"),
                                   {"trainer": {"lightning": {"max_epochs": 1}}}), params)
    sh(train_cmd(str(params), out="train_t", metrics="train_t.json", state="state_t", history="history_t.csv"),
       cwd=stages_dir, env=env)
    sh([sys.executable, "-m", "seq2seq.stages.evaluate", "--params", str(params), "--data", "prepared", "--tokenizer",
        "tokenizer", "--checkpoints", "train_t/checkpoints", "--out", "evaluate_t", "--metrics", "test_t.json"],
       cwd=stages_dir, env=env)
    monkeypatch.chdir(stages_dir)
    cfg = load_params(params)
    args = (cfg, Path("prepared"), Path("tokenizer"), Path("train_t/checkpoints"), Path("train_t/mlflow_run.json"),
            Path("evaluate_t"), Path("test_t.json"), Path("train_t.json"), Path("history_t.csv"), params)
    log_model = registry.log_model

    def stop_the_server_then_log(*a, **kw):
        server.kill()
        return log_model(*a, **kw)

    monkeypatch.setattr(registry, "log_model", stop_the_server_then_log)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(Seq2SeqError, match=r"`dvc repro`.*reruns only this stage and completes the run"):
        track.run(*args)
    monkeypatch.setattr(registry, "log_model", log_model)
    server = MlflowServer(store, port=int(server.uri.rsplit(":", 1)[1]))  # the same store at the same address, back
    try:
        server.wait_ready()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
        mlc = MlflowClient(server.uri)
        trained = json.loads(Path("train_t/mlflow_run.json").read_text())["run_id"]
        half = mlc.get_run(trained)
        assert "test_bleu" in half.data.metrics and "seq2seq.evaluated" not in half.data.tags  # not marked done
        assert track.run(*args) == trained
        done = mlc.get_run(trained)
        scores = json.loads(Path("test_t.json").read_text())
        assert done.data.tags["seq2seq.evaluated"] == "true" and done.data.metrics["test_bleu"] == scores["bleu"]
        (version,) = mlc.search_model_versions("name = 'seq2seq-de-en'")
        assert version.run_id == trained and done.data.tags["seq2seq.registered_model"] == "models:/seq2seq-de-en/1"

        def snapshot():
            run = mlc.get_run(trained)
            runs = mlc.search_runs([run.info.experiment_id])
            history = {k: len(mlc.get_metric_history(trained, k)) for k in run.data.metrics}
            return run.data.metrics, run.data.params, run.data.tags, history, len(runs), \
                len(mlc.search_model_versions("name = 'seq2seq-de-en'"))

        before = snapshot()
        assert track.run(*args) == trained
        assert snapshot() == before
    finally:
        server.kill()
