"""Stage 5: train the Seq2Seq model with Lightning, logging to one new MLflow run.

    python -m seq2seq.stages.train --params params.yaml --data data/prepared --tokenizer data/tokenizer \
        --encoded data/encoded --out data/train --metrics metrics/train.json --history plots/history.csv

Writes `<out>/checkpoints/{best,last}.ckpt` (best by valid BLEU; with `trainer.average_last=N`
also `averaged.ckpt`, the mean of the last N epochs' weights), `<out>/attention/*.png` (attention
heatmaps: DVC image plots), `<out>/mlflow_run.json` (the run the track stage logs the evaluation into),
`<out>/timing.json`, the metrics JSON and the history CSV (one row an epoch: DVC plots). The
metrics and the history live outside data/ so that git, and with it every DVC experiment, keeps them.
Every output appears only once training finished.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import OmegaConf

from seq2seq.command import run_stage
from seq2seq.config.params import load_params
from seq2seq.io import atomic_path, redact, write_json, write_text
from seq2seq.models.builder import build_model, check_model
from seq2seq.threads import rebalance
from seq2seq.tracking import runs
from seq2seq.tracking.lineage import INIT_FROM_TAG
from seq2seq.training.callbacks import (AttentionMaps, EpochProgressBar, History, KeepLastWeights, Progress,
                                        ReseedEachStep, SaveModelConfig, ThreadBudget, Throughput, epoch_checkpoints)
from seq2seq.training.datamodule import TranslationDataModule
from seq2seq.training.hardware import (check_cpu_bf16_rnn, is_rank_zero, set_onednn_cache_capacity,
                                       slow_cpu_bf16_warning, threads_tag)
from seq2seq.training.module import TranslationModule
from seq2seq.training.parent import parent_state, parent_tag
from seq2seq.training.resume import resumable, run_fingerprint

N_ATTENTION_MAPS = 3  # the first valid sentences, drawn after each validation
# The state folder holds state.json beside the checkpoints on purpose.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
# Lightning's own use of torch's pytree API (lightning/pytorch/utilities/_pytree.py), nothing a user can change
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")


class NoAdvertisement(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger" line, printed by every Trainer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(NoAdvertisement())


def run(cfg, data: Path, tokenizer: Path, encoded: Path, out: Path, metrics: Path,
        state_dir: Path = Path("data/.train_state"), history_csv: Path = Path("plots/history.csv"),
        parent: Path | None = None) -> None:
    t = cfg.trainer
    rebalance(announce=True)  # "threads: N (...)": this stage's share of the cores
    set_onednn_cache_capacity(t.onednn_cache_capacity)
    L.seed_everything(cfg.seed, workers=True)
    dm = TranslationDataModule(data, tokenizer, encoded, cfg.data.src, cfg.data.tgt, t.batch_tokens, t.max_len,
                               t.num_workers, cfg.seed, val_max_sentences=t.val_max_sentences,
                               pad_multiple=t.pad_multiple)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    check_model(model_cfg)
    model = build_model(model_cfg, dm.src_vocab_size, dm.tgt_vocab_size)
    inherited = parent_state(parent, model_cfg, dm.src_vocab_size, dm.tgt_vocab_size) if parent else None
    if is_rank_zero():  # instead of Lightning's summary table (whose FLOPs column reads 0 without a profiled batch)
        print(f"model: {type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters")
    module = TranslationModule(
        model, dm.detokenize, dm.valid_refs, lr=t.lr, weight_decay=t.weight_decay,
        label_smoothing=t.label_smoothing, adam_betas=tuple(t.adam_betas), scheduler=t.scheduler,
        lr_factor=t.lr_factor, lr_patience=t.lr_patience, min_lr=t.min_lr, warmup_steps=t.warmup_steps,
        val_max_sentences=t.val_max_sentences, max_len_a=cfg.decode.max_len_a, max_len_b=cfg.decode.max_len_b,
        compile_loss=t.compile_loss, rdrop_alpha=t.rdrop_alpha,
    )
    # Under DDP, Lightning re-runs this module in one process per extra device: only rank 0 creates
    # the MLflow run and writes outputs (Lightning's logger already logs from rank 0 only).
    rank_zero = is_rank_zero()
    fingerprint = run_fingerprint(cfg, data, tokenizer, parent)
    resume = resumable(state_dir, fingerprint)
    if inherited is not None and resume is None:  # a resumed run has its own weights in the checkpoint
        model.load_state_dict(inherited[0])
        print(f"train: starting from the weights of {inherited[1]['init_from']} "
              f"({inherited[1].get('version') or inherited[1].get('checkpoint')})")
    uri = runs.tracking_uri(cfg)
    if resume is not None:
        run_id = resume["run_id"]
        print(f"train: resuming from {state_dir / 'last.ckpt'} after epoch {resume['epoch']}, MLflow run {run_id}")
        if rank_zero:  # the other ranks never open the store
            runs.check_reachable(uri)
            with runs.tolerant(f"the name of resumed run {run_id}"):
                runs.name_run(runs.client(uri), run_id)  # the experiment that finishes the run names it
    elif rank_zero:
        shutil.rmtree(state_dir, ignore_errors=True)
        uri, run_id = runs.start_run(cfg)
        state_dir.mkdir(parents=True)
        write_json(state_dir / "state.json", {"fingerprint": fingerprint, "run_id": run_id})
        print(f"mlflow: run {run_id} in {redact(uri)}")
        if inherited is not None:  # lineage: the parent version (or checkpoint) and its weights' MD5
            with runs.tolerant(f"the parent tag of run {run_id}"):
                runs.client(uri).set_tag(run_id, INIT_FROM_TAG, parent_tag(inherited[1]))
    else:
        run_id = None
    # Lightning logs from rank 0 only; the other ranks get no logger at all, since building one
    # opens the store: for sqlite it creates the tables, racing rank 0 when nodes start together.
    logger = (runs.TolerantMLFlowLogger(tracking_uri=uri, run_id=run_id, experiment_name=cfg.mlflow.experiment_name)
              if rank_zero else False)
    # what rebuilding the model needs, and its SentencePiece models: a checkpoint is a parent on its own
    meta = {"model": model_cfg, "src_vocab_size": dm.src_vocab_size, "tgt_vocab_size": dm.tgt_vocab_size,
            "src": cfg.data.src, "tgt": cfg.data.tgt,
            "tokenizer": {side: (tokenizer / f"{side}.model").read_bytes() for side in ("src", "tgt")}}
    history, throughput, threads = History(), Throughput(), ThreadBudget()
    keep = KeepLastWeights(t.average_last) if t.average_last > 0 else None
    valid = dm.dataset("valid")
    map_sources = [valid.source(i) for i in range(min(N_ATTENTION_MAPS, len(valid)))]
    start = time.time()
    # Checkpoints live in `state_dir`, outside DVC's outputs, so that a killed run resumes.
    # Saved at the end of each training epoch, after every other callback: a resumed run restarts
    # at the last epoch's end with all state (history, averaging, schedulers) in step.
    checkpoint, last = epoch_checkpoints(state_dir)
    callbacks = [checkpoint, last, history, throughput, threads, Progress(throughput), SaveModelConfig(meta), ReseedEachStep(cfg.seed),
                 EarlyStopping("valid_bleu", mode="max", patience=t.early_stopping_patience),
                 AttentionMaps(map_sources, dm.sp_src, dm.sp_tgt, state_dir / "attention",
                               cfg.decode.max_len_a, cfg.decode.max_len_b)]
    # The progress bar on a terminal only: in a log file (DVC's queue, CI, `> log`) Progress writes lines
    lightning = {"enable_model_summary": False, "enable_progress_bar": sys.stdout.isatty(),
                 **OmegaConf.to_container(t.lightning, resolve=True)}
    if lightning["enable_progress_bar"]:
        callbacks.append(EpochProgressBar())
    init_scores = None
    with tempfile.TemporaryDirectory() as scratch:
        trainer = L.Trainer(
            **lightning,
            logger=logger,
            callbacks=callbacks + ([keep] if keep else []),
            num_sanity_val_steps=0,
            use_distributed_sampler=False,
            default_root_dir=scratch,
        )
        # the accelerator and precision Lightning resolved ("auto" included)
        on_cpu = isinstance(trainer.accelerator, CPUAccelerator)
        check_cpu_bf16_rnn(on_cpu, trainer.precision, model)
        if (message := slow_cpu_bf16_warning(on_cpu, trainer.precision)):
            warnings.warn(message, stacklevel=1)
        if inherited is not None:  # the parent on this run's valid set, before any step (kept for a resumed run)
            if resume is None:
                init_scores = {"valid_bleu": float(trainer.validate(module, datamodule=dm, verbose=False)[0]["valid_bleu"])}
                if rank_zero:
                    write_json(state_dir / "init_scores.json", init_scores)
            elif (state_dir / "init_scores.json").exists():
                init_scores = json.loads((state_dir / "init_scores.json").read_text())
        trainer.fit(module, datamodule=dm, ckpt_path=str(state_dir / "last.ckpt") if resume else None)
        if not rank_zero:
            return
        if not (state_dir / "last.ckpt").exists():  # stopped (max_time) before any checkpoint
            trainer.save_checkpoint(state_dir / "last.ckpt")
    with atomic_path(out / "checkpoints") as ckpt_dir:
        ckpt_dir.mkdir()
        shutil.copyfile(state_dir / "last.ckpt", ckpt_dir / "last.ckpt")
        # no validation ran: the last weights are the best known
        best = state_dir / "best.ckpt" if (state_dir / "best.ckpt").exists() else state_dir / "last.ckpt"
        shutil.copyfile(best, ckpt_dir / "best.ckpt")
        if keep is not None and keep.weights:
            torch.save({"state_dict": keep.average(), "seq2seq": {**meta, "averaged_epochs": len(keep.weights)}},
                       ckpt_dir / "averaged.ckpt")
    with atomic_path(out / "attention") as maps_dir:
        maps_dir.mkdir()
        for png in sorted((state_dir / "attention").glob("*.png")):
            shutil.copyfile(png, maps_dir / png.name)
    # Deterministic metrics (a DVC metric: the same run twice gives the same file) ...
    summary = {
        "best_valid_bleu": round(float(checkpoint.best_model_score or 0.0), 4),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_tgt_tokens": throughput.tokens,
    }
    if init_scores is not None:  # fine-tuning: where the parent started on this data
        summary["init_valid_bleu"] = round(float(init_scores["valid_bleu"]), 4)
    # ... and timings, which are not.
    timing = {"train_seconds": round(time.time() - start, 1), "train_step_seconds": round(throughput.seconds, 1),
              "train_tgt_tokens_per_s": round(throughput.tokens_per_second, 1), "resumed": resume is not None,
              # the thread counts steps ran with (bitwise reproducible at one count: pin it with OMP_NUM_THREADS)
              "threads_min": min(threads.used, default=torch.get_num_threads()),
              "threads_max": max(threads.used, default=torch.get_num_threads())}
    write_text(history_csv, history.csv())
    write_json(out / "timing.json", timing)
    write_json(metrics, summary)
    write_json(out / "mlflow_run.json", {"run_id": run_id, "tracking_uri": redact(uri)})
    with runs.tolerant(f"train summary and artifacts of run {run_id}"):
        mlc = runs.client(uri)
        for key, value in {**summary, **timing}.items():
            mlc.log_metric(run_id, f"train.{key}", float(value))
        mlc.set_tag(run_id, "seq2seq.threads", threads_tag(timing["threads_min"], timing["threads_max"]))
        with tempfile.TemporaryDirectory() as tmp:
            art = Path(tmp)
            history.plot(art / "learning_curves.png")
            (art / "params.yaml").write_text(OmegaConf.to_yaml(cfg), encoding="utf-8")
            for p in [art / "learning_curves.png", art / "params.yaml", history_csv, *sorted(tokenizer.glob("*.model"))]:
                mlc.log_artifact(run_id, str(p), artifact_path="train")
    shutil.rmtree(state_dir, ignore_errors=True)  # finished: nothing left to resume
    print(json.dumps({**summary, **timing}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.stages.train", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"))
    parser.add_argument("--encoded", type=Path, default=Path("data/encoded"), help="the encode stage's token store")
    parser.add_argument("--out", type=Path, default=Path("data/train"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/train.json"))
    parser.add_argument("--history", type=Path, default=Path("plots/history.csv"), help="learning curves, one row an epoch")
    parser.add_argument("--parent", type=Path, default=None, help="the parent stage's folder (trainer.init_from)")
    parser.add_argument("--state", type=Path, default=Path("data/.train_state"),
                        help="checkpoints while training; kept after a crash so that the next run resumes")
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.data, args.tokenizer, args.encoded, args.out, args.metrics,
                          args.state, args.history, args.parent))


if __name__ == "__main__":
    main()
