"""Lightning callbacks of the train stage: checkpoints, curves, throughput, thread budget, progress lines,
weights averaging, attention maps."""

from __future__ import annotations

import collections
import csv
import io
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar

from seq2seq import threads

HISTORY_COLUMNS = ["epoch", "step", "train_loss", "valid_loss", "valid_ppl", "valid_bleu", "lr"]


def epoch_checkpoints(state_dir: Path) -> tuple[ModelCheckpoint, ModelCheckpoint]:
    """`best.ckpt` (highest valid BLEU so far) and `last.ckpt` (every epoch) in `state_dir`, written at the end of
    each training epoch. Two callbacks: since Lightning 2.6 one ModelCheckpoint's `save_last` writes last.ckpt only
    when it also saved a best one, so a resumed run (or `decode.checkpoint=last`) would go back to the last epoch
    that improved."""
    best = ModelCheckpoint(dirpath=state_dir, filename="best", monitor="valid_bleu", mode="max", save_top_k=1,
                           enable_version_counter=False, save_on_train_epoch_end=True)
    last = ModelCheckpoint(dirpath=state_dir, filename="last", monitor=None, save_top_k=1,
                           enable_version_counter=False, save_on_train_epoch_end=True)
    return best, last


class History(Callback):
    """One row of curves an epoch (validation has run by on_train_epoch_end)."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step,
               "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        for key, name in [("train_loss", "train_loss_epoch"), ("valid_loss", "valid_loss"),
                          ("valid_ppl", "valid_ppl"), ("valid_bleu", "valid_bleu")]:
            row[key] = round(float(m[name]), 6) if name in m else None
        self.rows.append(row)

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state["rows"])

    def plot(self, path: Path) -> None:
        """The learning curves as a PNG: train and valid loss, valid BLEU, by epoch."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [r["epoch"] for r in self.rows]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for key in ("train_loss", "valid_loss"):
            ax1.plot(epochs, [r[key] for r in self.rows], marker="o", label=key)
        ax1.set_xlabel("epoch"), ax1.set_ylabel("cross-entropy"), ax1.legend()
        ax2.plot(epochs, [r["valid_bleu"] for r in self.rows], marker="o", color="tab:green")
        ax2.set_xlabel("epoch"), ax2.set_ylabel("valid BLEU (greedy)")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buf.getvalue()


class Throughput(Callback):
    """Target tokens (padding excluded) per second of training steps (validation not counted)."""

    def __init__(self):
        self.tokens, self.seconds, self._start = 0, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds += time.perf_counter() - self._start
        self.tokens += batch.n_tgt

    def state_dict(self) -> dict:
        return {"tokens": self.tokens, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.tokens, self.seconds = state["tokens"], state["seconds"]

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class ThreadBudget(Callback):
    """Takes this stage's share of the cores again every `every_s` seconds of training and
    validation (seq2seq.threads.rebalance: other stages of the repository may have started or ended)
    and logs the thread count as the metric `threads`: at the start, at every change, at each
    epoch's end. `used` holds every count a step ran with."""

    def __init__(self, every_s: float = 5.0):
        self.every_s, self.used, self._last, self._threads = every_s, set(), 0.0, 0

    def _check(self, trainer, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        count = threads.rebalance()
        if count != self._threads:
            self._threads = count
            self._log(trainer)

    def _log(self, trainer) -> None:
        if trainer.logger is not None:
            trainer.logger.log_metrics({"threads": float(self._threads)}, step=trainer.global_step)

    def on_train_start(self, trainer, pl_module) -> None:
        self._check(trainer, force=True)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._check(trainer)
        self.used.add(self._threads)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._check(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._log(trainer)


def clock(seconds: float) -> str:
    """1:02:03 or 2:03."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress(Callback):
    """Progress lines on `stream` (stdout) when it is not a terminal, where Lightning's progress bar
    is not seen (DVC's queue logs, CI, `> log`): one at each epoch's end, after validation, and one
    every `every_s` seconds within an epoch, so that a slow run does not look dead:

        epoch 3/30 done  step 780  tgt tok/s 3,865  elapsed 4:05  valid BLEU 23.41  threads 2

    Tokens/s are the epoch's so far (training steps only, as Throughput counts them)."""

    def __init__(self, throughput: Throughput, every_s: float = 60.0, stream=None):
        self.throughput, self.every_s, self.stream = throughput, every_s, stream
        self.enabled, self._start, self._last, self._epoch_at = False, 0.0, 0.0, (0, 0.0)

    def on_train_start(self, trainer, pl_module) -> None:
        stream = self.stream or sys.stdout
        self.enabled = trainer.is_global_zero and not (hasattr(stream, "isatty") and stream.isatty())
        self._start = self._last = time.monotonic()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_at = (self.throughput.tokens, self.throughput.seconds)

    def _line(self, trainer, what: str, extra: str = "") -> None:
        tokens, seconds = self.throughput.tokens - self._epoch_at[0], self.throughput.seconds - self._epoch_at[1]
        rate = f"{tokens / seconds:,.0f}" if seconds else "n/a"
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        print(f"epoch {trainer.current_epoch + 1}{epochs} {what}  step {trainer.global_step}  tgt tok/s {rate}  "
              f"elapsed {clock(time.monotonic() - self._start)}{extra}  threads {torch.get_num_threads()}",
              file=self.stream or sys.stdout, flush=True)
        self._last = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.enabled and time.monotonic() - self._last >= self.every_s:
            total = trainer.num_training_batches
            self._line(trainer, f"batch {batch_idx + 1}" + (f"/{total}" if total != float("inf") else ""))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.enabled:
            bleu = trainer.callback_metrics.get("valid_bleu")
            self._line(trainer, "done", f"  valid BLEU {float(bleu):.2f}" if bleu is not None else "")


class EpochProgressBar(RichProgressBar):
    """Lightning's progress bar, counting epochs from 1: "Epoch 2/2" in a run's last epoch (Lightning's
    own says "Epoch 1/1", zero-based)."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"Epoch {current_epoch + 1}" + (f"/{self.trainer.max_epochs}" if (self.trainer.max_epochs or -1) > 0 else "")
        return f"{text:{len(self.validation_description)}}"


class KeepLastWeights(Callback):
    """Keeps CPU copies of the weights at the end of the last `n` epochs, for averaging."""

    def __init__(self, n: int):
        self.weights: collections.deque[dict[str, torch.Tensor]] = collections.deque(maxlen=n)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.weights.append({k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()})

    def state_dict(self) -> dict:
        return {"weights": list(self.weights)}

    def load_state_dict(self, state: dict) -> None:
        self.weights.clear()
        self.weights.extend(state["weights"])

    def average(self) -> dict[str, torch.Tensor]:
        """Element-wise mean of the kept state dicts (integer buffers are taken from the last)."""
        last = self.weights[-1]
        return {k: torch.stack([w[k] for w in self.weights]).mean(0) if v.is_floating_point() else v
                for k, v in last.items()}


class ReseedEachStep(Callback):
    """Seeds torch before every training micro-batch from (seed, micro-batch, rank), so that dropout
    draws the same numbers whether the run went through or was resumed from a checkpoint (whatever
    else used the global generator in between, e.g. a DataLoader drawing its base seed).

    The micro-batch is the batch's index across epochs (Lightning's `total_batch_idx`, restored from
    the checkpoint with the loop's progress): with `accumulate_grad_batches` > 1 the micro-batches
    of one optimizer step draw different masks, and so do the DDP ranks (`global_rank`). With one
    process and no accumulation the index is the optimizer step, the seed of earlier versions."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        torch.manual_seed(micro_batch_seed(self.seed, trainer.fit_loop.epoch_loop.total_batch_idx, trainer.global_rank))


def micro_batch_seed(seed: int, micro_batch: int, rank: int) -> int:
    """The torch seed of one micro-batch on one rank. Torch's CPU generator (mt19937) keeps only a
    seed's low 32 bits: these are distinct for every (micro-batch, rank) of a run while micro-batches
    number fewer than 2**24 (16.7 million) and ranks fewer than 256."""
    return (seed * 1_000_003 + micro_batch + (rank << 24)) % (1 << 32)


class SaveModelConfig(Callback):
    """Put what rebuilding the model needs into every checkpoint (read back by `load_model`)."""

    def __init__(self, meta: dict):
        self.meta = meta

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["seq2seq"] = self.meta


class AttentionMaps(Callback):
    """After each validation, heatmaps of the attention for a few fixed valid sentences (greedy
    output): PNGs in `out_dir` (DVC image plots, last epoch) and MLflow artifacts per epoch."""

    def __init__(self, sentences: list[list[int]], sp_src, sp_tgt, out_dir: Path,
                 max_len_a: float = 1.5, max_len_b: int = 10):
        self.sentences, self.sp_src, self.sp_tgt, self.out_dir = sentences, sp_src, sp_tgt, Path(out_dir)
        self.max_len_a, self.max_len_b = max_len_a, max_len_b

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        from seq2seq.inference.search import greedy_search

        model = pl_module.model
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for i, ids in enumerate(self.sentences):
            src = torch.tensor([ids], device=pl_module.device)  # [1, S]
            lens = torch.tensor([len(ids)], device=pl_module.device)  # [1]
            hyp = greedy_search(model, src, lens, self.max_len_a, self.max_len_b)[0]
            tgt_in = torch.tensor([[model.bos_id] + hyp], device=pl_module.device)  # [1, T]
            _, attention = model(src, lens, tgt_in, return_attention=True)  # [1, T, S]
            path = self.out_dir / f"sentence_{i}.png"
            plot_attention(attention[0].float().cpu(), [self.sp_src.id_to_piece(t) for t in ids],
                           [self.sp_tgt.id_to_piece(t) for t in hyp] + ["</s>"], path,
                           title=f"epoch {trainer.current_epoch + 1}")
            if hasattr(trainer.logger, "log_artifact"):  # seq2seq.tracking.runs.TolerantMLFlowLogger
                trainer.logger.log_artifact(str(path), f"attention/epoch_{trainer.current_epoch + 1:03d}")


def plot_attention(weights: torch.Tensor, src: list[str], tgt: list[str], path: Path, title: str = "") -> None:
    """weights [T, S]: one row per target piece, one column per source piece."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(src) + 2), max(3, 0.3 * len(tgt) + 1.5)))
    ax.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src)), src, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tgt)), tgt, fontsize=8)
    ax.set_xlabel("source"), ax.set_ylabel("output"), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
