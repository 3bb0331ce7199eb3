"""The evaluated model in MLflow: a pyfunc model in the run, a version in the registry, and the
lineage that leads back to the pipeline run that made it.

The track stage calls `log_model`: the model (seq2seq.mlflow_model) goes into the run's
artifacts under `model/`, dvc.lock and params.yaml under `lineage/`, and, unless `registry.name`
is null, a new version of the registered model `registry.name` ({src}/{tgt} filled in) points at
it, tagged with the run's test scores and the lineage tags (`lineage_tags`).

Back from a version to its pipeline run, in a clone of the repository:

    python -m seq2seq.registry restore models:/seq2seq-de-en/3   # git checkout + params.yaml + dvc.lock
    dvc pull --with-deps train && dvc repro                      # the version's data and model; its scores
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from seq2seq import tracking
from seq2seq.errors import Seq2SeqError

PACKAGE = Path(__file__).resolve().parent
# The modules the served model imports (test_registry checks that nothing else is needed).
INFERENCE_MODULES = ("__init__.py", "errors.py", "vocab.py", "search.py", "translator.py", "ct2.py", "mlflow_model.py",
                     "models")
# Logged under lineage/ with the upstream stages' uncached outputs (metrics/, plots/): with the git
# commit, what `dvc repro` needs to see the pulled data as up to date.
LINEAGE_FILES = ("dvc.lock", "params.yaml")


def registered_name(cfg) -> str | None:
    return cfg.registry.name.format(src=cfg.data.src, tgt=cfg.data.tgt) if cfg.registry.name else None


def _git(*args: str, cwd: Path | None = None) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def uncached_outs(skip_stage: str | None = None) -> list[str]:
    """The stages' outputs that git tracks (cache: false: metrics/, plots/), read from dvc.yaml,
    in order; those of `skip_stage` left out."""
    spec = yaml.safe_load(Path("dvc.yaml").read_text()) if Path("dvc.yaml").exists() else {}
    files = []
    for name, stage in ((spec or {}).get("stages") or {}).items():
        for kind in ("outs", "metrics", "plots"):
            for out in stage.get(kind, []):
                if isinstance(out, dict) and next(iter(out.values()), {}).get("cache") is False and name != skip_stage:
                    files.append(next(iter(out)))
    return files


def pipeline_files() -> set[str]:
    """Files a pipeline run changes in git on purpose: params.yaml (`dvc exp run -S`), dvc.lock
    and the stages' uncached outputs."""
    return {*LINEAGE_FILES, *uncached_outs()}


def lineage_tags() -> dict[str, str]:
    """Where this model comes from: the git commit; whether the tree differed from it in anything
    but pipeline_files() (which the run logs, or which the pipeline writes); the DVC experiment;
    and, when DVC runs the stage, the hashes dvc.lock records for every cached output upstream."""
    tags = {"git.commit": (_git("rev-parse", "HEAD") or "unknown").strip()}
    status = _git("status", "--porcelain", "--untracked-files=no")
    if status is not None:
        ours = pipeline_files()
        changed = sorted(p for line in status.splitlines() if (p := line[3:].split(" -> ")[-1]) not in ours)
        tags["git.dirty"] = str(bool(changed)).lower()
        if changed:
            tags["git.dirty_files"] = ", ".join(changed)[:4000]
    for var, tag in (("DVC_EXP_NAME", "dvc.exp_name"), ("DVC_EXP_BASELINE_REV", "dvc.baseline_rev")):
        if os.environ.get(var):
            tags[tag] = os.environ[var]
    lock = Path("dvc.lock")
    if os.environ.get("DVC_STAGE") and lock.exists():
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        for name, stage in stages.items():
            if name == os.environ["DVC_STAGE"]:
                continue  # this stage's own entry is the previous run's until it ends
            for out in stage.get("outs", []):
                if out.get("md5") and out.get("path"):
                    tags[f"dvc.md5.{out['path']}"] = out["md5"]
    else:
        tags["dvc.lock"] = "not run by dvc: no dvc.lock hashes"
    return tags


def lineage_copy(path: Path, tmp: Path) -> Path:
    """`path` as the run logs it: dvc.lock without the running stage's entry, which still
    describes that stage's previous run (DVC rewrites it when the stage ends)."""
    if path.name != "dvc.lock" or not os.environ.get("DVC_STAGE"):
        return path
    lock = yaml.safe_load(path.read_text()) or {}
    lock.get("stages", {}).pop(os.environ["DVC_STAGE"], None)
    out = tmp / path.name
    out.write_text(yaml.safe_dump(lock, sort_keys=False))
    return out


def weights_only(checkpoint: Path, dest: Path) -> Path:
    """The checkpoint without optimizer and loop state: what seq2seq.translator.load_model reads."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    torch.save({"state_dict": ckpt["state_dict"], "seq2seq": ckpt["seq2seq"]}, dest)
    return dest


def inference_code(dest: Path) -> Path:
    """dest/seq2seq: the modules the served model imports, and nothing of the training stack."""
    pkg = dest / "seq2seq"
    pkg.mkdir(parents=True)
    for name in INFERENCE_MODULES:
        src = PACKAGE / name
        if src.is_dir():
            shutil.copytree(src, pkg / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, pkg / name)
    return pkg


def signature(cfg):
    from mlflow.models import ModelSignature
    from mlflow.types import DataType
    from mlflow.types.schema import AnyType, Array, ColSpec, ParamSchema, ParamSpec, Schema

    from seq2seq.mlflow_model import INPUT_COLUMN, PARAMS

    defaults = model_config(cfg)
    # The sentences are declared Any, not string: for a string column MLflow's scoring server
    # converts every value to a string before the model sees it (42 -> "42", null -> "None");
    # declared Any, the values arrive as sent and seq2seq.mlflow_model refuses non-strings.
    return ModelSignature(
        inputs=Schema([ColSpec(AnyType(), INPUT_COLUMN)]),
        outputs=Schema([ColSpec(DataType.string, "translation"), ColSpec(DataType.double, "score", required=False),
                        ColSpec(Array(DataType.string), "nbest", required=False),
                        ColSpec(Array(DataType.double), "nbest_scores", required=False)]),
        params=ParamSchema([ParamSpec(name, kind, defaults[name]) for name, (kind, _) in PARAMS.items()]),
    )


def model_config(cfg) -> dict:
    """The served model's default decoding settings: the run's."""
    d = cfg.decode
    return {"beam_size": int(d.beam_size), "n_best": 1, "length_penalty": float(d.length_penalty),
            "max_len_a": float(d.max_len_a), "max_len_b": int(d.max_len_b), "batch_size": int(d.batch_size),
            "engine": str(cfg.registry.engine)}


def save_model(path: Path, cfg, checkpoint: Path, tokenizer: Path, params_file: Path, example: list[str]) -> Path:
    """Write the MLflow pyfunc model directory `path` (which must not exist)."""
    import mlflow.pyfunc
    import pandas as pd
    import sentencepiece

    from seq2seq.mlflow_model import INPUT_COLUMN

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "tokenizer").mkdir()
        for side in ("src", "tgt"):
            shutil.copy2(tokenizer / f"{side}.model", tmp / "tokenizer" / f"{side}.model")
        artifacts = {"checkpoint": str(weights_only(checkpoint, tmp / "model.ckpt")),
                     "tokenizer": str(tmp / "tokenizer"), "params": str(params_file)}
        requirements = [f"torch=={torch.__version__.split('+')[0]}", f"sentencepiece=={sentencepiece.__version__}",
                        f"mlflow=={mlflow.__version__}", "pandas", "tqdm"]
        if cfg.registry.engine == "ctranslate2":
            from seq2seq.ct2 import require_ctranslate2
            from seq2seq.export import export

            artifacts["ctranslate2"] = str(export(checkpoint, tokenizer, tmp / "ctranslate2"))
            requirements.append(f"ctranslate2=={require_ctranslate2().__version__}")
        mlflow.pyfunc.save_model(
            str(path),
            python_model=str(PACKAGE / "mlflow_model.py"),
            artifacts=artifacts,
            code_paths=[str(inference_code(tmp / "code"))],
            signature=signature(cfg),
            input_example=pd.DataFrame({INPUT_COLUMN: example[:3]}),
            model_config=model_config(cfg),
            pip_requirements=requirements,
        )
    return path


def log_model(mlc, run_id: str, cfg, checkpoint: Path, tokenizer: Path, params_file: Path, example: list[str],
              scores: dict) -> str | None:
    """Log the model and lineage into run `run_id`, tag the run, and register a version (unless
    registry.name is null). Returns the version's `models:/name/version` URI, or None."""
    tags = lineage_tags()
    for key, value in tags.items():
        mlc.set_tag(run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        for name in (*LINEAGE_FILES, *uncached_outs(skip_stage=os.environ.get("DVC_STAGE"))):
            if Path(name).is_file():
                mlc.log_artifact(run_id, str(lineage_copy(Path(name), Path(tmp))),
                                 artifact_path=str(Path("lineage") / Path(name).parent).removesuffix("/."))
        model_dir = save_model(Path(tmp) / "model", cfg, checkpoint, tokenizer, params_file, example)
        mlc.log_artifacts(run_id, str(model_dir), artifact_path="model")
    name = registered_name(cfg)
    if name is None:
        return None
    from mlflow.exceptions import MlflowException

    uri = mlc.tracking_uri
    with tracking.store_lock(uri):  # two queue workers must not both create the registered model
        try:
            mlc.get_registered_model(name)
        except MlflowException:
            mlc.create_registered_model(name, description="seq2seq translation models: one version per evaluated pipeline run")
    version_tags = {**tags, **{f"test_{k}": str(scores[k]) for k in ("bleu", "chrf", "ter", "bleu_tok_lc")},
                    "test_bleu_signature": scores["bleu_signature"], "decode.beam_size": str(cfg.decode.beam_size)}
    # once a run: a repeated call (the track stage completing a run) finds the version it made
    made = mlc.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    version = made[0] if made else mlc.create_model_version(
        name, source=f"{mlc.get_run(run_id).info.artifact_uri}/model", run_id=run_id, tags=version_tags)
    mlc.set_tag(run_id, "seq2seq.registered_model", f"models:/{name}/{version.version}")
    return f"models:/{name}/{version.version}"


def resolve(model_uri: str, uri: str) -> tuple[object, str]:
    """(the model version, its run id) for models:/<name>/<version>; Seq2SeqError otherwise."""
    if not model_uri.startswith("models:/") or model_uri.count("/") != 2:
        raise Seq2SeqError(f"{model_uri}: expected models:/<name>/<version>")
    name, version = model_uri.removeprefix("models:/").split("/")
    mlc = tracking.open_store(uri)
    try:
        mv = mlc.get_model_version(name, version)
    except Exception as e:  # noqa: BLE001 - MlflowException: no such model or version
        raise Seq2SeqError(f"{model_uri}: not in {tracking.redact(uri)} ({str(e).splitlines()[0]})") from None
    return mv, mv.run_id


def restore(model_uri: str, uri: str, workdir: Path = Path("."), force: bool = False) -> dict:
    """In a clone of the repository: check out the version's git commit and put back its
    params.yaml, dvc.lock and the upstream stages' metrics and plots files, so that
    `dvc pull --with-deps train && dvc repro` fetch its data and model and evaluate it again:
    exactly the version's scores. Refuses a working tree with uncommitted changes to tracked
    files unless `force` (they would be overwritten), and a logged params.yaml that fails the
    config check (it comes from the store: data, never code). Returns what to print, including
    the branch or commit to go back to."""
    from seq2seq.check import check

    workdir = Path(workdir)
    mv, run_id = resolve(model_uri, uri)
    commit = mv.tags.get("git.commit", "unknown")
    if commit == "unknown":
        raise Seq2SeqError(f"{model_uri}: the version has no git commit tag")
    if mv.tags.get("dvc.lock", "").startswith("not run by dvc"):
        raise Seq2SeqError(f"{model_uri}: its evaluation did not run under DVC; there is no dvc.lock to restore")
    changed = _git("status", "--porcelain", "--untracked-files=no", cwd=workdir)
    if changed and not force:
        files = ", ".join(line[3:] for line in changed.splitlines()[:10])
        raise Seq2SeqError(f"{workdir.resolve()}: uncommitted changes ({files}) would be overwritten; commit or stash "
                           "them (git stash), or pass --force to discard them")
    back = (_git("symbolic-ref", "-q", "--short", "HEAD", cwd=workdir) or _git("rev-parse", "HEAD", cwd=workdir) or "").strip()
    mlc = tracking.client(uri)
    with tempfile.TemporaryDirectory() as tmp:
        logged = Path(mlc.download_artifacts(run_id, "lineage", tmp))
        if (logged / "params.yaml").is_file():
            # ConfigError naming the key: nothing is checked out or written
            check(logged / "params.yaml", source=f"{model_uri}: lineage/params.yaml")
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


def main(argv: list[str] | None = None) -> None:
    from seq2seq.stage import run_stage

    parser = argparse.ArgumentParser(description="Registered models and their pipeline runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("restore", help="check out the git commit, params.yaml and dvc.lock of a registered version")
    p.add_argument("model_uri", help="models:/<name>/<version>")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    p.add_argument("--force", action="store_true", help="overwrite uncommitted changes to tracked files")
    args = parser.parse_args(argv)

    def run() -> None:
        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"
        info = restore(args.model_uri, uri, force=args.force)
        print(f"{args.model_uri}: run {info['run_id']}, experiment {info['experiment'] or '-'}, commit {info['commit']}"
              f" (detached HEAD) with params.yaml and dvc.lock of the run; now `dvc pull --with-deps train && dvc repro`."
              f"\nTo go back: `git checkout --force {info['back'] or '<your branch>'}` (drops the restored files)")
        if info["dirty"] == "true":
            print("warning: the run's working tree differed from that commit (tag git.dirty_files names the files); "
                  "the reproduction may differ", file=sys.stderr)

    run_stage(run)


if __name__ == "__main__":
    main()
