"""One evaluation of a pipeline run in MLflow, keyed, so that logging it again adds nothing.

An evaluation is identified by the training run, every param, the checkpoint's MD5 and the scores
(tag `seq2seq.eval_key`). Its scores go into the run the train stage created, if no evaluation has
claimed it yet, else into a new run holding every param and `seq2seq.model_run_id` (DVC reused the
model: `-S decode.beam_size=10`). The run is tagged `seq2seq.evaluated` last, after scores,
artifacts and the registered model. The training curves and summary that the train stage could not
deliver (server away mid-run) are added from plots/ and metrics/ (repair_training).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from omegaconf import OmegaConf

from seq2seq.errors import Seq2SeqError
from seq2seq.io import redact
from seq2seq.tracking import registry, runs

EVAL_KEY = "seq2seq.eval_key"  # set when a run is claimed for an evaluation

EVALUATED = "seq2seq.evaluated"  # set last: the run holds everything

SCORES = registry.SCORES

# MLflow's name of each curve -> its column in plots/history.csv
CURVES = {"train_loss_epoch": "train_loss", "valid_loss": "valid_loss", "valid_ppl": "valid_ppl", "valid_bleu": "valid_bleu"}


def evaluation_key(trained_id: str, cfg, checkpoint_md5: str, scores: dict) -> str:
    blob = json.dumps({"model_run": trained_id, "params": runs.flatten(OmegaConf.to_container(cfg, resolve=True)),
                       "checkpoint_md5": checkpoint_md5, "scores": scores}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def model_run(cfg, run_file: Path) -> tuple[str, str, bool]:
    """(tracking URI, the train stage's run id, whether the store holds that run). Seq2SeqError when
    the store cannot be reached, or when it is not the store the train stage used and does not hold
    the run (scores would land away from their model)."""
    trained = json.loads(run_file.read_text())
    uri = runs.tracking_uri(cfg)
    mlc = runs.open_store(uri)
    try:
        mlc.get_run(trained["run_id"])
        found = True
    except Exception:  # noqa: BLE001 - MlflowException: no such run in this store
        found = False
    if not found and redact(uri) != trained["tracking_uri"]:
        raise Seq2SeqError(
            f"{run_file}: the model was trained in MLflow run {trained['run_id']} of {trained['tracking_uri']}, "
            f"but this pipeline would log to {redact(uri)}, which does not hold that run; set "
            "MLFLOW_TRACKING_URI (or mlflow.tracking_uri) to the store the train stage used, or retrain "
            "(dvc repro --force train)")
    return uri, trained["run_id"], found


def claim(mlc, cfg, uri: str, trained_id: str, found: bool, key: str) -> tuple[str, bool]:
    """(the run this evaluation goes into, whether it is complete already). Under the store's lock,
    so that parallel queue workers never share a run or create two for one key."""
    with runs.store_lock(uri):
        exp = mlc.get_experiment_by_name(cfg.mlflow.experiment_name)
        if exp is not None:
            found_runs = mlc.search_runs([exp.experiment_id], filter_string=f"tags.`{EVAL_KEY}` = '{key}'", max_results=1)
            if found_runs:
                return found_runs[0].info.run_id, found_runs[0].data.tags.get(EVALUATED) == "true"
        if found and not {EVAL_KEY, EVALUATED} & set(mlc.get_run(trained_id).data.tags):
            mlc.set_tag(trained_id, EVAL_KEY, key)
            return trained_id, False
        _, run_id = runs.start_run(cfg, {"seq2seq.model_run_id": trained_id, EVAL_KEY: key})
        return run_id, False


def repair_training(mlc, run_id: str, history_csv: Path, train_metrics: Path) -> int:
    """Log the curves (plots/history.csv) and summary (metrics/train.json) that the train stage's
    run lacks; returns how many values were added (0 when it holds them all)."""
    from mlflow.entities import Metric

    added = []
    if history_csv.exists():
        rows = list(csv.DictReader(history_csv.open(encoding="utf-8")))
        for name, column in CURVES.items():
            # the run holds the first epochs' points (a server lost mid-run loses the later ones);
            # added points take the steps Lightning gave the logged ones (its step and the CSV's differ)
            values = [r for r in rows if r.get(column) not in (None, "")]
            logged = sorted(m.step for m in mlc.get_metric_history(run_id, name))
            offset = logged[0] - int(values[0]["step"]) if logged and values else 0
            added += [Metric(name, float(r[column]), 0, int(r["step"]) + offset) for r in values[len(logged):]]
    if train_metrics.exists():
        have = mlc.get_run(run_id).data.metrics
        summary = json.loads(train_metrics.read_text())
        added += [Metric(f"train.{k}", float(v), 0, 0) for k, v in summary.items() if f"train.{k}" not in have]
    for i in range(0, len(added), 500):
        mlc.log_batch(run_id, metrics=added[i : i + 500])
    return len(added)


def log_evaluation(mlc, run_id: str, cfg, scores: dict, checkpoint: Path, checkpoint_md5: str, tokenizer: Path,
                   evaluate_dir: Path, metrics: Path, params_file: Path, examples: list[str]) -> str | None:
    """Scores, signatures, hypotheses and the registered model into run `run_id`; each step may be
    repeated (a repair): re-logging writes the same values, and the model is registered once a run."""
    mlc.set_tag(run_id, "seq2seq.checkpoint_md5", checkpoint_md5)
    for name in SCORES:
        mlc.log_metric(run_id, f"test_{name}", scores[name])
        mlc.set_tag(run_id, f"test_{name}_signature", scores[f"{name}_signature"])
    hyps = evaluate_dir / "hyps.txt"
    mlc.log_param(run_id, "test.sentences", sum(1 for _ in hyps.open(encoding="utf-8")))
    mlc.set_tag(run_id, "test_checkpoint", cfg.decode.checkpoint)
    for path in (hyps, metrics):
        mlc.log_artifact(run_id, str(path), artifact_path="evaluate")
    return registry.log_model(mlc, run_id, cfg, checkpoint, tokenizer, params_file, examples, scores)
