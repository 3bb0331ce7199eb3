"""The LightningModule: loss, validation BLEU and optimiser wiring around a plain nn.Module."""

from __future__ import annotations

import functools
import math
import warnings
from typing import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from seq2seq.data.batching import Batch
from seq2seq.inference.search import greedy_search
from seq2seq.metrics import corpus_bleu


def sequence_loss(logits: torch.Tensor, target: torch.Tensor, pad_id: int, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean token cross-entropy over non-pad positions. logits [B, T, V], target [B, T]."""
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),  # [B*T, V]
        target.reshape(-1),                   # [B*T]
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor, target: torch.Tensor, pad_id: int) -> torch.Tensor:
    """R-Drop's consistency term (Wu et al., 2021, eq. 2): (KL(Pa || Pb) + KL(Pb || Pa)) / 2 for each
    target token, averaged over the non-pad ones; in fp32. logits_a, logits_b [B, T, V], target [B, T]."""
    log_a = F.log_softmax(logits_a.float(), dim=-1)  # [B, T, V]
    log_b = F.log_softmax(logits_b.float(), dim=-1)
    kl = (log_a.exp() * (log_a - log_b)).sum(-1) + (log_b.exp() * (log_b - log_a)).sum(-1)  # [B, T]
    keep = (target != pad_id).to(kl.dtype)  # [B, T]; a product, not a boolean index: one graph for torch.compile
    return 0.5 * (kl * keep).sum() / keep.sum()


@functools.cache
def compiled_sequence_loss() -> Callable[..., torch.Tensor]:
    """`sequence_loss` through torch.compile (Inductor, one graph for every batch shape).

    Eagerly, the loss over [B*T, V] logits is about eight full passes over them (cast to fp32,
    log-softmax, NLL, the smoothing sum, and as many backward); compiled, a few fused loops. On
    2 CPU cores, 1,900 x 8,000 bf16 logits: 85 ms forward and backward eagerly, 14 ms compiled,
    equal to 1e-6 (README, "Training options"). The first call compiles, about 5 s.
    """
    return torch.compile(sequence_loss, dynamic=True)


@functools.cache
def compiled_symmetric_kl() -> Callable[..., torch.Tensor]:
    """`symmetric_kl` through torch.compile, as `compiled_sequence_loss`: R-Drop's KL is as many passes over
    two [B, T, V] logits."""
    return torch.compile(symmetric_kl, dynamic=True)


class TranslationModule(L.LightningModule):
    """Teacher-forced training with label smoothing; each epoch, valid loss, perplexity and the
    sacreBLEU of greedy decoding on (the first `val_max_sentences` of) the valid set."""

    def __init__(self, model: nn.Module, detokenize: Callable[[list[int]], str], valid_refs: list[str],
                 lr: float = 1e-3, weight_decay: float = 0.0, label_smoothing: float = 0.1,
                 adam_betas: tuple[float, float] = (0.9, 0.999), scheduler: str = "plateau",
                 lr_factor: float = 0.5, lr_patience: int = 1, min_lr: float = 1e-5, warmup_steps: int = 4000,
                 val_max_sentences: int | None = None, max_len_a: float = 1.5, max_len_b: int = 10,
                 compile_loss: bool = False, rdrop_alpha: float = 0.0):
        super().__init__()
        if scheduler not in ("plateau", "inverse_sqrt"):
            raise ValueError(f"scheduler={scheduler!r} is not one of plateau, inverse_sqrt")
        self.model = model
        self.detokenize, self.valid_refs = detokenize, valid_refs
        self.lr, self.weight_decay, self.label_smoothing = lr, weight_decay, label_smoothing
        self.adam_betas, self.scheduler, self.warmup_steps = tuple(adam_betas), scheduler, warmup_steps
        self.lr_factor, self.lr_patience, self.min_lr = lr_factor, lr_patience, min_lr
        self.val_max_sentences = val_max_sentences
        self.max_len_a, self.max_len_b = max_len_a, max_len_b
        self.compile_loss = compile_loss
        self.rdrop_alpha = rdrop_alpha
        self._val_hyps: dict[int, list[int]] = {}
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict | None = None

    def _loss(self, batch: Batch, label_smoothing: float, compiled: bool = False, logits: torch.Tensor | None = None,
              target: torch.Tensor | None = None) -> torch.Tensor:
        target = batch.tgt_out if target is None else target
        if logits is None:
            logits = self.model(batch.src, batch.src_lens, batch.tgt_in)  # [B, T, V]
        return self._compiled_or_eager(compiled, compiled_sequence_loss, sequence_loss,
                                       logits, target, self.model.pad_id, label_smoothing)

    def _compiled_or_eager(self, compiled: bool, compiled_fn: Callable, eager_fn: Callable, *args) -> torch.Tensor:
        """compiled_fn()(*args) when compiled, else (and, with a warning, from then on when compiling fails)
        eager_fn(*args)."""
        if compiled and self.compile_loss:
            try:
                return compiled_fn()(*args)
            except torch._dynamo.exc.BackendCompilerFailed as e:  # e.g. no C++ compiler on this machine
                warnings.warn(f"trainer.compile_loss=true but torch.compile failed, the loss runs eagerly: "
                              f"{str(e).strip().splitlines()[0][:200]}", stacklevel=1)
                self.compile_loss = False
        return eager_fn(*args)

    def _rdrop_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(objective, mean cross-entropy of the two passes, symmetric KL). The batch goes through the
        model twice in one forward, stacked (two dropout masks, as fairseq's R-Drop does); the
        objective is R-Drop's: CE_a + CE_b + alpha * (KL(Pa||Pb) + KL(Pb||Pa)) / 2, per target token."""
        twice = lambda t: torch.cat([t, t])  # noqa: E731  [B, ...] -> [2B, ...]
        logits = self.model(twice(batch.src), twice(batch.src_lens), twice(batch.tgt_in))  # [2B, T, V]
        ce = self._loss(batch, self.label_smoothing, self.compile_loss, logits=logits, target=twice(batch.tgt_out))
        half = batch.src.size(0)
        kl = self._compiled_or_eager(self.compile_loss, compiled_symmetric_kl, symmetric_kl,
                                     logits[:half], logits[half:], batch.tgt_out, self.model.pad_id)
        return 2 * ce + self.rdrop_alpha * kl, ce, kl

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.rdrop_alpha > 0:
            loss, ce, kl = self._rdrop_loss(batch)
            self.log("train_rdrop_kl", kl, on_step=True, on_epoch=True, batch_size=batch.n_tgt, sync_dist=True)
        else:
            loss = ce = self._loss(batch, self.label_smoothing, compiled=self.compile_loss)
        # the cross-entropy, comparable across runs with and without R-Drop (whose objective is larger)
        self.log("train_loss", ce, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch.n_tgt,
                 sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_hyps = {}
        self._val_nll = torch.zeros(2, dtype=torch.float64, device=self.device)  # [summed nll, target tokens]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        nll = self._loss(batch, 0.0)  # plain cross-entropy: perplexity stays meaningful
        self._val_nll += torch.stack([nll.detach().double() * batch.n_tgt, nll.new_tensor(batch.n_tgt).double()])
        keep = batch.ids < (self.val_max_sentences or len(self.valid_refs))  # [B]
        if keep.any():
            # Decoded in fp32 even under bf16/fp16 autocast, as the evaluate stage decodes: valid BLEU
            # scores what will be tested, and on a CPU each decoding step's new shape would otherwise
            # leave a bf16 oneDNN kernel behind (the Transformer's train stage grew past 3 GiB).
            with torch.autocast(self.device.type, enabled=False):
                hyps = greedy_search(self.model, batch.src[keep], batch.src_lens[keep], self.max_len_a,
                                     self.max_len_b)
            self._val_hyps.update(zip(batch.ids[keep].tolist(), hyps))

    def on_validation_epoch_end(self) -> None:
        """valid_loss (token-weighted), valid_ppl and valid_bleu over every valid sentence, each
        scored once: under DDP every batch went to one rank; sums and hypotheses are gathered."""
        hyps, nll = self._val_hyps, self._val_nll
        if self.trainer.world_size > 1:
            gathered = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, hyps)
            hyps = {k: v for part in gathered for k, v in part.items()}
            torch.distributed.all_reduce(nll)
        ids = sorted(hyps)
        bleu = corpus_bleu([self.detokenize(hyps[i]) for i in ids], [self.valid_refs[i] for i in ids])
        loss = float(nll[0] / nll[1]) if nll[1] > 0 else float("nan")
        for name, value in (("valid_bleu", bleu.score), ("valid_loss", loss), ("valid_ppl", math.exp(min(loss, 50.0))),
                            ("valid_sentences", float(len(ids))), ("valid_tokens", float(nll[1]))):
            self.log(name, value, prog_bar=name == "valid_bleu", sync_dist=False, rank_zero_only=False)
        if self.plateau is not None and not self.trainer.sanity_checking:
            self.plateau.step(bleu.score)

    # The plateau scheduler is stepped here, right after valid BLEU exists, and saved with the
    # module: Lightning's own epoch-end stepping comes after the end-of-epoch checkpoint and is
    # skipped on resume, so a resumed run would drift from an uninterrupted one.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.plateau is not None:
            checkpoint["plateau_scheduler"] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._plateau_state = checkpoint.get("plateau_scheduler")

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr, betas=self.adam_betas, weight_decay=self.weight_decay)
        if self.scheduler == "inverse_sqrt":  # linear warm-up, then lr * sqrt(warmup / step)
            warmup = self.warmup_steps
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: min((step + 1) / warmup, (warmup / (step + 1)) ** 0.5)
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(  # cut the lr when valid BLEU stalls
            optimizer, mode="max", factor=self.lr_factor, patience=self.lr_patience, min_lr=self.min_lr
        )
        if self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
        return optimizer
