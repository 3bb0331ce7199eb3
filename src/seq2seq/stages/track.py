"""Stage 7: put this pipeline run's evaluation into MLflow, completing whatever an earlier try missed.

    python -m seq2seq.stages.track --params params.yaml --data data/prepared --tokenizer data/tokenizer \
        --checkpoints data/train/checkpoints --run data/train/mlflow_run.json --evaluate data/evaluate \
        --metrics metrics/test.json --train-metrics metrics/train.json --history plots/history.csv

DVC runs this stage every time (`always_changed`), after the cached ones: when DVC restores
`evaluate` (or `train`) from its run cache for a new experiment, the scores still reach MLflow, so
every experiment `dvc exp show` lists has its run with the same params and scores. Keyed, so that
running it again adds nothing (seq2seq.tracking.evaluations): a run already complete under the key
gets only the experiment's name added (tag `dvc.exp_names`). A crash part way leaves a run that the
next `dvc repro` completes.

MLflow trouble fails this stage, naming the store, after the outputs of every other stage are
safe; `dvc repro` (or `dvc exp run` again: the other stages come from DVC's cache) repairs it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mlflow

from seq2seq.command import run_stage
from seq2seq.config.params import load_params
from seq2seq.errors import DataError, Seq2SeqError
from seq2seq.io import md5sum, redact
from seq2seq.tracking import runs
from seq2seq.tracking.evaluations import EVALUATED, claim, evaluation_key, log_evaluation, model_run, repair_training


def run(cfg, data: Path, tokenizer: Path, checkpoints: Path, run_file: Path, evaluate_dir: Path, metrics: Path,
        train_metrics: Path, history_csv: Path, params_file: Path = Path("params.yaml")) -> str:
    """Log the evaluation (see the module docstring); returns the run id."""
    checkpoint = checkpoints / f"{cfg.decode.checkpoint}.ckpt"
    for path in (checkpoint, metrics, evaluate_dir / "hyps.txt", run_file):
        if not path.exists():
            raise DataError(f"{path}: not found (run the train and evaluate stages first)")
    scores = json.loads(metrics.read_text())
    checkpoint_md5 = md5sum(checkpoint)
    uri, trained_id, found = model_run(cfg, run_file)
    key = evaluation_key(trained_id, cfg, checkpoint_md5, scores)
    mlc = runs.client(uri)
    mlflow.set_tracking_uri(uri)  # this process's one store, also where MLflow looks models up itself
    run_id = None
    try:
        run_id, complete = claim(mlc, cfg, uri, trained_id, found, key)
        # the experiment that finishes a run names it; a complete run keeps its name and gains this one
        runs.name_run(mlc, run_id, rename=not complete)
        if found and (added := repair_training(mlc, trained_id, history_csv, train_metrics)):
            print(f"mlflow: {added} training values the train stage could not log added to run {trained_id}")
        if complete:
            print(f"mlflow: this evaluation is in run {run_id} of {redact(uri)} already; nothing added")
            return run_id
        with open(data / f"test.{cfg.data.src}", encoding="utf-8") as f:
            examples = [line.rstrip("\n") for line, _ in zip(f, range(3))]
        version = log_evaluation(mlc, run_id, cfg, scores, checkpoint, checkpoint_md5, tokenizer, evaluate_dir,
                                 metrics, params_file, examples)
        mlc.set_tag(run_id, EVALUATED, "true")  # last: the run holds everything
        if run_id != trained_id:  # a run of this stage's own ends here (the train stage ends its own)
            mlc.set_terminated(run_id)
    except Seq2SeqError:
        raise
    except Exception as e:  # noqa: BLE001 - any tracking failure: say how to complete it
        where = f"run {run_id}" if run_id else "a run"
        raise Seq2SeqError(f"MLflow {redact(uri)}: logging the evaluation into {where} failed "
                           f"({runs.first_line(e)}); every other stage's outputs are saved and the scores are in "
                           f"{metrics}. Once the store is back, `dvc repro` (or the same `dvc exp run` again) reruns "
                           "only this stage and completes the run") from None
    print(f"mlflow: test scores in run {run_id} of {redact(uri)}"
          + ("" if run_id == trained_id else f" (the model comes from run {trained_id})")
          + (f"; registered as {version}" if version else ""))
    return run_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.stages.track", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"))
    parser.add_argument("--checkpoints", type=Path, default=Path("data/train/checkpoints"))
    parser.add_argument("--run", type=Path, default=Path("data/train/mlflow_run.json"))
    parser.add_argument("--evaluate", type=Path, default=Path("data/evaluate"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/test.json"))
    parser.add_argument("--train-metrics", type=Path, default=Path("metrics/train.json"))
    parser.add_argument("--history", type=Path, default=Path("plots/history.csv"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.data, args.tokenizer, args.checkpoints, args.run,
                          args.evaluate, args.metrics, args.train_metrics, args.history, Path(args.params)))


if __name__ == "__main__":
    main()
