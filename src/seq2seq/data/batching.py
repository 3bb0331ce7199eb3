"""Token-store pairs → length-bucketed batches of at most `batch_tokens` tokens, padded to a
multiple of `pad_multiple`. Plain PyTorch (Dataset, Sampler, collate) over the memory-mapped token
store (seq2seq.data.store): lengths come from its offsets, so batching reads no ids, and a sentence's
ids are read when its batch is. Lightning's data module wraps it (seq2seq.training.datamodule)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from seq2seq.data.store import open_split
from seq2seq.errors import DataError
from seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID


class ParallelDataset(Dataset):
    """Pairs of id sequences (flat ids and offsets per side: memory maps of the token store, or
    arrays); the source gets EOS appended, both sides are truncated to `max_len` pieces."""

    def __init__(self, src: tuple[np.ndarray, np.ndarray], tgt: tuple[np.ndarray, np.ndarray],
                 max_len: int | None = None):
        (self._src, self._src_off), (self._tgt, self._tgt_off) = src, tgt
        if len(self._src_off) != len(self._tgt_off):
            raise DataError(f"source and target differ in length: {len(self._src_off) - 1} vs {len(self._tgt_off) - 1}")
        self.cut = (max_len or 10**9) - 1  # pieces kept of each side
        # lengths as `collate` lays them out: source + EOS, target + BOS (or EOS)
        self.src_lens = np.minimum(np.diff(self._src_off), self.cut).astype(np.int32) + 1  # [N]
        self.tgt_lens = np.minimum(np.diff(self._tgt_off), self.cut).astype(np.int32) + 1  # [N]

    @classmethod
    def open(cls, folder: str | Path, split: str, max_len: int | None = None) -> "ParallelDataset":
        """A split of the token store in `folder`, memory-mapped."""
        arrays = open_split(Path(folder), split)
        return cls(arrays["src"], arrays["tgt"], max_len)

    @classmethod
    def from_lists(cls, src: list[list[int]], tgt: list[list[int]], max_len: int | None = None) -> "ParallelDataset":
        """In memory, from lists of ids (tests, small tools)."""
        def flat(seqs):
            ids = np.fromiter((t for s in seqs for t in s), np.int64)
            return ids, np.concatenate([[0], np.cumsum([len(s) for s in seqs], dtype=np.int64)])
        return cls(flat(src), flat(tgt), max_len)

    def __len__(self) -> int:
        return len(self.src_lens)

    def source(self, i: int) -> list[int]:
        a = int(self._src_off[i])
        return self._src[a : min(int(self._src_off[i + 1]), a + self.cut)].tolist() + [EOS_ID]

    def target(self, i: int) -> list[int]:
        a = int(self._tgt_off[i])
        return self._tgt[a : min(int(self._tgt_off[i + 1]), a + self.cut)].tolist()

    def __getitem__(self, i: int) -> tuple[int, list[int], list[int]]:
        return i, self.source(i), self.target(i)

    def lengths(self, i: int) -> tuple[int, int]:
        """Source and target length of pair i as `collate` lays them out (the target gains BOS or EOS)."""
        return int(self.src_lens[i]), int(self.tgt_lens[i])

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
        order = np.arange(len(dataset), dtype=np.int64)
        if shuffle:
            random.Random(seed).shuffle(order)  # the permutation random.shuffle gives a list

        # sorted on padded source length, padded target length, then the exact lengths; a stable
        # sort, so ties keep the shuffled order
        src, tgt = dataset.src_lens[order], dataset.tgt_lens[order]
        order = order[np.lexsort((tgt, src, round_up(tgt, pad_multiple), round_up(src, pad_multiple)))]
        tokens = round_up(np.maximum(dataset.src_lens, dataset.tgt_lens)[order], pad_multiple).tolist()
        starts, longest = [0], 0
        for k, n in enumerate(tokens):
            if k > starts[-1] and max(longest, n) * (k - starts[-1] + 1) > batch_tokens:
                starts.append(k)
                longest = 0
            longest = max(longest, n)
        # views of one array: a few bytes a batch, whatever the corpus size
        self.batches: list[np.ndarray] = np.split(order, starts[1:]) if len(order) else []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _epoch_batches(self) -> list[np.ndarray]:
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
        for batch in self._epoch_batches():
            yield batch.tolist()

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
