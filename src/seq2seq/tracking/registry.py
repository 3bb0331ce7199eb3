"""The evaluated model in MLflow: a LoggedModel of the run and a version in the registry.

`log_model` (called by the track stage): dvc.lock and params.yaml go into the run's artifacts under
`lineage/` (seq2seq.tracking.lineage); the model (seq2seq.inference.pyfunc) becomes an MLflow 3
LoggedModel named `model` whose source run is the evaluated run (its artifacts live under the model,
`<experiment artifacts>/models/<model id>/artifacts`, not under the run), with the run's params and
its test scores linked to it; unless `registry.name` is null, a new version of the registered model
`registry.name` ({src}/{tgt} filled in) is made from it, tagged with the test scores and the lineage
tags. `promote` moves an alias (`champion`) onto a version, on purpose.

Back from a version to its pipeline run, in a clone of the repository:

    seq2seq restore models:/seq2seq-de-en@champion   # git checkout + params.yaml + dvc.lock
    dvc pull --with-deps train && dvc repro          # the version's data and model; its scores
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from seq2seq.errors import Seq2SeqError
from seq2seq.inference.checkpoint import read_checkpoint
from seq2seq.io import redact
from seq2seq.tracking import runs
from seq2seq.tracking.lineage import INIT_FROM_TAG, LINEAGE_FILES, lineage_copy, lineage_tags, uncached_outs

MODEL_NAME = "model"  # the LoggedModel's name in its run
CHAMPION = "champion"  # the alias `seq2seq promote` moves: what a team serves
SCORES = ("bleu", "chrf", "ter", "bleu_tok_lc")
PACKAGE = Path(__file__).resolve().parents[1]
# The files and folders of the package that the served model imports, and nothing of the training
# stack (test_registry checks that nothing else is needed).
INFERENCE_MODULES = ("__init__.py", "errors.py", "vocab.py", "progress.py", "models", "inference", "data/__init__.py",
                     "data/sentencepiece.py")


def registered_name(cfg) -> str | None:
    return cfg.registry.name.format(src=cfg.data.src, tgt=cfg.data.tgt) if cfg.registry.name else None


def weights_only(checkpoint: Path, dest: Path) -> Path:
    """The checkpoint without optimizer and loop state: what seq2seq.inference.translator.load_model reads."""
    ckpt = read_checkpoint(checkpoint)
    torch.save({"state_dict": ckpt["state_dict"], "seq2seq": ckpt["seq2seq"]}, dest)
    return dest


def inference_code(dest: Path) -> Path:
    """dest/seq2seq: the modules the served model imports, and nothing of the training stack."""
    pkg = dest / "seq2seq"
    pkg.mkdir(parents=True)
    for name in INFERENCE_MODULES:
        src, dest = PACKAGE / name, pkg / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest)
    return pkg


def signature(cfg):
    from mlflow.models import ModelSignature
    from mlflow.types import DataType
    from mlflow.types.schema import AnyType, Array, ColSpec, ParamSchema, ParamSpec, Schema

    from seq2seq.inference.pyfunc import INPUT_COLUMN, PARAMS

    defaults = model_config(cfg)
    # The sentences are declared Any, not string: for a string column MLflow's scoring server
    # converts every value to a string before the model sees it (42 -> "42", null -> "None");
    # declared Any, the values arrive as sent and seq2seq.inference.pyfunc refuses non-strings.
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


def save_model(path: Path, cfg, checkpoint: Path, tokenizer: Path, params_file: Path, example: list[str],
               mlflow_model=None) -> Path:
    """Write the MLflow pyfunc model directory `path` (which must not exist); `mlflow_model` is the
    MLmodel's metadata (the LoggedModel's id and run)."""
    import mlflow.pyfunc
    import pandas as pd
    import sentencepiece
    import tqdm

    from seq2seq.inference.pyfunc import INPUT_COLUMN

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "tokenizer").mkdir()
        for side in ("src", "tgt"):
            shutil.copy2(tokenizer / f"{side}.model", tmp / "tokenizer" / f"{side}.model")
        artifacts = {"checkpoint": str(weights_only(checkpoint, tmp / "model.ckpt")),
                     "tokenizer": str(tmp / "tokenizer"), "params": str(params_file)}
        # the versions this environment runs (the lock file's), so that the served model runs the same
        requirements = [f"torch=={torch.__version__.split('+')[0]}", f"sentencepiece=={sentencepiece.__version__}",
                        f"mlflow=={mlflow.__version__}", f"pandas=={pd.__version__}", f"tqdm=={tqdm.__version__}"]
        if cfg.registry.engine == "ctranslate2":
            from seq2seq.inference.ct2 import require_ctranslate2
            from seq2seq.inference.export import export

            artifacts["ctranslate2"] = str(export(checkpoint, tokenizer, tmp / "ctranslate2"))
            requirements.append(f"ctranslate2=={require_ctranslate2().__version__}")
        mlflow.pyfunc.save_model(
            str(path),
            python_model=str(PACKAGE / "inference" / "pyfunc.py"),
            artifacts=artifacts,
            code_paths=[str(inference_code(tmp / "code"))],
            signature=signature(cfg),
            input_example=pd.DataFrame({INPUT_COLUMN: example[:3]}),
            model_config=model_config(cfg),
            pip_requirements=requirements,
            mlflow_model=mlflow_model,
        )
    return path


def logged_model(mlc, run_id: str, cfg, checkpoint: Path, tokenizer: Path, params_file: Path,
                 example: list[str], tags: dict) -> str:
    """The id of run `run_id`'s LoggedModel `model`, READY, made here unless a READY one is there
    (a repeated track stage); one left PENDING by a crash is marked FAILED and replaced."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    run = mlc.get_run(run_id)
    for model in mlc.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"):
        if model.name == MODEL_NAME and model.status == LoggedModelStatus.READY:
            return model.model_id
        if model.name == MODEL_NAME and model.status == LoggedModelStatus.PENDING:
            mlc.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
    model = mlc.create_logged_model(run.info.experiment_id, name=MODEL_NAME, source_run_id=run_id, tags=tags,
                                    params=dict(run.data.params), model_type="seq2seq")
    mlc.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    with tempfile.TemporaryDirectory() as tmp:
        meta = Model(artifact_path=model.artifact_location, model_uuid=model.model_id, run_id=run_id,
                     model_id=model.model_id)
        path = save_model(Path(tmp) / "model", cfg, checkpoint, tokenizer, params_file, example, mlflow_model=meta)
        mlc.log_model_artifacts(model.model_id, str(path))
    mlc.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model.model_id


def link_scores(mlc, run_id: str, model_id: str) -> None:
    """The run's test scores, linked to the model too (the model's metrics in the MLflow UI): the
    same values, steps and times, as MLflow itself links a run's metrics to a model it logs."""
    from mlflow.entities import Metric

    have = {m.key for m in mlc.get_logged_model(model_id).metrics or []}
    linked = []
    for key in (f"test_{name}" for name in SCORES if f"test_{name}" not in have):
        linked += [Metric(m.key, m.value, m.timestamp, m.step, run_id=run_id, model_id=model_id)
                   for m in mlc.get_metric_history(run_id, key) if m.model_id is None]
    if linked:
        mlc.log_batch(run_id, metrics=linked)


def log_model(mlc, run_id: str, cfg, checkpoint: Path, tokenizer: Path, params_file: Path, example: list[str],
              scores: dict) -> str | None:
    """Log the lineage into run `run_id`, tag the run, log its LoggedModel with the test scores
    linked, and register a version (unless registry.name is null). Each step may be repeated.
    Returns the version's `models:/name/version` URI, or None. The process's default tracking URI
    must be `mlc`'s (mlflow.set_tracking_uri): a local registry looks up the LoggedModel of
    `models:/<model id>` there, not through `mlc`."""
    tags = lineage_tags()
    for key, value in tags.items():
        mlc.set_tag(run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        for name in (*LINEAGE_FILES, *uncached_outs(skip_stage=os.environ.get("DVC_STAGE"))):
            if Path(name).is_file():
                mlc.log_artifact(run_id, str(lineage_copy(Path(name), Path(tmp))),
                                 artifact_path=str(Path("lineage") / Path(name).parent).removesuffix("/."))
    model_id = logged_model(mlc, run_id, cfg, checkpoint, tokenizer, params_file, example, tags)
    link_scores(mlc, run_id, model_id)
    name = registered_name(cfg)
    if name is None:
        return None
    from mlflow.exceptions import MlflowException

    uri = mlc.tracking_uri
    with runs.store_lock(uri):  # two queue workers must not both create the registered model
        try:
            mlc.get_registered_model(name)
        except MlflowException:
            mlc.create_registered_model(name, description="seq2seq translation models: one version per evaluated pipeline run")
    parent = mlc.get_run(run_id).data.tags.get(INIT_FROM_TAG)  # a fine-tuned model names its parent
    version_tags = {**tags, **({INIT_FROM_TAG: parent} if parent else {}), **{f"test_{k}": str(scores[k]) for k in SCORES},
                    "test_bleu_signature": scores["bleu_signature"], "decode.beam_size": str(cfg.decode.beam_size)}
    # once a run: a repeated call (the track stage completing a run) finds the version it made
    made = mlc.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    version = made[0] if made else mlc.create_model_version(
        name, source=f"models:/{model_id}", run_id=run_id, tags=version_tags, model_id=model_id)
    link_version(mlc, model_id, name, version.version)
    mlc.set_tag(run_id, "seq2seq.registered_model", f"models:/{name}/{version.version}")
    return f"models:/{name}/{version.version}"


def link_version(mlc, model_id: str, name: str, version) -> None:
    """Name the version on the LoggedModel (its tag `mlflow.modelVersions`, as MLflow's own registration
    sets it), so that the model's page lists the versions made from it."""
    import json

    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    listed = json.loads(mlc.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
    entry = {"name": name, "version": int(version)}
    if entry not in listed:
        mlc.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*listed, entry])})


def promote(mlc, name: str, version: str, alias: str = CHAMPION) -> str | None:
    """Point `alias` of registered model `name` at `version`; returns the version it pointed at
    before (None if none). Seq2SeqError when the model or version is not there."""
    from mlflow.exceptions import MlflowException

    try:
        mlc.get_model_version(name, version)
    except MlflowException as e:
        raise Seq2SeqError(f"models:/{name}/{version}: not in {redact(mlc.tracking_uri)} ({runs.first_line(e)})") from None
    try:
        before = mlc.get_model_version_by_alias(name, alias).version
    except MlflowException:
        before = None
    mlc.set_registered_model_alias(name, alias, version)
    return before

