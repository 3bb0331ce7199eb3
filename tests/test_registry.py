"""The evaluated model in MLflow, for real: the smoke pipeline in a temporary git repository with a
DVC remote registers its model; `mlflow models serve` answers like the translate command, and
refuses malformed requests and requests over its serving limits, also under load; a fresh clone
gets back from the registered version alone to the version's exact test scores."""

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from iwslt_fixtures import build_iwslt_archive
from mlflow import MlflowClient

from conftest import ROOT, dvc, make_repo_copy, run_env, sh

sys.path.insert(0, str(ROOT / "benchmarks"))
import serve_load  # noqa: E402  (benchmarks/serve_load.py: the server, the requests and their checks)

pytestmark = pytest.mark.slow

NAME = "seq2seq-de-en"
SENTENCES = ["Haus Baum Fluss .", "Licht Fenster Musik Stadt .", "Wasser"]
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> dict:
    """A repository with a committed DVC remote, after `dvc exp run -S experiment=smoke` and `dvc push`."""
    tmp = tmp_path_factory.mktemp("registry")
    archive = build_iwslt_archive(tmp / "archive")
    repo = make_repo_copy((tmp / "origin"))
    dvc("remote", "add", "-d", "team", str(tmp / "remote"), cwd=repo)
    sh([*GIT, "commit", "-qam", "a DVC remote for the team"], cwd=repo)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    dvc("exp", "run", "-S", "experiment=smoke", "-S", f"data.archive={archive}", "-S", f"data.md5.de-en={md5}", cwd=repo)
    dvc("push", cwd=repo)
    db = f"sqlite:///{repo / 'mlflow.db'}"
    # the team's choice, on purpose: version 1 is what they serve (models:/seq2seq-de-en@champion)
    promoted = sh([sys.executable, "-m", "seq2seq", "promote", "1"], cwd=repo).stdout
    return {"repo": repo, "db": db, "mlc": MlflowClient(tracking_uri=db), "tmp": tmp, "promoted": promoted}


def test_evaluate_registers_the_model_with_its_lineage(origin):
    repo, mlc = origin["repo"], origin["mlc"]
    version = mlc.get_model_version(NAME, "1")
    trained = json.loads((repo / "data/train/mlflow_run.json").read_text())
    assert str(version.version) == "1" and version.run_id == trained["run_id"]  # the training's own run, evaluated
    test = json.loads((repo / "metrics/test.json").read_text())
    assert float(version.tags["test_bleu"]) == test["bleu"] and float(version.tags["test_chrf"]) == test["chrf"]
    run = mlc.get_run(version.run_id)
    assert run.data.tags["seq2seq.registered_model"] == f"models:/{NAME}/1"
    head = sh(["git", "rev-parse", "HEAD"], cwd=repo).stdout.strip()
    for tags in (version.tags, run.data.tags):
        assert tags["git.commit"] == head and tags["git.dirty"] == "false"
        assert tags["dvc.exp_name"] == run.data.tags["mlflow.runName"] and tags["dvc.exp_name"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for stage, path in (("download", "data/raw"), ("prepare", "data/prepared"), ("tokenizer", "data/tokenizer"),
                        ("train", "data/train/checkpoints")):
        (out,) = [o for o in lock[stage]["outs"] if o["path"] == path]
        assert version.tags[f"dvc.md5.{path}"] == out["md5"], path
    with_files = {a.path for a in mlc.list_artifacts(version.run_id, "lineage")}
    assert with_files == {"lineage/dvc.lock", "lineage/params.yaml", "lineage/metrics", "lineage/plots"}
    assert {a.path for a in mlc.list_artifacts(version.run_id, "lineage/metrics")} == {
        "lineage/metrics/prepare.json", "lineage/metrics/train.json", "lineage/metrics/test.json"}
    logged_lock = yaml.safe_load(Path(mlc.download_artifacts(version.run_id, "lineage/dvc.lock", str(origin["tmp"]))).read_text())
    assert logged_lock["stages"]["train"] == lock["train"] and logged_lock["stages"]["evaluate"] == lock["evaluate"]
    assert "track" not in logged_lock["stages"]  # the stage logging it: its entry was the previous run's
    logged = Path(mlc.download_artifacts(version.run_id, "lineage/params.yaml", str(origin["tmp"])))
    assert logged.read_text() == (repo / "params.yaml").read_text()


def test_the_model_is_a_logged_model_of_its_run_with_its_test_scores(origin):
    """MLflow 3: the run's LoggedModel (the UI's "Logged models" and Models tab), found by its source
    run and by its test score, holds the model's files (the run holds none), the run's params and the
    test scores; the registered version was made from it."""
    from mlflow.entities import LoggedModelStatus

    mlc, repo = origin["mlc"], origin["repo"]
    version = mlc.get_model_version(NAME, "1")
    run = mlc.get_run(version.run_id)
    test = json.loads((repo / "metrics/test.json").read_text())
    (model,) = mlc.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
    assert model.name == "model" and model.status == LoggedModelStatus.READY and model.model_type == "seq2seq"
    assert version.source == f"models:/{model.model_id}"
    assert json.loads(model.tags["mlflow.modelVersions"]) == [{"name": NAME, "version": 1}]  # the model's page lists it
    assert [o.model_id for o in run.outputs.model_outputs] == [model.model_id]
    scores = {m.key: m.value for m in model.metrics}
    assert scores == {f"test_{k}": test[k] for k in ("bleu", "chrf", "ter", "bleu_tok_lc")}
    assert {m.run_id for m in model.metrics} == {run.info.run_id}
    above = mlc.search_logged_models([run.info.experiment_id], filter_string=f"metrics.test_bleu >= {test['bleu']}")
    below = mlc.search_logged_models([run.info.experiment_id], filter_string=f"metrics.test_bleu > {test['bleu']}")
    assert [m.model_id for m in above] == [model.model_id] and list(below) == []
    assert model.params == run.data.params and model.params["decode.beam_size"] == "2"
    files = {a.path for a in mlc.list_logged_model_artifacts(model.model_id)}
    assert {"MLmodel", "pyfunc.py", "artifacts", "code", "requirements.txt"} <= files, files
    assert "model" not in {a.path for a in mlc.list_artifacts(run.info.run_id)}
    import mlflow.artifacts

    mlmodel = yaml.safe_load(Path(mlflow.artifacts.download_artifacts(f"{model.artifact_location}/MLmodel",
                                                                      dst_path=str(origin["tmp"] / "mlmodel"))).read_text())
    assert mlmodel["model_id"] == model.model_id and mlmodel["run_id"] == run.info.run_id


def test_promote_moves_the_alias_on_purpose_and_names_what_is_wrong(origin):
    mlc, repo, env = origin["mlc"], origin["repo"], run_env(MLFLOW_TRACKING_URI=origin["db"])
    assert f"models:/{NAME}@champion -> version 1 in sqlite:///" in origin["promoted"]
    assert str(mlc.get_model_version_by_alias(NAME, "champion").version) == "1"
    again = sh([sys.executable, "-m", "seq2seq", "promote", "1", "--alias", "staging"], cwd=repo, env=env)
    assert f"models:/{NAME}@staging -> version 1 in" in again.stdout and "(was" not in again.stdout
    moved = sh([sys.executable, "-m", "seq2seq", "promote", "1", "--alias", "staging"], cwd=repo, env=env)
    assert "(was version 1)" in moved.stdout
    assert set(mlc.get_registered_model(NAME).aliases) == {"champion", "staging"}
    for args, says in ((["99"], f"models:/{NAME}/99: not in"), (["1", "--name", "nope"], "models:/nope/1: not in")):
        bad = sh([sys.executable, "-m", "seq2seq", "promote", *args], cwd=repo, env=env, check=False)
        assert bad.returncode == 1 and says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert str(mlc.get_model_version_by_alias(NAME, "champion").version) == "1"
    mlc.delete_registered_model_alias(NAME, "staging")


def test_pyfunc_model_loads_without_the_training_stack(origin):
    """mlflow.pyfunc.load_model in a clean process, away from the repository: the bundled code is
    what runs, Lightning and Hydra stay unloaded, and the output is the translate command's."""
    code = ("import sys, json, mlflow, pandas as pd\n"
            f"m = mlflow.pyfunc.load_model('models:/{NAME}/1')\n"
            f"out = m.predict(pd.DataFrame({{'source': {SENTENCES!r}}}), params={{'beam_size': 2}})\n"
            "import seq2seq\n"
            "print(json.dumps({'translations': out['translation'].tolist(), 'package': seq2seq.__file__,\n"
            "  'loaded': sorted(m for m in ('lightning', 'pytorch_lightning', 'hydra', 'omegaconf') if m in sys.modules)}))\n")
    proc = sh([sys.executable, "-c", code], cwd=origin["tmp"], env=run_env(MLFLOW_TRACKING_URI=origin["db"]))
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["loaded"] == [] and "/code/seq2seq/" in got["package"], got
    assert got["translations"] == translate_cli(origin["repo"], SENTENCES, "--beam", "2")


def translate_cli(repo: Path, sentences: list[str], *args: str) -> list[str]:
    """The translate command's lines, with the smoke recipe's length limits (the served defaults)."""
    proc = subprocess.run([sys.executable, "-m", "seq2seq", "translate", "--max-len-a", "0", "--max-len-b", "30", *args], cwd=repo, env=run_env(),
                          input="".join(s + "\n" for s in sentences), capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


@pytest.fixture(scope="module")
def served(origin):
    """`mlflow models serve -m models:/seq2seq-de-en@champion --env-manager local` on a free port, default limits."""
    server = serve_load.ModelServer(f"models:/{NAME}@champion", origin["tmp"] / "serve.log", cwd=origin["tmp"],
                                    env=run_env(MLFLOW_TRACKING_URI=origin["db"]))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def invoke(url: str, body) -> requests.Response:
    return requests.post(f"{url}/invocations", json=body, timeout=120)


def test_served_model_answers_like_the_translate_command(origin, served):
    split = {"dataframe_split": {"columns": ["source"], "data": [[s] for s in SENTENCES]}}
    for args, params in (((), {}), (("--beam", "1"), {"beam_size": 1}), (("--beam", "4", "--length-penalty", "0"),
                                                                            {"beam_size": 4, "length_penalty": 0.0})):
        answer = invoke(served.url, {**split, "params": params})
        assert answer.status_code == 200, answer.text
        got = [p["translation"] for p in answer.json()["predictions"]]
        assert got == translate_cli(origin["repo"], SENTENCES, *(args or ("--beam", "2"))), params  # smoke: beam 2
    nbest = invoke(served.url, {"inputs": {"source": SENTENCES[:1]}, "params": {"beam_size": 3, "n_best": 3}}).json()
    cli = [line.split("\t") for line in translate_cli(origin["repo"], SENTENCES[:1], "--beam", "3", "--n-best", "3")]
    assert nbest["predictions"][0]["nbest"] == [text for _, text in cli]
    assert [round(s, 4) for s in nbest["predictions"][0]["nbest_scores"]] == [float(score) for score, _ in cli]


@pytest.mark.parametrize("body, says", [
    ({"dataframe_split": {"columns": ["text"], "data": [["Haus ."]]}}, "missing inputs ['source']"),
    ({"dataframe_split": {"columns": ["source"], "data": []}}, "no sentences"),
    ({"inputs": {"source": []}}, "no sentences"),
    ({"dataframe_split": {"columns": ["source"], "data": [["Haus ."], [3]]}}, "row 1 of 'source' is 3 (a number), not a string"),
    ({"inputs": {"source": ["Haus ."]}, "params": {"beam_size": 0}}, "beam_size=0: must be at least 1"),
    ({"inputs": {"source": ["Haus ."]}, "params": {"beam_size": 2, "n_best": 3}}, "n_best=3: must not exceed beam_size=2"),
    ({"inputs": {"source": ["Haus ."]}, "params": {"max_len_b": -1}}, "must not be negative"),
])
def test_served_model_refuses_bad_requests_and_keeps_serving(served, body, says):
    answer = invoke(served.url, body)
    assert 400 <= answer.status_code < 500 and says in answer.json()["message"], answer.text
    assert invoke(served.url, {"inputs": {"source": ["Haus ."]}}).status_code == 200


@pytest.mark.parametrize("body, says", serve_load.MALFORMED + serve_load.ABUSIVE,
                         ids=[f"malformed{i}" for i in range(len(serve_load.MALFORMED))]
                         + [f"abusive{i}" for i in range(len(serve_load.ABUSIVE))])
def test_served_model_refuses_non_strings_and_requests_over_its_limits(served, body, says):
    """MLflow converts a string column's values to strings before the model sees them (42 -> "42");
    the signature declares the column Any so that these reach the model as sent. Each request over
    a serving limit is refused before anything is decoded, naming the limit's variable."""
    start = time.perf_counter()
    answer = invoke(served.url, body)
    assert answer.status_code == 400 and all(part in answer.json()["message"] for part in says), answer.text[-600:]
    assert time.perf_counter() - start < 10  # refused up front: decoded, any of these would take minutes


def test_served_model_under_load(served):
    """4 clients, 6 s of good requests only and 6 s of the mix (80% good, 10% malformed, 10% over a
    limit), alternating: every good request gets one translation a sentence, every other one a 400
    naming its row or limit, nothing else (no 5xx, no dropped connection); the mix leaves the good
    requests' p99 within 2x; a few seconds after the last answer the server is idle."""
    answers = serve_load.alternate(served.url, clients=4, seconds=6, slices=3, timeout=30)
    result = serve_load.summary(answers, seconds=6)
    assert result["problems"] == [], result
    kinds = {a.kind for a in answers if a.phase == "mix"}
    assert kinds == {"good", "malformed", "abusive"} and len(answers) > 40, result
    assert result["mix"]["good_p99_s"] <= 2 * result["good-only"]["good_p99_s"], result
    time.sleep(2)
    cpu = served.cpu_seconds()
    time.sleep(2)
    assert served.cpu_seconds() - cpu < 0.5, "the server still works after the last answer"
    start = time.perf_counter()
    assert invoke(served.url, {"inputs": {"source": ["Haus"]}}).status_code == 200
    assert time.perf_counter() - start < 2


def test_serving_limits_come_from_the_environment(origin, monkeypatch):
    """SEQ2SEQ_SERVE_* are read when the model loads: a raised limit admits what the default
    refuses, a limit below the model's own settings fails the load, a bad value is named."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from seq2seq.inference.pyfunc import Limits

    monkeypatch.setenv("MLFLOW_TRACKING_URI", origin["db"])
    rows = pd.DataFrame({"source": ["Haus ."] * (Limits().max_rows + 1)})
    with pytest.raises(MlflowException, match="over this server's limit of .*SEQ2SEQ_SERVE_MAX_ROWS"):
        mlflow.pyfunc.load_model(f"models:/{NAME}/1").predict(rows)
    monkeypatch.setenv("SEQ2SEQ_SERVE_MAX_ROWS", str(Limits().max_rows + 1))
    assert len(mlflow.pyfunc.load_model(f"models:/{NAME}/1").predict(rows)) == len(rows)
    monkeypatch.setenv("SEQ2SEQ_SERVE_MAX_BEAM", "1")  # the smoke recipe decodes with beam 2
    with pytest.raises(MlflowException, match="the model's default decoding settings: parameter beam_size=2: "
                                              "over this server's limit of 1 .SEQ2SEQ_SERVE_MAX_BEAM"):
        mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    monkeypatch.setenv("SEQ2SEQ_SERVE_MAX_BEAM", "many")
    with pytest.raises(ValueError, match="SEQ2SEQ_SERVE_MAX_BEAM='many': must be a positive integer"):
        mlflow.pyfunc.load_model(f"models:/{NAME}/1")


def test_a_registered_version_reproduces_from_a_fresh_clone(origin):
    """From `models:/seq2seq-de-en@champion` alone: clone, restore (git checkout, params.yaml, dvc.lock),
    `dvc pull --with-deps train` from the team remote, `dvc repro`: the model comes from the remote (no training) and
    the evaluation gives exactly the version's test scores and hypotheses."""
    mlc, version = origin["mlc"], origin["mlc"].get_model_version(NAME, "1")
    clone = origin["tmp"] / "clone"
    sh(["git", "clone", "-q", str(origin["repo"]), str(clone)], cwd=origin["tmp"])
    env = run_env(MLFLOW_TRACKING_URI=origin["db"])
    restored = sh([sys.executable, "-m", "seq2seq", "restore", f"models:/{NAME}@champion"], cwd=clone, env=env)
    assert version.tags["git.commit"] in restored.stdout
    assert sh(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip() == version.tags["git.commit"]
    dvc("pull", "--with-deps", "train", cwd=clone, env=env)
    runs = len(mlc.search_runs([mlc.get_experiment_by_name("seq2seq").experiment_id]))
    repro = dvc("repro", cwd=clone, env=env)
    assert "this evaluation is in run" in repro.stdout and "nothing added" in repro.stdout  # the track stage
    assert len(mlc.search_runs([mlc.get_experiment_by_name("seq2seq").experiment_id])) == runs
    log = repro.stdout + repro.stderr
    assert "Running stage 'train'" not in log and "Running stage 'evaluate'" in log, log[-3000:]
    test = json.loads((clone / "metrics/test.json").read_text())
    run = mlc.get_run(version.run_id)
    for name in ("bleu", "chrf", "ter", "bleu_tok_lc"):
        assert test[name] == run.data.metrics[f"test_{name}"] == float(version.tags[f"test_{name}"]), name
    hyps = Path(mlc.download_artifacts(version.run_id, "evaluate/hyps.txt", str(origin["tmp"] / "v1")))
    assert (clone / "data/evaluate/hyps.txt").read_text() == hyps.read_text()
    ckpt = hashlib.md5((clone / "data/train/checkpoints/best.ckpt").read_bytes()).hexdigest()
    assert ckpt == run.data.tags["seq2seq.checkpoint_md5"]


def test_a_run_fine_tuned_from_the_champion_starts_where_the_parent_ended(origin):
    """`dvc exp run -S trainer.init_from=models:/seq2seq-de-en@champion` in a fresh clone: the
    parent's SentencePiece models byte for byte, its weights (the first validation scores what the
    parent's best checkpoint scored on the same data), the parent in dvc.lock and in the lineage of
    the run and its version; a model configuration that differs is refused, naming the key."""
    mlc, env = origin["mlc"], run_env(MLFLOW_TRACKING_URI=origin["db"])
    clone = origin["tmp"] / "child"
    sh(["git", "clone", "-q", str(origin["repo"]), str(clone)], cwd=origin["tmp"])
    parent = mlc.get_model_version_by_alias(NAME, "champion")
    where = mlc.get_model_version_download_uri(NAME, str(parent.version))
    parent_files = Path(mlflow_download(where, origin["tmp"] / "parent-files", origin["db"]))
    smoke = json.loads((origin["repo"] / "metrics/train.json").read_text())  # the parent's training
    archive = yaml.safe_load((origin["repo"] / "params.yaml").read_text())["data"]
    data = ["-S", f"data.archive={archive['archive']}", "-S", f"data.md5.de-en={archive['md5']['de-en']}"]
    dvc("exp", "run", "-S", "experiment=smoke", *data, "-S", f"trainer.init_from=models:/{NAME}@champion",
        "-S", "trainer.lightning.max_epochs=1", cwd=clone, env=env)
    for side in ("src", "tgt"):
        assert (clone / f"data/tokenizer/{side}.model").read_bytes() == \
            (parent_files / f"artifacts/tokenizer/{side}.model").read_bytes(), side
    child = json.loads((clone / "metrics/train.json").read_text())
    assert child["init_valid_bleu"] == smoke["best_valid_bleu"] > 0
    said = json.loads((clone / "data/parent/parent.json").read_text())
    assert said["version"] == f"models:/{NAME}/{parent.version}" and said["run_id"] == parent.run_id
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    (out,) = lock["parent"]["outs"]
    assert {d["path"] for d in lock["train"]["deps"]} >= {"data/parent"} and out["path"] == "data/parent"
    run_id = json.loads((clone / "data/train/mlflow_run.json").read_text())["run_id"]
    tag = f"models:/{NAME}/{parent.version} (run {parent.run_id}), weights MD5 {said['checkpoint_md5']}"
    assert mlc.get_run(run_id).data.tags["seq2seq.init_from"] == tag
    (version,) = mlc.search_model_versions(f"name = '{NAME}' and run_id = '{run_id}'")
    assert version.tags["seq2seq.init_from"] == tag
    refused = dvc("exp", "run", "-S", "experiment=smoke", *data, "-S", f"trainer.init_from=models:/{NAME}@champion",
                  "-S", "model.hidden_size=64", cwd=clone, env=env, check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "model.hidden_size: 128 in the parent, 64 here" in said, said[-3000:]


def mlflow_download(uri: str, dest: Path, tracking_uri: str) -> str:
    import mlflow.artifacts

    return mlflow.artifacts.download_artifacts(uri, dst_path=str(dest), tracking_uri=tracking_uri)


def test_restore_names_what_is_wrong(origin, tmp_path):
    bad = sh([sys.executable, "-m", "seq2seq", "restore", f"models:/{NAME}/99"], cwd=origin["repo"],
             env=run_env(MLFLOW_TRACKING_URI=origin["db"]), check=False)
    assert bad.returncode == 1 and f"models:/{NAME}/99: not in" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    form = sh([sys.executable, "-m", "seq2seq", "restore", "runs:/abc/model"], cwd=origin["repo"],
              env=run_env(MLFLOW_TRACKING_URI=origin["db"]), check=False)
    assert form.returncode == 1 and "expected models:/<name>/<version> or models:/<name>@<alias>" in form.stderr, form.stderr
    alias = sh([sys.executable, "-m", "seq2seq", "restore", f"models:/{NAME}@nobody"], cwd=origin["repo"],
               env=run_env(MLFLOW_TRACKING_URI=origin["db"]), check=False)
    assert alias.returncode == 1 and f"models:/{NAME}@nobody: not in" in alias.stderr, alias.stderr


def test_restore_refuses_a_dirty_tree_and_says_how_to_get_back(origin):
    clone = origin["tmp"] / "dirty-clone"
    sh(["git", "clone", "-q", str(origin["repo"]), str(clone)], cwd=origin["tmp"])
    head = sh(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()
    (clone / "README.md").write_text("my unsaved notes\n")
    env = run_env(MLFLOW_TRACKING_URI=origin["db"])
    refused = sh([sys.executable, "-m", "seq2seq", "restore", f"models:/{NAME}/1"], cwd=clone, env=env, check=False)
    assert refused.returncode == 1 and "uncommitted changes (README.md)" in refused.stderr and "--force" in refused.stderr
    assert (clone / "README.md").read_text() == "my unsaved notes\n"
    assert sh(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip() == head
    forced = sh([sys.executable, "-m", "seq2seq", "restore", "--force", f"models:/{NAME}/1"], cwd=clone, env=env)
    assert "To go back: `git checkout --force main`" in forced.stdout
    sh(["git", "checkout", "--force", "main"], cwd=clone)
    assert sh(["git", "symbolic-ref", "--short", "HEAD"], cwd=clone).stdout.strip() == "main"


def test_restore_refuses_a_logged_params_file_that_names_code(origin, tmp_path):
    """A version whose lineage/params.yaml (from the store: anyone with write access) names a call
    is refused before anything is checked out or written, and the call never happens."""
    mlc, repo = origin["mlc"], origin["repo"]
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["model"]["hidden_size"] = {"_target_": "shutil.copyfile", "_args_": [str(repo / "params.yaml"), str(victim)]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = mlc.create_run(mlc.get_experiment_by_name("seq2seq").experiment_id)
    mlc.log_artifact(run.info.run_id, str(tmp_path / "params.yaml"), artifact_path="lineage")
    head = sh(["git", "rev-parse", "HEAD"], cwd=repo).stdout.strip()
    version = mlc.create_model_version(NAME, source=f"{run.info.artifact_uri}/lineage", run_id=run.info.run_id,
                                       tags={"git.commit": head})
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(repo), str(clone)], cwd=tmp_path)
    before = (clone / "params.yaml").read_text()
    refused = sh([sys.executable, "-m", "seq2seq", "restore", f"models:/{NAME}/{version.version}"], cwd=clone,
                 env=run_env(MLFLOW_TRACKING_URI=origin["db"]), check=False)
    assert refused.returncode == 1 and f"models:/{NAME}/{version.version}: lineage/params.yaml: model.hidden_size._" \
        in refused.stderr, refused.stderr
    assert victim.read_text() == "untouched" and (clone / "params.yaml").read_text() == before
    mlc.delete_model_version(NAME, version.version)
