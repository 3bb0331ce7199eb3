"""Parallel text → SentencePiece ids → length-bucketed batches of at most `batch_tokens` tokens,
padded to a multiple of `pad_multiple`. Encoded ids are cached on disk, keyed by the hash of the
text and the model. Plain PyTorch (Dataset, Sampler, collate): Lightning's data module wraps it
(seq2seq.training.datamodule)."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sentencepiece as spm
import torch
from torch.utils.data import Dataset, Sampler

from seq2seq.errors import DataError
from seq2seq.io import read_lines
from seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID


def encode_file(sp: spm.SentencePieceProcessor, path: Path, cache_dir: Path | None) -> list[list[int]]:
    """Pieces ids of every line of `path` (no BOS/EOS), cached under `cache_dir`."""
    key = hashlib.sha256(Path(path).read_bytes() + sp.serialized_model_proto()).hexdigest()[:24]
    cached = cache_dir / f"{Path(path).name}.{key}.pt" if cache_dir else None
    if cached is not None and cached.exists():
        return torch.load(cached, weights_only=True)
    ids = sp.encode(read_lines(path), out_type=int)
    if cached is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")  # DDP ranks may encode at the same time
        torch.save(ids, tmp)
        tmp.replace(cached)
    return ids


class ParallelDataset(Dataset):
    """Pairs of id lists; source gets EOS appended, both sides truncated to `max_len` pieces."""

    def __init__(self, src: list[list[int]], tgt: list[list[int]], max_len: int | None = None):
        if len(src) != len(tgt):
            raise DataError(f"source and target differ in length: {len(src)} vs {len(tgt)}")
        cut = max_len or 10**9
        self.src = [s[: cut - 1] + [EOS_ID] for s in src]
        self.tgt = [t[: cut - 1] for t in tgt]

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[int, list[int], list[int]]:
        return i, self.src[i], self.tgt[i]

    def lengths(self, i: int) -> tuple[int, int]:
        """Source and target length of pair i as `collate` lays them out (the target gains BOS or EOS)."""
        return len(self.src[i]), len(self.tgt[i]) + 1

    def num_tokens(self, i: int) -> int:
        return max(self.lengths(i))


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class TokenBatchSampler(Sampler[list[int]]):
    """Batches of similar length holding at most `batch_tokens` tokens (padding included, lengths
    rounded up to `pad_multiple`, as `collate` pads them).

    Sentences are sorted by their padded source length, then padded target length (of
    `ParallelDataset.lengths`), then the exact lengths, ties broken by a seeded shuffle: within
    one padded source length, targets of one padded length go together, so a batch's targets fill
    the length they are padded to (sorting on exact lengths would mix the target lengths of the
    several source lengths that pad alike). Then they are cut into batches, and the
    batch order is shuffled anew each epoch from (seed, epoch). Under DDP each rank takes every
    `world_size`-th batch; with `even` (training: every rank must make the same number of
    gradient steps) all ranks get the same number of batches and up to world_size - 1 batches an
    epoch are left out, without it (validation) every batch goes to exactly one rank.
    """

    def __init__(self, dataset: ParallelDataset, batch_tokens: int, shuffle: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1, epoch_fn: Callable[[], int] | None = None, even: bool = True,
                 pad_multiple: int = 1):
        self.shuffle, self.seed, self.epoch, self.epoch_fn, self.even = shuffle, seed, 0, epoch_fn, even
        self.rank, self.world_size = rank, world_size
        order = list(range(len(dataset)))
        if shuffle:
            random.Random(seed).shuffle(order)

        def padded_then_exact(i: int) -> tuple[int, int, int, int]:
            src, tgt = dataset.lengths(i)
            return round_up(src, pad_multiple), round_up(tgt, pad_multiple), src, tgt

        order.sort(key=padded_then_exact)
        self.batches: list[list[int]] = []
        batch, longest = [], 0
        for i in order:
            n = round_up(dataset.num_tokens(i), pad_multiple)
            if batch and max(longest, n) * (len(batch) + 1) > batch_tokens:
                self.batches.append(batch)
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, n)
        if batch:
            self.batches.append(batch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _epoch_batches(self) -> list[list[int]]:
        batches = list(self.batches)
        if self.shuffle:
            random.Random(self.seed * 100_003 + self.epoch).shuffle(batches)
        return batches[self.rank :: self.world_size][: len(self)]

    def __iter__(self):
        # A generator: the order is drawn at the first batch, not when the iterator is made
        # (Lightning may make it early), from the trainer's epoch when there is one, so a
        # resumed epoch gets the same order as in an uninterrupted run.
        if self.epoch_fn is not None:
            self.epoch = self.epoch_fn()
        yield from self._epoch_batches()

    def __len__(self) -> int:
        if self.even:
            return len(self.batches) // self.world_size
        return len(self.batches[self.rank :: self.world_size])


@dataclass
class Batch:
    ids: torch.Tensor       # [B] sentence indices in the split
    src: torch.Tensor       # [B, S] source ids, EOS-terminated, PAD-padded
    src_lens: torch.Tensor  # [B]
    tgt_in: torch.Tensor    # [B, T] BOS + target
    tgt_out: torch.Tensor   # [B, T] target + EOS
    n_tgt: int              # target tokens (EOS included, padding not): the loss's and throughput's count

    def to(self, device) -> "Batch":
        tensors = (self.ids, self.src, self.src_lens, self.tgt_in, self.tgt_out)
        return Batch(*(t.to(device) for t in tensors), n_tgt=self.n_tgt)


def _pad(seqs: list[list[int]], multiple: int = 1) -> torch.Tensor:
    out = torch.full((len(seqs), round_up(max(len(s) for s in seqs), multiple)), PAD_ID, dtype=torch.long)  # [B, L]
    for row, s in zip(out, seqs):
        row[: len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate(items: list[tuple[int, list[int], list[int]]], pad_multiple: int = 1) -> Batch:
    """Pads source and target to the longest in the batch, rounded up to `pad_multiple`: a few
    lengths instead of dozens mean fewer distinct shapes for the kernels (oneDNN builds and caches
    one primitive per shape)."""
    ids, src, tgt = zip(*items)
    return Batch(
        ids=torch.tensor(ids, dtype=torch.long),
        src=_pad(list(src), pad_multiple),
        src_lens=torch.tensor([len(s) for s in src], dtype=torch.long),
        tgt_in=_pad([[BOS_ID] + t for t in tgt], pad_multiple),
        tgt_out=_pad([t + [EOS_ID] for t in tgt], pad_multiple),
        n_tgt=sum(len(t) + 1 for t in tgt),
    )
