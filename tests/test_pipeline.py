"""End to end, for real: `dvc exp run` of all five stages in a temporary git repository, offline,
on an archive built in the official IWSLT layout; MLflow in sqlite and over HTTP; dvc push/pull."""

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import dvc, mlflow_server, run_env, sh
from iwslt_fixtures import build_iwslt_archive

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return build_iwslt_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def data_overrides(archive) -> list[str]:
    """Point the download stage at the built archive (whose MD5 is, of course, not the official one)."""
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    return ["-S", f"data.archive={archive}", "-S", f"data.md5.de-en={md5}"]


def mlflow_runs(uri: str, experiment: str = "seq2seq"):
    from mlflow import MlflowClient

    mlc = MlflowClient(tracking_uri=uri)
    exp = mlc.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} in {uri}"
    return mlc.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.fixture(scope="module")
def smoke_repo(repo_copy, data_overrides) -> Path:
    """The smoke experiment run once in the workspace with `dvc exp run`."""
    dvc("exp", "run", "-S", "experiment=smoke", *data_overrides, cwd=repo_copy)
    return repo_copy


def test_exp_run_reports_metrics_to_dvc(smoke_repo):
    shown = json.loads(dvc("metrics", "show", "--json", cwd=smoke_repo).stdout)
    metrics = {}
    for rev in shown.values():
        for path, content in rev["data"].items():
            metrics[path] = content["data"]
    test = metrics["data/metrics/test.json"]
    assert 0 <= test["bleu"] <= 100 and test["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert "chrf" in test and "ter" in test
    prepare = metrics["data/metrics/prepare.json"]
    assert prepare["test"] > 0 and prepare["train"] > prepare["valid"] > 0
    assert metrics["data/metrics/train.json"]["epochs"] == 2
    hyps = (smoke_repo / "data/evaluate/hyps.txt").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == prepare["test"]
    assert (smoke_repo / "data/train/checkpoints/best.ckpt").exists()
    assert (smoke_repo / "data/train/checkpoints/last.ckpt").exists()
    history = (smoke_repo / "data/train/history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 3


def test_bleu_is_scored_on_detokenized_hypotheses_against_raw_references(smoke_repo):
    import sacrebleu

    hyps = (smoke_repo / "data/evaluate/hyps.txt").read_text(encoding="utf-8").splitlines()
    refs = (smoke_repo / "data/prepared/test.en").read_text(encoding="utf-8").splitlines()
    assert not any("▁" in h for h in hyps), "hypotheses still hold SentencePiece pieces"
    test = json.loads((smoke_repo / "data/metrics/test.json").read_text())
    assert test["bleu"] == pytest.approx(round(sacrebleu.corpus_bleu(hyps, [refs]).score, 4))
    assert test["chrf"] == pytest.approx(round(sacrebleu.corpus_chrf(hyps, [refs]).score, 4))


def test_learning_curves_are_dvc_plots(smoke_repo):
    plots = json.loads(dvc("plots", "show", "--json", cwd=smoke_repo).stdout)
    assert not plots.get("errors"), plots.get("errors")
    bleu = plots["data"]["Validation BLEU"][0]["content"]["data"]["values"]
    assert [row["epoch"] for row in bleu] == ["1", "2"]
    images = {name for name in plots["data"] if name.endswith(".png")}
    assert set(plots["data"]) - images == {"Learning curves (loss)", "Validation BLEU"}
    assert images == {f"data/train/attention/sentence_{i}.png" for i in range(3)}, images
    png = (smoke_repo / "data/train/attention/sentence_0.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_mlflow_sqlite_holds_the_run(smoke_repo):
    runs = mlflow_runs(f"sqlite:///{smoke_repo / 'mlflow.db'}")
    assert len(runs) == 1
    run = runs[0]
    test = json.loads((smoke_repo / "data/metrics/test.json").read_text())
    assert run.data.metrics["test_bleu"] == pytest.approx(test["bleu"])
    assert run.data.tags["test_bleu_signature"] == test["bleu_signature"]
    assert run.data.params["model.hidden_size"] == "128"  # the smoke overlay, resolved
    assert run.data.params["data.archive"].endswith(".tgz")
    assert "valid_bleu" in run.data.metrics and "train_loss_epoch" in run.data.metrics
    assert run.data.tags["dvc.exp_name"] and len(run.data.tags["git.commit"]) == 40
    run_file = json.loads((smoke_repo / "data/train/mlflow_run.json").read_text())
    assert run_file["run_id"] == run.info.run_id
    from mlflow import MlflowClient

    artifacts = {a.path for d in ("train", "evaluate") for a in MlflowClient(f"sqlite:///{smoke_repo / 'mlflow.db'}").list_artifacts(run.info.run_id, d)}
    assert {"train/params.yaml", "train/learning_curves.png", "train/src.model", "evaluate/hyps.txt"} <= artifacts
    maps = MlflowClient(f"sqlite:///{smoke_repo / 'mlflow.db'}").list_artifacts(run.info.run_id, "attention/epoch_002")
    assert {a.path for a in maps} == {f"attention/epoch_002/sentence_{i}.png" for i in range(3)}


def test_queued_experiment_shows_up_and_logs_to_the_same_store(smoke_repo, data_overrides):
    """`dvc exp run --queue` + `dvc queue start` run in a temporary copy under .dvc/tmp; the run
    must land in the repository's own mlflow.db, not in a store that vanishes with the copy."""
    dvc("exp", "run", "--queue", "-S", "experiment=smoke", *data_overrides, "-S", "decode.beam_size=1",
        "-S", "trainer.average_last=2", "-S", "decode.checkpoint=averaged", cwd=smoke_repo)
    dvc("queue", "start", cwd=smoke_repo)
    deadline = time.time() + 600
    while "Success" not in (status := dvc("queue", "status", cwd=smoke_repo).stdout):
        failed = [line.split()[0] for line in status.splitlines() if "Failed" in line]
        assert not failed, dvc("queue", "logs", failed[0], cwd=smoke_repo, check=False).stdout
        assert time.time() < deadline, status
        time.sleep(3)
    shown = json.loads(dvc("exp", "show", "--json", cwd=smoke_repo).stdout)
    beams = []
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                beams.append(rev["data"]["params"]["params.yaml"]["data"]["decode"]["beam_size"])
    assert sorted(beams) == [1, 2], beams
    runs = mlflow_runs(f"sqlite:///{smoke_repo / 'mlflow.db'}")
    assert len(runs) == 2
    assert runs[1].data.params["decode.beam_size"] == "1" and "test_bleu" in runs[1].data.metrics
    assert runs[1].data.tags["test_checkpoint"] == "averaged"
    assert not list((smoke_repo / ".dvc/tmp").rglob("mlflow.db")), "a temporary workspace kept its own store"


def test_translate_cli_uses_the_trained_model(smoke_repo):
    out = sh([sys.executable, "-m", "seq2seq.translate", "--beam", "2", "ein Satz .", "noch ein Satz ."], cwd=smoke_repo)
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all("▁" not in line for line in lines)
    proc = subprocess.run([sys.executable, "-m", "seq2seq.translate", "--beam", "1"], cwd=smoke_repo, env=run_env(),
                          input="ein Satz .\n", capture_output=True, text=True, check=True)
    assert len(proc.stdout.splitlines()) == 1
    nbest = sh([sys.executable, "-m", "seq2seq.translate", "--beam", "3", "--n-best", "3", "ein Satz ."], cwd=smoke_repo)
    scores = [float(line.split("\t")[0]) for line in nbest.stdout.splitlines()]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_dvc_push_pull_round_trip(smoke_repo, tmp_path):
    remote = tmp_path / "remote"
    dvc("remote", "add", "--local", "-f", "-d", "testremote", str(remote), cwd=smoke_repo)
    dvc("push", cwd=smoke_repo)
    ckpt = smoke_repo / "data/train/checkpoints/best.ckpt"
    before = ckpt.read_bytes()
    sh(["rm", "-rf", ".dvc/cache", "data/train/checkpoints", "data/prepared", "data/tokenizer"], cwd=smoke_repo)
    dvc("pull", cwd=smoke_repo)
    assert ckpt.read_bytes() == before
    assert (smoke_repo / "data/tokenizer/src.model").exists()
    status = dvc("status", cwd=smoke_repo).stdout
    assert "changed" not in status, status


def test_mlflow_over_http(smoke_repo, tmp_path):
    with mlflow_server(tmp_path) as server:
        dvc("repro", "--force", "--downstream", "train", cwd=smoke_repo, env=run_env(MLFLOW_TRACKING_URI=server.uri))
        runs = mlflow_runs(server.uri)
    assert len(runs) == 1
    test = json.loads((smoke_repo / "data/metrics/test.json").read_text())
    assert runs[0].data.metrics["test_bleu"] == pytest.approx(test["bleu"])
    assert runs[0].data.params["trainer.lightning.max_epochs"] == "2"
