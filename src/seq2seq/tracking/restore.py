"""Back from a registered model version to the pipeline run that made it, in a clone of the
repository: its git commit, params.yaml, dvc.lock and upstream metrics and plots files; and a
version's weights and SentencePiece models, for a run that starts from them (fetch_version)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from seq2seq.config.check import check_file
from seq2seq.errors import Seq2SeqError
from seq2seq.io import redact
from seq2seq.tracking import runs
from seq2seq.tracking.lineage import git


def resolve(model_uri: str, uri: str) -> tuple[object, str]:
    """(the model version, its run id) for models:/<name>/<version> or models:/<name>@<alias>;
    Seq2SeqError otherwise."""
    rest = model_uri.removeprefix("models:/")
    by_alias = rest.count("@") == 1 and "/" not in rest
    if not model_uri.startswith("models:/") or not (by_alias or rest.count("/") == 1) or "" in rest.replace("@", "/").split("/"):
        raise Seq2SeqError(f"{model_uri}: expected models:/<name>/<version> or models:/<name>@<alias>")
    name, version = rest.split("@" if by_alias else "/")
    mlc = runs.open_store(uri)
    try:
        mv = mlc.get_model_version_by_alias(name, version) if by_alias else mlc.get_model_version(name, version)
    except Exception as e:  # noqa: BLE001 - MlflowException: no such model, version or alias
        raise Seq2SeqError(f"{model_uri}: not in {redact(uri)} ({str(e).splitlines()[0]})") from None
    return mv, mv.run_id


def restore(model_uri: str, uri: str, workdir: Path = Path("."), force: bool = False) -> dict:
    """In a clone of the repository: check out the version's git commit and put back its
    params.yaml, dvc.lock and the upstream stages' metrics and plots files, so that
    `dvc pull --with-deps train && dvc repro` fetch its data and model and evaluate it again:
    exactly the version's scores. Refuses a working tree with uncommitted changes to tracked
    files unless `force` (they would be overwritten), and a logged params.yaml that fails the
    config check (it comes from the store: data, never code). Returns what to print, including
    the branch or commit to go back to."""
    workdir = Path(workdir)
    mv, run_id = resolve(model_uri, uri)
    commit = mv.tags.get("git.commit", "unknown")
    if commit == "unknown":
        raise Seq2SeqError(f"{model_uri}: the version has no git commit tag")
    if mv.tags.get("dvc.lock", "").startswith("not run by dvc"):
        raise Seq2SeqError(f"{model_uri}: its evaluation did not run under DVC; there is no dvc.lock to restore")
    changed = git("status", "--porcelain", "--untracked-files=no", cwd=workdir)
    if changed and not force:
        files = ", ".join(line[3:] for line in changed.splitlines()[:10])
        raise Seq2SeqError(f"{workdir.resolve()}: uncommitted changes ({files}) would be overwritten; commit or stash "
                           "them (git stash), or pass --force to discard them")
    back = (git("symbolic-ref", "-q", "--short", "HEAD", cwd=workdir) or git("rev-parse", "HEAD", cwd=workdir) or "").strip()
    mlc = runs.client(uri)
    with tempfile.TemporaryDirectory() as tmp:
        logged = Path(mlc.download_artifacts(run_id, "lineage", tmp))
        if (logged / "params.yaml").is_file():
            # ConfigError naming the key: nothing is checked out or written
            check_file(logged / "params.yaml", source=f"{model_uri}: lineage/params.yaml")
        proc = subprocess.run(["git", "checkout", "-q", *(["--force"] if force else []), commit], cwd=workdir,
                              capture_output=True, text=True)
        if proc.returncode:
            raise Seq2SeqError(f"git checkout {commit} failed: {proc.stderr.strip()}")
        for path in sorted(p for p in logged.rglob("*") if p.is_file()):
            dest = workdir / path.relative_to(logged)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    return {"commit": commit, "dirty": mv.tags.get("git.dirty"), "run_id": run_id, "experiment": mv.tags.get("dvc.exp_name"),
            "back": back}


def fetch_version(model_uri: str, tracking_uri: str, out: Path) -> dict:
    """out/model.ckpt and out/tokenizer/{src,tgt}.model of a registered version (`models:/<name>/<version>`
    or `models:/<name>@<alias>`), from the model's own artifacts; returns what names it (the version
    number, an alias resolved, and its run). Seq2SeqError naming the URI when it is not there."""
    import mlflow.artifacts

    mv, run_id = resolve(model_uri, tracking_uri)
    name = model_uri.removeprefix("models:/").replace("@", "/").split("/")[0]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # the version's own files, through this store (a models:/ URI would go through the default one)
            where = runs.client(tracking_uri).get_model_version_download_uri(name, str(mv.version))
            local = Path(mlflow.artifacts.download_artifacts(where, dst_path=tmp, tracking_uri=tracking_uri)) / "artifacts"
        except Exception as e:  # noqa: BLE001 - MlflowException, OSError: the artifacts cannot be read
            raise Seq2SeqError(f"{model_uri}: its files cannot be fetched from {redact(tracking_uri)} ({runs.first_line(e)})") from None
        if not (local / "model.ckpt").is_file() or not all((local / "tokenizer" / f"{s}.model").is_file() for s in ("src", "tgt")):
            raise Seq2SeqError(f"{model_uri}: not a model of this pipeline (no model.ckpt and tokenizer/ in its artifacts)")
        shutil.copyfile(local / "model.ckpt", out / "model.ckpt")
        shutil.copytree(local / "tokenizer", out / "tokenizer")
    return {"init_from": model_uri, "version": f"models:/{name}/{mv.version}", "run_id": run_id}
