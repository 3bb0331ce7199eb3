"""MLflow: one run per pipeline run. The train stage creates it and the track stage logs the
evaluation into it; an evaluation of a model already evaluated (DVC skipped training, e.g.
`dvc exp run -S decode.beam_size=10`) gets a run of its own (see seq2seq.stages.track).

Tracking URI: `mlflow.tracking_uri` in params, else $MLFLOW_TRACKING_URI, else
`sqlite:///<repo root>/mlflow.db`. The repo root is $DVC_ROOT when DVC runs the stage: for
`dvc exp run --queue` / `--temp` it names the real repository, not the temporary copy, so
queued experiments log into the same store as runs in the workspace.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from filelock import FileLock
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf

from seq2seq.config.params import repo_root
from seq2seq.errors import Seq2SeqError
from seq2seq.io import redact

log = logging.getLogger("seq2seq.tracking.runs")

# MLflow's defaults retry an unreachable server for minutes per call; a training run should not
# stall that long on a lost tracking server. Set these variables yourself to override.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def tracking_uri(cfg) -> str:
    return cfg.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def store_lock(uri: str) -> FileLock:
    """A lock that one process at a time holds while it creates a store or picks a run in it:
    DVC's queue workers (`dvc queue start -j N`) run stages at the same time, and two processes
    creating one sqlite store together fail (`table _alembic_tmp_... already exists`). For a sqlite
    store the lock file sits beside it, for a server in the repository root. Re-entrant in a process."""
    if uri.startswith("sqlite:///"):
        return _lock(str(Path(uri.removeprefix("sqlite:///")).resolve()) + ".lock")
    return _lock(str(repo_root() / ".mlflow.lock"))


@functools.lru_cache(maxsize=None)
def _lock(path: str) -> FileLock:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path)


def open_store(uri: str):
    """A client of `uri` whose store exists (tables created or migrated under store_lock).
    Seq2SeqError naming the (redacted) URI when it cannot be reached or used."""
    check_reachable(uri)
    try:
        with store_lock(uri):
            mlc = client(uri)
            mlc.search_experiments(max_results=1)
    except Exception as e:  # noqa: BLE001 - any failure to reach the store is reported the same way
        raise Seq2SeqError(f"MLflow tracking store {redact(uri)} cannot be used: {first_line(e)}") from None
    return mlc


def first_line(e: Exception) -> str:
    return redact(str(e).splitlines()[0] if str(e) else type(e).__name__)


def check_reachable(uri: str) -> None:
    """For an http(s) tracking URI, Seq2SeqError naming the (redacted) URI unless a server answers."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=10)
    except requests.RequestException as e:
        raise Seq2SeqError(f"MLflow tracking server {redact(uri)} cannot be reached ({type(e).__name__}); "
                           "start it, fix MLFLOW_TRACKING_URI / mlflow.tracking_uri, or unset it to use mlflow.db") from None


@contextlib.contextmanager
def tolerant(what: str):
    """Turn a tracking failure into a warning: the pipeline's own outputs matter more than the log."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - any tracking failure
        log.warning("MLflow: %s not logged: %s", what, first_line(e))


class TolerantMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger that keeps training going when the tracking server goes away:
    the first failure is a warning, later calls are skipped and counted, and a summary of what
    was not logged is printed at the end."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failed_calls = 0

    @property
    def experiment(self):
        try:
            return super().experiment
        except Exception as e:  # noqa: BLE001 - any tracking failure
            self._failed("the run", e)
            self._initialized = True  # do not ask the lost server again
            return self._mlflow_client

    def _failed(self, what: str, e: Exception) -> None:
        self.failed_calls += 1
        if self.failed_calls == 1:
            log.warning("MLflow server %s failed while logging %s (%s); training goes on, later metrics are not logged",
                        redact(self._tracking_uri or ""), what, first_line(e))

    def _guard(self, what: str, fn, *args, **kwargs) -> None:
        if self.failed_calls:
            self.failed_calls += 1
            return
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any tracking failure
            self._failed(what, e)

    @rank_zero_only
    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        self._guard(f"artifact {local_path}", lambda: self.experiment.log_artifact(self.run_id, local_path, artifact_path))

    def log_metrics(self, metrics, step=None) -> None:
        self._guard(f"metrics at step {step}", super().log_metrics, metrics, step)

    def log_hyperparams(self, params) -> None:
        self._guard("hyperparameters", super().log_hyperparams, params)

    def finalize(self, status: str = "success") -> None:
        self._guard("the run's end", super().finalize, status)
        if self.failed_calls:
            log.warning("MLflow: %d logging calls were not delivered to %s", self.failed_calls, redact(self._tracking_uri or ""))


def start_run(cfg, tags: dict[str, str] | None = None) -> tuple[str, str]:
    """Create a run (and the experiment if needed); log every param and the git/DVC tags, plus
    `tags`. Returns (uri, run_id).

    Fails before any training, naming the (redacted) URI, when the store cannot be reached.
    """
    uri = tracking_uri(cfg)
    mlc = open_store(uri)
    try:
        with store_lock(uri):  # two queue workers must not both create the experiment
            exp = mlc.get_experiment_by_name(cfg.mlflow.experiment_name)
            if exp is None:
                location = None
                if uri.startswith("sqlite:///") and uri == f"sqlite:///{repo_root() / 'mlflow.db'}":
                    location = (repo_root() / "mlartifacts").as_uri()
                exp_id = mlc.create_experiment(cfg.mlflow.experiment_name, artifact_location=location)
            else:
                exp_id = exp.experiment_id
        tags = {"git.commit": git_commit() or "unknown", **exp_name_tags(), **(tags or {})}
        if os.environ.get("DVC_EXP_BASELINE_REV"):
            tags["dvc.baseline_rev"] = os.environ["DVC_EXP_BASELINE_REV"]
        run = mlc.create_run(exp_id, tags=tags)
        log_params(mlc, run.info.run_id, cfg)
    except Seq2SeqError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure to reach the store is reported the same way
        raise Seq2SeqError(f"MLflow tracking store {redact(uri)} cannot be used: {first_line(e)}") from None
    return uri, run.info.run_id


def exp_name_tags() -> dict[str, str]:
    """The DVC experiment running this stage ($DVC_EXP_NAME) as the run's name and tags."""
    name = os.environ.get("DVC_EXP_NAME")
    return {"dvc.exp_name": name, "mlflow.runName": name, "dvc.exp_names": name} if name else {}


def name_run(mlc, run_id: str, rename: bool = True) -> None:
    """Add the DVC experiment running now to run `run_id`'s `dvc.exp_names` (every experiment the
    run belongs to: an interrupted one and the one that resumed it, or repeats of one evaluation);
    with `rename`, the run also takes its name."""
    tags = exp_name_tags()
    if not tags:
        return
    names = mlc.get_run(run_id).data.tags.get("dvc.exp_names", "").split()
    tags["dvc.exp_names"] = " ".join(dict.fromkeys([*names, tags["dvc.exp_names"]]))
    if not rename:
        tags = {"dvc.exp_names": tags["dvc.exp_names"]}
    for key, value in tags.items():
        mlc.set_tag(run_id, key, value)


def log_params(mlc, run_id: str, cfg) -> None:
    from mlflow.entities import Param

    params = flatten(OmegaConf.to_container(cfg, resolve=True))
    # every value, so that data.archive, data.mirrors and mlflow.tracking_uri keep no secret
    items = [Param(k, redact(str(v))[:6000]) for k, v in sorted(params.items())]
    for i in range(0, len(items), 100):
        mlc.log_batch(run_id, params=items[i : i + 100])
