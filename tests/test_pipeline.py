"""End to end, for real: `dvc exp run` of all five stages in a temporary git repository, offline,
on an archive built in the official IWSLT layout; MLflow in sqlite and over HTTP; dvc push/pull, to a
folder and to an S3-protocol server on loopback (moto)."""

import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from iwslt_fixtures import build_iwslt_archive
from mlflow import MlflowClient

from conftest import dvc, free_port, mlflow_server, run_env, sh

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
    """The smoke experiment run once in the workspace with `dvc exp run`; what it printed (stdout, as
    in a log file: not a terminal) is in ../smoke-exp-run.log."""
    proc = dvc("exp", "run", "-S", "experiment=smoke", *data_overrides, cwd=repo_copy)
    (repo_copy.parent / "smoke-exp-run.log").write_text(proc.stdout + proc.stderr)
    return repo_copy


def test_a_run_prints_progress_lines_and_no_noise(smoke_repo):
    """In a log file: the model's size, one progress line an epoch counted from 1, no progress bar
    (carriage returns), no table of FLOPs that reads 0, no deprecation warning from Lightning's
    internals, no advertisement."""
    log = (smoke_repo.parent / "smoke-exp-run.log").read_bytes().decode()  # as written: read_text() would turn \r into \n
    assert "model: Seq2Seq, " in log and " parameters" in log
    assert "epoch 1/2 done  step " in log and "epoch 2/2 done  step " in log
    assert re.search(r"^decode: (\d+)/\1 batch done, \d+:\d\d$", log, re.M), log[-2000:]  # the evaluate stage's
    for noise in ("\r", "━", "FLOPs", "LeafSpec", "litlogger", "Epoch 0"):
        assert noise not in log, noise


def test_exp_run_reports_metrics_to_dvc(smoke_repo):
    shown = json.loads(dvc("metrics", "show", "--json", cwd=smoke_repo).stdout)
    metrics = {}
    for rev in shown.values():
        for path, content in rev["data"].items():
            metrics[path] = content["data"]
    test = metrics["metrics/test.json"]
    assert 0 <= test["bleu"] <= 100 and test["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert "chrf" in test and "ter" in test
    prepare = metrics["metrics/prepare.json"]
    assert prepare["test"] > 0 and prepare["train"] > prepare["valid"] > 0
    assert metrics["metrics/train.json"]["epochs"] == 2
    hyps = (smoke_repo / "data/evaluate/hyps.txt").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == prepare["test"]
    assert (smoke_repo / "data/train/checkpoints/best.ckpt").exists()
    assert (smoke_repo / "data/train/checkpoints/last.ckpt").exists()
    history = (smoke_repo / "plots/history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 3


def test_bleu_is_scored_on_detokenized_hypotheses_against_raw_references(smoke_repo):
    import sacrebleu

    hyps = (smoke_repo / "data/evaluate/hyps.txt").read_text(encoding="utf-8").splitlines()
    refs = (smoke_repo / "data/prepared/test.en").read_text(encoding="utf-8").splitlines()
    assert not any("▁" in h for h in hyps), "hypotheses still hold SentencePiece pieces"
    test = json.loads((smoke_repo / "metrics/test.json").read_text())
    assert test["bleu"] == pytest.approx(round(sacrebleu.corpus_bleu(hyps, [refs]).score, 4))
    assert test["chrf"] == pytest.approx(round(sacrebleu.corpus_chrf(hyps, [refs]).score, 4))


def test_learning_curves_are_dvc_plots(smoke_repo):
    plots = json.loads(dvc("plots", "show", "--json", cwd=smoke_repo).stdout)
    assert not plots.get("errors"), plots.get("errors")
    bleu = plots["data"]["plots/history.csv"][0]["content"]["data"]["values"]
    assert [row["epoch"] for row in bleu] == ["1", "2"]
    images = {name for name in plots["data"] if name.endswith(".png")}
    assert set(plots["data"]) - images == {"Learning curves (loss)", "plots/history.csv"}
    assert images == {f"data/train/attention/sentence_{i}.png" for i in range(3)}, images
    png = (smoke_repo / "data/train/attention/sentence_0.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    # the page loads nothing from the internet: Vega is inlined (offline machines, clusters)
    dvc("plots", "show", cwd=smoke_repo)
    page = (smoke_repo / "dvc_plots/index.html").read_text(encoding="utf-8")
    assert page.count("vegaEmbed('#") == 2 and "window.vegaEmbed" in page  # two curves, Vega-Embed defined
    assert not re.findall(r"<script[^>]*\bsrc=", page) and "cdn.jsdelivr" not in page


def test_mlflow_sqlite_holds_the_run(smoke_repo):
    runs = mlflow_runs(f"sqlite:///{smoke_repo / 'mlflow.db'}")
    assert len(runs) == 1
    run = runs[0]
    test = json.loads((smoke_repo / "metrics/test.json").read_text())
    assert run.data.metrics["test_bleu"] == pytest.approx(test["bleu"])
    assert run.data.tags["test_bleu_signature"] == test["bleu_signature"]
    assert run.data.metrics["test_bleu_tok_lc"] == pytest.approx(test["bleu_tok_lc"])
    assert run.data.tags["test_bleu_tok_lc_signature"] == test["bleu_tok_lc_signature"]
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


def experiments(repo: Path) -> dict[str, dict]:
    """name → the `data` of each experiment row of `dvc exp show --json` (params, metrics)."""
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    return {rev["name"]: rev["data"] for baseline in shown for exp in baseline.get("experiments") or []
            for rev in exp["revs"]}


def exp_metrics(data: dict) -> dict:
    return data["metrics"]["metrics/test.json"]["data"]


def beam(data: dict) -> int:
    return data["params"]["params.yaml"]["data"]["decode"]["beam_size"]


def runs_by_name(uri: str) -> dict:
    """DVC experiment name → its MLflow run (a run lists every experiment it belongs to)."""
    return {name: r for r in mlflow_runs(uri) for name in r.data.tags["dvc.exp_names"].split()}


@pytest.fixture(scope="module")
def decode_only(smoke_repo, data_overrides) -> dict:
    """A second experiment that only changes a decode param: DVC reuses the trained model."""
    db = f"sqlite:///{smoke_repo / 'mlflow.db'}"
    (first,) = mlflow_runs(db)
    before = {"params": dict(first.data.params), "metrics": dict(first.data.metrics),
              "bleu_history": [m.value for m in MlflowClient(db).get_metric_history(first.info.run_id, "test_bleu")]}
    proc = dvc("exp", "run", "-S", "experiment=smoke", *data_overrides, "-S", "decode.beam_size=1", cwd=smoke_repo)
    assert "Stage 'train' didn't change, skipping" in proc.stdout + proc.stderr
    second = [r for r in mlflow_runs(db) if r.info.run_id != first.info.run_id]
    return {"first": first, "before": before, "db": db, "second": second[0].info.run_id}


def test_decode_only_experiment_gets_a_run_of_its_own(smoke_repo, decode_only):
    runs = mlflow_runs(decode_only["db"])
    assert len(runs) == 2
    first, second = runs
    old = decode_only["before"]
    # the first run is exactly as it was
    assert first.info.run_id == decode_only["first"].info.run_id
    assert dict(first.data.params) == old["params"] and dict(first.data.metrics) == old["metrics"]
    assert [m.value for m in MlflowClient(decode_only["db"]).get_metric_history(first.info.run_id, "test_bleu")] == old["bleu_history"]
    # the second: the new decode params, the training params of the model it used, its own scores
    assert (first.data.params["decode.beam_size"], second.data.params["decode.beam_size"]) == ("2", "1")
    train_keys = {k for k in first.data.params if k.startswith(("model.", "trainer.", "tokenizer.", "data.")) or k == "seed"}
    assert train_keys and {k: second.data.params[k] for k in train_keys} == {k: first.data.params[k] for k in train_keys}
    test = json.loads((smoke_repo / "metrics/test.json").read_text())
    assert second.data.metrics["test_bleu"] == pytest.approx(test["bleu"])
    assert second.data.tags["seq2seq.model_run_id"] == first.info.run_id
    ckpt = hashlib.md5((smoke_repo / "data/train/checkpoints/best.ckpt").read_bytes()).hexdigest()
    assert second.data.tags["seq2seq.checkpoint_md5"] == first.data.tags["seq2seq.checkpoint_md5"] == ckpt
    assert second.data.tags["dvc.exp_name"] != first.data.tags["dvc.exp_name"]
    assert first.info.status == second.info.status == "FINISHED"


def test_dvc_compares_the_two_experiments(smoke_repo, decode_only):
    """Each experiment's commit holds its own metrics and plot data (outside the git-ignored data/):
    dvc exp show, metrics diff and plots diff show both, and exp apply restores one's metrics."""
    exps = experiments(smoke_repo)
    runs = runs_by_name(decode_only["db"])
    assert set(exps) == set(runs) and len(exps) == 2
    for name, data in exps.items():  # every row's numbers are its own run's
        metrics = exp_metrics(data)
        assert metrics["bleu"] == pytest.approx(runs[name].data.metrics["test_bleu"])
        assert metrics["chrf"] == pytest.approx(runs[name].data.metrics["test_chrf"])
        assert metrics["ter"] == pytest.approx(runs[name].data.metrics["test_ter"])
        assert str(beam(data)) == runs[name].data.params["decode.beam_size"]
        assert data["metrics"]["metrics/train.json"]["data"]["epochs"] == 2
    first, second = sorted(exps, key=lambda n: beam(exps[n]), reverse=True)  # beam 2, beam 1
    diff = json.loads(dvc("metrics", "diff", first, second, "--json", cwd=smoke_repo).stdout)["metrics/test.json"]
    for key in ("bleu", "chrf", "ter"):
        assert (diff[key]["old"], diff[key]["new"]) == (exp_metrics(exps[first])[key], exp_metrics(exps[second])[key])
    plots = json.loads(dvc("plots", "diff", first, second, "--json", cwd=smoke_repo).stdout)
    values = plots["data"]["plots/history.csv"][0]["content"]["data"]["values"]
    assert sorted((row["rev"], row["epoch"]) for row in values) == sorted((r, e) for r in (first, second) for e in "12")
    dvc("exp", "apply", first, cwd=smoke_repo)
    applied = json.loads((smoke_repo / "metrics/test.json").read_text())
    assert applied["bleu"] == exp_metrics(exps[first])["bleu"]
    run_file = json.loads((smoke_repo / "data/train/mlflow_run.json").read_text())
    assert run_file["run_id"] == runs[first].info.run_id
    dvc("exp", "apply", second, cwd=smoke_repo)
    assert json.loads((smoke_repo / "metrics/test.json").read_text())["bleu"] == exp_metrics(exps[second])["bleu"]


def store_lines(output: str, store: str) -> dict[str, list[str]]:
    """The run ids a pipeline run's stages name as logged into `store`: {"train": [...], "evaluate": [...]}
    (seq2seq.stages.train prints "mlflow: run <id> in <uri>", seq2seq.stages.track "mlflow: test scores in run <id> of <uri>")."""
    return {"train": re.findall(rf"^mlflow: run (\w+) in {re.escape(store)}$", output, re.M),
            "evaluate": re.findall(rf"^mlflow: test scores in run (\w+) of {re.escape(store)}\b", output, re.M)}


def stop_queue_workers(repo: Path, grace: float = 30.0) -> None:
    """Wait up to `grace` seconds for the queue's workers to exit on their own, then terminate those left."""
    pids = [int(p.read_text()) for p in (repo / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.pid")]
    deadline = time.time() + grace
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            while time.time() < deadline:
                os.kill(pid, 0)  # raises once it is gone
                time.sleep(1)
            os.kill(pid, signal.SIGTERM)


def test_queued_and_temp_experiments_each_land_one_run(smoke_repo, data_overrides, decode_only):
    """`--temp` and `dvc queue start -j 2` run in temporary copies under .dvc/tmp, two at a time:
    every run must land in the repository's own mlflow.db, decode-only ones in runs of their own.
    A repeat of an evaluated experiment (train and evaluate restored from DVC's run cache) is listed
    by `dvc exp show` and found in the run that holds its params and scores, which gains its name."""
    db = decode_only["db"]
    model_run = decode_only["first"].info.run_id
    smoke = ["-S", "experiment=smoke", *data_overrides]
    proc = dvc("exp", "run", "--temp", *smoke, "-S", "decode.beam_size=3", cwd=smoke_repo, check=False)
    # The stages ran in a copy under .dvc/tmp (gone by now), yet logged into the repository's store:
    # they say so themselves, naming it by its absolute path (a store of the copy's would be under .dvc/tmp).
    store = f"sqlite:///{(smoke_repo / 'mlflow.db').resolve()}"
    temp_said = store_lines(proc.stdout + proc.stderr, store)
    assert proc.returncode == 0 and temp_said["evaluate"], (proc.stdout + proc.stderr)[-4000:]
    assert "Stage 'train' is cached - skipping run" in proc.stdout + proc.stderr  # DVC's run cache
    for extra in (["decode.beam_size=4"], ["decode.length_penalty=0.0"], ["decode.beam_size=1"],
                  ["decode.beam_size=1", "trainer.average_last=2", "decode.checkpoint=averaged"]):  # retrains
        dvc("exp", "run", "--queue", *smoke, *[a for e in extra for a in ("-S", e)], cwd=smoke_repo)
    # The workers inherit `queue start`'s stdout: with captured pipes we would wait on them, and with
    # -j 2 one of them can miss its shutdown message and idle forever (a dvc-task race, treeverse/dvc#10427).
    subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", "2"], cwd=smoke_repo, env=run_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=120)
    try:
        deadline = time.time() + 900
        while True:
            status = dvc("queue", "status", cwd=smoke_repo).stdout
            failed = [line.split()[0] for line in status.splitlines() if "Failed" in line]
            assert not failed, dvc("queue", "logs", failed[0], cwd=smoke_repo, check=False).stdout
            if status.count("Success") == 4:
                break
            assert time.time() < deadline, status
            time.sleep(3)
    finally:
        stop_queue_workers(smoke_repo)
    runs = mlflow_runs(db)
    assert len(runs) == 2 + 4, [r.data.tags.get("dvc.exp_name") for r in runs]
    new = {(r.data.params["decode.beam_size"], r.data.params["decode.length_penalty"], r.data.params["decode.checkpoint"]): r
           for r in runs[2:]}
    assert set(new) == {("3", "1.0", "best"), ("4", "1.0", "best"), ("2", "0.0", "best"), ("1", "1.0", "averaged")}
    for key, run in new.items():
        assert "test_bleu" in run.data.metrics and run.info.status == "FINISHED"
        if key[2] == "best":  # decode-only: the model of the first run
            assert run.data.tags["seq2seq.model_run_id"] == model_run
            assert "valid_bleu" not in run.data.metrics
        else:  # trained anew: its own run, its own curves
            assert "seq2seq.model_run_id" not in run.data.tags and "valid_bleu" in run.data.metrics
    exps = experiments(smoke_repo)  # --temp and queued experiments are listed with their own scores
    for run in new.values():
        data = exps[run.data.tags["dvc.exp_name"]]
        assert exp_metrics(data)["bleu"] == pytest.approx(run.data.metrics["test_bleu"])
        assert str(beam(data)) == run.data.params["decode.beam_size"]
    by_name = runs_by_name(db)
    assert set(exps) <= set(by_name), set(exps) - set(by_name)  # every experiment DVC lists has its run
    for name, data in exps.items():
        run = by_name[name]
        assert exp_metrics(data)["bleu"] == pytest.approx(run.data.metrics["test_bleu"]), name
        assert str(beam(data)) == run.data.params["decode.beam_size"], name
    repeat = [n for n in exps if n not in {r.data.tags["dvc.exp_name"] for r in runs}]
    assert len(repeat) == 1 and by_name[repeat[0]].info.run_id == decode_only["second"], repeat
    logged = {new[("3", "1.0", "best")].data.tags["dvc.exp_name"]: temp_said}
    for run in new.values():  # what each queued experiment's stages said, from the queue's log
        name = run.data.tags["dvc.exp_name"]
        if name not in logged:
            logged[name] = store_lines(dvc("queue", "logs", name, cwd=smoke_repo).stdout, store)
    by_run = {r.info.run_id: r for r in new.values()}
    for name, said in logged.items():
        # evaluate logged into a run that the repository's store holds, of this very experiment
        assert [by_run[i].data.tags["dvc.exp_name"] for i in said["evaluate"]] == [name], (name, said)
        # a retrained model's run, created by the train stage in the temporary copy, is that same run
        trained = by_run[said["evaluate"][0]].data.tags.get("seq2seq.model_run_id") is None
        assert said["train"] == (said["evaluate"] if trained else []), (name, said)
        # and its files are the repository's too: artifacts outlive the temporary copy
        artifacts = MlflowClient(db).list_artifacts(said["evaluate"][0], "evaluate")
        assert {Path(a.path).name for a in artifacts} == {"hyps.txt", "test.json"}, (name, artifacts)
        artifact_root = (smoke_repo / "mlartifacts").resolve().as_uri()
        assert by_run[said["evaluate"][0]].info.artifact_uri.startswith(artifact_root), name
    assert len(logged) == 4


def test_translate_cli_uses_the_trained_model(smoke_repo):
    out = sh([sys.executable, "-m", "seq2seq", "translate", "--beam", "2", "ein Satz .", "noch ein Satz ."], cwd=smoke_repo)
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all("▁" not in line for line in lines)
    for beam in ("1", "2"):  # empty in, empty out, in its place
        proc = subprocess.run([sys.executable, "-m", "seq2seq", "translate", "--beam", beam], cwd=smoke_repo, env=run_env(),
                              input="ein Satz .\n\n   \nnoch ein Satz .\n", capture_output=True, text=True, check=True)
        out = proc.stdout.split("\n")
        assert len(out) == 5 and out[1] == out[2] == "" and out[0] and out[3] and out[4] == "", out
    nbest = sh([sys.executable, "-m", "seq2seq", "translate", "--beam", "3", "--n-best", "3", "ein Satz ."], cwd=smoke_repo)
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
    status = json.loads(dvc("status", "--json", cwd=smoke_repo).stdout)
    # the steps that run every time: the parent (none here, so nothing after it reruns) and the MLflow step
    assert status == {"parent": ["always changed"], "track": ["always changed"]}, status


@contextlib.contextmanager
def s3_server():
    """moto's S3-protocol server (ThreadedMotoServer, as dvc-s3's own tests use) on a free loopback
    port; yields its endpoint URL. It keeps its buckets in this process's memory."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws_env(tmp: Path, **keys: str) -> dict:
    """run_env() with AWS credentials in `keys` only: no profile, shared file or instance metadata
    (so that nothing on this machine can stand in for the keys given, or be absent from a test)."""
    env = {k: v for k, v in run_env().items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
               AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1", **keys)
    return env


def cached_objects(repo: Path) -> set[str]:
    """The cache objects (files/md5/xx/yyyy, `.dir` manifests and their files) of every `outs` entry of
    dvc.yaml as dvc.lock records it: what `dvc push` must upload (metrics and plots are uncached)."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    found = set()
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            (md5,) = [o["md5"] for o in lock[name]["outs"] if o["path"] == out]
            found.add(md5)
            if md5.endswith(".dir"):
                manifest = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
                found.update(entry["md5"] for entry in json.loads(manifest.read_text()))
    return {f"files/md5/{md5[:2]}/{md5[2:]}" for md5 in found}


def test_s3_remote_round_trip_from_a_fresh_clone(smoke_repo, tmp_path):
    """Team storage on object storage: a DVC remote `s3://bucket/path` with its `endpointurl` in the
    committed .dvc/config and the keys in the environment only. `dvc push` from this repository (its
    dvc.lock committed) uploads exactly the objects dvc.lock names; a fresh clone of that commit, with
    the same keys in its environment, `dvc pull`s them and `dvc repro` reruns nothing but the
    always-changed track stage; the secret key is in no file of either repository."""
    import boto3

    secret = secrets.token_urlsafe(30)  # made here, so that no file of the checkout holds it
    keys = {"AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(), "AWS_SECRET_ACCESS_KEY": secret}
    env = aws_env(tmp_path, **keys)
    GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    with s3_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **{k.lower(): v for k, v in keys.items()})
        s3.create_bucket(Bucket="seq2seq-team")
        # the team's remote, committed (.dvc/config): where the data lives, never how to log in
        dvc("remote", "add", "-d", "team", "s3://seq2seq-team/dvc", cwd=smoke_repo, env=env)
        dvc("remote", "modify", "team", "endpointurl", endpoint, cwd=smoke_repo, env=env)
        sh(["git", "add", "dvc.lock", "params.yaml", "metrics", "plots", ".dvc/config"], cwd=smoke_repo)
        sh([*GIT, "commit", "-qm", "smoke results; the team's S3 remote"], cwd=smoke_repo)
        # every tracked file as committed (what is untracked is no pipeline state: `dvc plots show`'s page)
        assert sh(["git", "status", "--porcelain", "--untracked-files=no"], cwd=smoke_repo).stdout == ""
        head = sh(["git", "rev-parse", "HEAD"], cwd=smoke_repo).stdout.strip()

        pushed = dvc("push", "-r", "team", cwd=smoke_repo, env=env)  # config.local's default is the folder remote
        listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="seq2seq-team")
                  for o in page.get("Contents", [])]
        expected = cached_objects(smoke_repo)
        assert len(expected) > 10 and sorted(listed) == sorted(f"dvc/{k}" for k in expected), (pushed.stdout, listed)
        assert f"{len(expected)} files pushed" in pushed.stdout, pushed.stdout

        clone = tmp_path / "clone"
        sh(["git", "clone", "-q", str(smoke_repo), str(clone)], cwd=tmp_path)
        assert sh(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip() == head
        assert not (clone / ".dvc/config.local").exists()
        config = (clone / ".dvc/config").read_text()
        assert "url = s3://seq2seq-team/dvc" in config and f"endpointurl = {endpoint}" in config, config
        # the committed config holds no keys: without them in the environment, nothing comes
        keyless = dvc("pull", cwd=clone, env=aws_env(tmp_path), check=False)
        assert keyless.returncode != 0 and "Unable to locate credentials" in keyless.stderr, keyless.stderr[-2000:]
        assert not (clone / "data/train/checkpoints/best.ckpt").exists()
        pulled = dvc("pull", cwd=clone, env=env)
        # the same training, byte for byte, and nothing to rerun but the steps that run every time
        # (always_changed: the parent, which finds none, and the MLflow step)
        for ckpt in ("best.ckpt", "last.ckpt"):
            original = hashlib.md5((smoke_repo / "data/train/checkpoints" / ckpt).read_bytes()).hexdigest()
            assert hashlib.md5((clone / "data/train/checkpoints" / ckpt).read_bytes()).hexdigest() == original, ckpt
        status = json.loads(dvc("status", "--json", cwd=clone, env=env).stdout)
        assert status == {"parent": ["always changed"], "track": ["always changed"]}, status
    # `dvc repro` in the clone, the server gone: the data is all local now, and the MLflow store is
    # the training's (the team's tracking server, in real use), which holds this evaluation already
    repro = dvc("repro", cwd=clone, env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{smoke_repo / 'mlflow.db'}"})
    log = repro.stdout + repro.stderr
    assert re.findall(r"Running stage '(\w+)'", log) == ["parent", "track"], log[-3000:]
    assert "nothing added" in repro.stdout, log[-3000:]
    assert sh(["git", "status", "--porcelain"], cwd=clone).stdout == ""  # dvc.lock as committed
    # credentials reach nothing shared: no file, config or git object of either repository, no output
    for out in (pushed, keyless, pulled, repro):
        assert secret not in out.stdout + out.stderr
    assert places_holding(smoke_repo, secret.encode(), objects="all") == []
    assert places_holding(clone, secret.encode(), objects="all") == []


def test_mlflow_over_http(smoke_repo, tmp_path):
    sqlite_runs = len(mlflow_runs(f"sqlite:///{smoke_repo / 'mlflow.db'}"))
    track = [sys.executable, "-m", "seq2seq.stages.track"]
    with mlflow_server(tmp_path) as server:
        dvc("repro", "--force", "--downstream", "train", cwd=smoke_repo, env=run_env(MLFLOW_TRACKING_URI=server.uri))
        runs = mlflow_runs(server.uri)
        # scores that would go anywhere but the training's store are refused
        wrong = sh(track, cwd=smoke_repo, check=False)
        assert wrong.returncode == 1
        assert server.uri in wrong.stderr and f"sqlite:///{smoke_repo / 'mlflow.db'}" in wrong.stderr, wrong.stderr
        assert wrong.stderr.count("\n") == 1 and "Traceback" not in wrong.stderr
    assert len(runs) == 1
    test = json.loads((smoke_repo / "metrics/test.json").read_text())
    assert runs[0].data.metrics["test_bleu"] == pytest.approx(test["bleu"])
    assert runs[0].data.params["trainer.lightning.max_epochs"] == "2"
    gone = sh(track, cwd=smoke_repo, env=run_env(MLFLOW_TRACKING_URI=server.uri), check=False)  # server stopped
    assert gone.returncode == 1 and "cannot be reached" in gone.stderr and server.uri in gone.stderr, gone.stderr
    assert len(mlflow_runs(f"sqlite:///{smoke_repo / 'mlflow.db'}")) == sqlite_runs  # nothing logged elsewhere


def places_holding(repo: Path, secret: bytes, objects: str = "reachable") -> list[str]:
    """Every file under `repo` (.git's refs and logs, .dvc/cache/runs, .dvc/tmp, mlflow.db,
    mlartifacts/ and the outputs included) whose bytes hold `secret`, and git's objects, decompressed:
    those reachable from any ref (experiments included), or all of them."""
    found = [p.relative_to(repo).as_posix() for p in repo.rglob("*")
             if p.is_file() and not p.is_symlink() and ".git/objects/" not in p.as_posix() and secret in p.read_bytes()]
    if objects == "reachable":
        names = sh(["git", "rev-list", "--objects", "--all", "--reflog"], cwd=repo).stdout.split()
        names = "\n".join(n for n in names if len(n) == 40)
    else:
        names = None
    args = ["git", "cat-file", "--batch"] + ([] if names is not None else ["--batch-all-objects"])
    content = subprocess.run(args, cwd=repo, input=(names or "").encode(), capture_output=True, check=True).stdout
    return found + ([f"{objects} git objects"] if secret in content else [])


def test_credentials_in_params_reach_nothing_shared(smoke_repo, data_overrides):
    """A credential in each place a user might put one: every run stops at the check stage naming
    the key and where credentials go, and afterwards the secret is nowhere in the repository but
    the workspace's params.yaml the user edited."""
    secret = "-".join(["Sh0uld", "N0t", "Leak", "7781"])  # built, so that this file does not hold it
    def experiment_refs() -> set[str]:
        refs = sh(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=smoke_repo).stdout.split()
        return {r for r in refs if not r.startswith("refs/exps/exec/")}

    before = experiment_refs()
    assert before  # the smoke experiment
    attempts = [("data.mirrors", f"data.mirrors=[https://alice:{secret}@corpus.example.org/de-en.tgz]"),
                ("data.archive", f"data.archive='https://bucket.example.org/de-en.tgz?X-Amz-Signature={secret}'"),
                ("mlflow.tracking_uri", f"mlflow.tracking_uri=http://bob:{secret}@127.0.0.1:5000")]
    for key, override in attempts:
        proc = dvc("exp", "run", "-S", "experiment=smoke", *data_overrides, "-S", override, cwd=smoke_repo, check=False)
        log = proc.stdout + proc.stderr
        assert proc.returncode != 0 and f"{key}" in log and "credentials never go into params.yaml" in log, log[-2000:]
        assert "Running stage 'download'" not in log and "Running stage 'train'" not in log
        assert secret not in log
    assert places_holding(smoke_repo, secret.encode()) == ["params.yaml"]
    sh(["git", "checkout", "--", "params.yaml"], cwd=smoke_repo)
    assert places_holding(smoke_repo, secret.encode()) == []
    # DVC stashes the workspace's params.yaml in git's object store as `dvc exp run` starts: what it
    # leaves is unreachable (never pushed or cloned), and git's garbage collection removes it
    sh(["git", "gc", "-q", "--prune=now"], cwd=smoke_repo)
    assert places_holding(smoke_repo, secret.encode(), objects="all") == []
    assert experiment_refs() == before  # no experiment was saved
