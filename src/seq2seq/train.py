"""Stage 4: train the Seq2Seq model with Lightning, logging to one new MLflow run.

    python -m seq2seq.train --params params.yaml --data data/prepared --tokenizer data/tokenizer \
        --out data/train --metrics data/metrics/train.json

Writes `<out>/checkpoints/{best,last}.ckpt` (best by valid BLEU; with `trainer.average_last=N`
also `averaged.ckpt`, the mean of the last N epochs' weights), `<out>/history.csv` (one row an
epoch: DVC plots), `<out>/attention/*.png` (attention heatmaps: DVC image plots),
`<out>/mlflow_run.json` (the run the evaluate stage logs into) and the metrics JSON.
Every output appears only once training finished.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import OmegaConf

from seq2seq import tracking
from seq2seq.callbacks import AttentionMaps, History, KeepLastWeights, SaveModelConfig, Throughput
from seq2seq.config import load_params
from seq2seq.datamodule import TranslationDataModule
from seq2seq.io import atomic_path, write_json, write_text
from seq2seq.module import TranslationModule
from seq2seq.stage import run_stage
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID

N_ATTENTION_MAPS = 3  # the first valid sentences, drawn after each validation


def build_model(model_cfg: dict, src_vocab_size: int, tgt_vocab_size: int) -> torch.nn.Module:
    return instantiate(OmegaConf.create(model_cfg), src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                       pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID)


def load_model(checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model from a checkpoint alone, loading tensors only (no pickled code runs)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    meta = ckpt["seq2seq"]
    model = build_model(meta["model"], meta["src_vocab_size"], meta["tgt_vocab_size"])
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    return model.eval(), meta


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed run (Lightning, torchrun, SLURM)."""
    return all(int(os.environ.get(k, 0)) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def plot_history(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train_loss", "valid_loss"):
        ax1.plot(epochs, [r[key] for r in rows], marker="o", label=key)
    ax1.set_xlabel("epoch"), ax1.set_ylabel("cross-entropy"), ax1.legend()
    ax2.plot(epochs, [r["valid_bleu"] for r in rows], marker="o", color="tab:green")
    ax2.set_xlabel("epoch"), ax2.set_ylabel("valid BLEU (greedy)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(cfg, data: Path, tokenizer: Path, out: Path, metrics: Path) -> None:
    L.seed_everything(cfg.seed, workers=True)
    t = cfg.trainer
    dm = TranslationDataModule(data, tokenizer, cfg.data.src, cfg.data.tgt, t.batch_tokens, t.max_len,
                               t.num_workers, cfg.seed, val_max_sentences=t.val_max_sentences)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model = build_model(model_cfg, dm.src_vocab_size, dm.tgt_vocab_size)
    module = TranslationModule(
        model, dm.detokenize, dm.valid_refs, lr=t.lr, weight_decay=t.weight_decay,
        label_smoothing=t.label_smoothing, adam_betas=tuple(t.adam_betas), scheduler=t.scheduler,
        lr_factor=t.lr_factor, lr_patience=t.lr_patience, min_lr=t.min_lr, warmup_steps=t.warmup_steps,
        val_max_sentences=t.val_max_sentences, max_len_a=cfg.decode.max_len_a, max_len_b=cfg.decode.max_len_b,
    )
    # Under DDP, Lightning re-runs this module in one process per extra device: only rank 0 creates
    # the MLflow run and writes outputs (Lightning's logger already logs from rank 0 only).
    rank_zero = is_rank_zero()
    uri, run_id = tracking.start_run(cfg) if rank_zero else (tracking.tracking_uri(cfg), None)
    if rank_zero:
        print(f"mlflow: run {run_id} in {tracking.redact(uri)}")
    logger = MLFlowLogger(tracking_uri=uri, run_id=run_id, experiment_name=cfg.mlflow.experiment_name)
    meta = {"model": model_cfg, "src_vocab_size": dm.src_vocab_size, "tgt_vocab_size": dm.tgt_vocab_size,
            "src": cfg.data.src, "tgt": cfg.data.tgt}
    history, throughput = History(), Throughput(PAD_ID)
    keep = KeepLastWeights(t.average_last) if t.average_last > 0 else None
    map_sources = [s for s in dm.dataset("valid").src[:N_ATTENTION_MAPS]]
    start = time.time()
    with contextlib.ExitStack() as stack:
        if rank_zero:
            ckpt_dir = stack.enter_context(atomic_path(out / "checkpoints"))
            maps_dir = stack.enter_context(atomic_path(out / "attention"))
        else:  # other ranks write nothing that lasts
            ckpt_dir = maps_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="valid_bleu", mode="max",
                                     save_top_k=1, save_last=True, enable_version_counter=False)
        callbacks = [checkpoint, history, throughput, SaveModelConfig(meta),
                     EarlyStopping("valid_bleu", mode="max", patience=t.early_stopping_patience),
                     AttentionMaps(map_sources, dm.sp_src, dm.sp_tgt, maps_dir, cfg.decode.max_len_a, cfg.decode.max_len_b)]
        trainer = L.Trainer(
            **OmegaConf.to_container(t.lightning, resolve=True),
            logger=logger,
            callbacks=callbacks + ([keep] if keep else []),
            num_sanity_val_steps=0,
            use_distributed_sampler=False,
            default_root_dir=ckpt_dir.parent,
        )
        trainer.fit(module, datamodule=dm)
        if not rank_zero:
            return
        if not (ckpt_dir / "last.ckpt").exists():  # stopped (max_time) before any checkpoint
            trainer.save_checkpoint(ckpt_dir / "last.ckpt")
        if not (ckpt_dir / "best.ckpt").exists():  # no validation ran: the last weights are the best known
            shutil.copyfile(ckpt_dir / "last.ckpt", ckpt_dir / "best.ckpt")
        if keep is not None and keep.weights:
            torch.save({"state_dict": keep.average(), "seq2seq": {**meta, "averaged_epochs": len(keep.weights)}},
                       ckpt_dir / "averaged.ckpt")
        maps_dir.mkdir(exist_ok=True)
    summary = {
        "best_valid_bleu": round(float(checkpoint.best_model_score or 0.0), 4),
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(time.time() - start, 1),
        "train_tgt_tokens": throughput.tokens,
        "train_tgt_tokens_per_s": round(throughput.tokens_per_second, 1),
    }
    write_text(out / "history.csv", history.csv())
    write_json(metrics, summary)
    write_json(out / "mlflow_run.json", {"run_id": run_id, "tracking_uri": tracking.redact(uri)})
    mlc = tracking.client(uri)
    for key, value in summary.items():
        mlc.log_metric(run_id, f"train.{key}", value)
    with tempfile.TemporaryDirectory() as tmp:
        art = Path(tmp)
        plot_history(history.rows, art / "learning_curves.png")
        (art / "params.yaml").write_text(OmegaConf.to_yaml(cfg), encoding="utf-8")
        for p in [art / "learning_curves.png", art / "params.yaml", out / "history.csv", *sorted(tokenizer.glob("*.model"))]:
            mlc.log_artifact(run_id, str(p), artifact_path="train")
    print(json.dumps(summary))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"))
    parser.add_argument("--out", type=Path, default=Path("data/train"))
    parser.add_argument("--metrics", type=Path, default=Path("data/metrics/train.json"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.data, args.tokenizer, args.out, args.metrics))


if __name__ == "__main__":
    main()
