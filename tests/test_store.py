"""The token store: what the encode stage writes is SentencePiece's ids of every line, read back by
memory map, and batching over it gives the batches the in-memory lists gave before it."""

import json
import random

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from seq2seq.data.batching import ParallelDataset, TokenBatchSampler, collate, round_up
from seq2seq.data.sentencepiece import load_sp, train_sentencepiece
from seq2seq.data.store import open_split, write_store
from seq2seq.errors import DataError
from seq2seq.vocab import EOS_ID

WORDS = "der die das ein Haus Hund Katze läuft schnell über den grünen Garten und Kinder spielen".split()


def corpus(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))) for _ in range(n)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    work = tmp_path_factory.mktemp("store")
    sizes = {"train": 700, "valid": 60}
    text = {(split, lang): corpus(n, seed=len(lang) * n + ord(lang[0])) for split, n in sizes.items() for lang in ("de", "en")}
    for (split, lang), lines in text.items():
        (work / f"{split}.{lang}").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (work / "tok").mkdir()
    tok_cfg = OmegaConf.create({"model_type": "unigram", "vocab_size": 60, "character_coverage": 1.0,
                                "input_sentence_size": 100000})
    train_sentencepiece(text["train", "de"], work / "tok" / "src", tok_cfg, seed=0)
    train_sentencepiece(text["train", "en"], work / "tok" / "tgt", tok_cfg, seed=0)
    (work / "encoded").mkdir()
    meta = write_store(work, work / "tok", "de", "en", work / "encoded", threads=2)
    return work, text, meta


def test_the_store_holds_sentencepieces_ids_of_every_line(store):
    work, text, meta = store
    assert meta["sentences"] == {"train": 700, "valid": 60} and meta["dtype"] == {"src": "uint16", "tgt": "uint16"}
    for split in ("train", "valid"):
        arrays = open_split(work / "encoded", split)
        for side, lang in (("src", "de"), ("tgt", "en")):
            ids, offsets = arrays[side]
            assert isinstance(ids, np.memmap) and isinstance(offsets, np.memmap)  # mapped, not read
            expected = load_sp(work / "tok", side).encode(text[split, lang], out_type=int)
            assert [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(len(expected))] == expected
            assert meta["tokens"][f"{split}.{side}"] == sum(map(len, expected)) == len(ids)


def test_the_dataset_reads_pairs_as_collate_lays_them_out(store):
    work, text, _ = store
    sp_src, sp_tgt = load_sp(work / "tok", "src"), load_sp(work / "tok", "tgt")
    ds = ParallelDataset.open(work / "encoded", "train", max_len=8)
    for i in (0, 1, 699):
        src, tgt = sp_src.encode(text["train", "de"][i]), sp_tgt.encode(text["train", "en"][i])
        assert ds[i] == (i, src[:7] + [EOS_ID], tgt[:7])  # max_len pieces at most, EOS included
        assert ds.lengths(i) == (len(ds.source(i)), len(ds.target(i)) + 1)


def reference_batches(src: list[list[int]], tgt: list[list[int]], batch_tokens: int, seed: int, pad_multiple: int,
                      max_len: int) -> list[list[int]]:
    """The batching of the version before the token store, on lists (kept as the regression oracle)."""
    src = [s[: max_len - 1] + [EOS_ID] for s in src]
    tgt = [t[: max_len - 1] for t in tgt]
    order = list(range(len(src)))
    random.Random(seed).shuffle(order)
    lengths = lambda i: (len(src[i]), len(tgt[i]) + 1)  # noqa: E731
    order.sort(key=lambda i: (round_up(lengths(i)[0], pad_multiple), round_up(lengths(i)[1], pad_multiple), *lengths(i)))
    batches, batch, longest = [], [], 0
    for i in order:
        n = round_up(max(lengths(i)), pad_multiple)
        if batch and max(longest, n) * (len(batch) + 1) > batch_tokens:
            batches.append(batch)
            batch, longest = [], 0
        batch.append(i)
        longest = max(longest, n)
    return batches + ([batch] if batch else [])


@pytest.mark.parametrize("batch_tokens, seed, pad_multiple, max_len", [(200, 1, 1, 256), (300, 7, 8, 12), (64, 3, 4, 256)])
def test_batches_from_the_store_are_the_batches_lists_gave(store, batch_tokens, seed, pad_multiple, max_len):
    work, text, _ = store
    sp_src, sp_tgt = load_sp(work / "tok", "src"), load_sp(work / "tok", "tgt")
    expected = reference_batches(sp_src.encode(text["train", "de"]), sp_tgt.encode(text["train", "en"]), batch_tokens,
                                 seed, pad_multiple, max_len)
    ds = ParallelDataset.open(work / "encoded", "train", max_len)
    sampler = TokenBatchSampler(ds, batch_tokens, True, seed, pad_multiple=pad_multiple)
    assert [b.tolist() for b in sampler.batches] == expected
    sampler.set_epoch(2)
    reordered = list(expected)
    random.Random(seed * 100_003 + 2).shuffle(reordered)
    assert list(sampler) == reordered  # and the same order each epoch


def test_dataloader_workers_read_the_store(store):
    work, _, _ = store
    ds = ParallelDataset.open(work / "encoded", "valid")
    sampler = TokenBatchSampler(ds, 150, False)
    batches = [list(DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=w)) for w in (0, 2)]
    assert len(batches[0]) == len(batches[1]) > 1
    for a, b in zip(*batches):
        assert torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out)


def test_misaligned_sides_and_a_missing_or_stale_store_are_refused(store, tmp_path):
    work, text, _ = store
    (tmp_path / "train.de").write_text("a\nb\n")
    (tmp_path / "train.en").write_text("a\n")
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match=r"train\.de has 2 lines but .*train\.en has 1"):
        write_store(tmp_path, work / "tok", "de", "en", tmp_path / "out")
    with pytest.raises(DataError, match="no token store .run the encode stage"):
        ParallelDataset.open(tmp_path / "nothing", "train")
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "meta.json").write_text(json.dumps({"format": 0, "sentences": {"train": 1}}))
    with pytest.raises(DataError, match="format 0, this version reads 1: rerun the encode stage"):
        ParallelDataset.open(stale, "train")
