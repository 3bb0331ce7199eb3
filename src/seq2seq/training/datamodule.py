"""The Lightning data module: serves seq2seq.data.batching's batches of the encode stage's token
store, sharded across DDP ranks; the tokenizer stage's models detokenize, and the prepare stage's
valid text is the reference for validation BLEU. It never downloads or tokenizes."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from seq2seq.data.batching import ParallelDataset, TokenBatchSampler, collate
from seq2seq.data.sentencepiece import load_sp
from seq2seq.io import read_lines


class TranslationDataModule(L.LightningDataModule):
    def __init__(self, data_dir: str | Path, tokenizer_dir: str | Path, store_dir: str | Path, src: str, tgt: str,
                 batch_tokens: int = 4096, max_len: int = 256, num_workers: int = 0, seed: int = 0,
                 val_max_sentences: int | None = None, pad_multiple: int = 1):
        super().__init__()
        self.data_dir, self.tokenizer_dir, self.store_dir = Path(data_dir), Path(tokenizer_dir), Path(store_dir)
        self.src_lang, self.tgt_lang = src, tgt
        self.batch_tokens, self.max_len, self.num_workers, self.seed = batch_tokens, max_len, num_workers, seed
        self.val_max_sentences, self.pad_multiple = val_max_sentences, pad_multiple
        self.sp_src = load_sp(self.tokenizer_dir, "src")
        self.sp_tgt = load_sp(self.tokenizer_dir, "tgt")
        self.valid_refs = read_lines(self.data_dir / f"valid.{tgt}")  # raw text, for BLEU

    @property
    def src_vocab_size(self) -> int:
        return self.sp_src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.sp_tgt.get_piece_size()

    def detokenize(self, ids: list[int]) -> str:
        return self.sp_tgt.decode(ids)

    def dataset(self, split: str, max_len: int | None = None) -> ParallelDataset:
        return ParallelDataset.open(self.store_dir, split, max_len)

    def setup(self, stage: str | None = None) -> None:
        self.train_set = self.dataset("train", self.max_len)
        self.valid_set = self.dataset("valid")

    def _loader(self, dataset: ParallelDataset, shuffle: bool) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        epoch_fn = (lambda: self.trainer.current_epoch) if self.trainer else None
        sampler = TokenBatchSampler(dataset, self.batch_tokens, shuffle, self.seed, rank, world, epoch_fn, even=shuffle,
                                    pad_multiple=self.pad_multiple)
        pad = functools.partial(collate, pad_multiple=self.pad_multiple)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=pad, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid_set, shuffle=False)
