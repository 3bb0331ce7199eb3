"""Stage 6: beam-search the test set with the best checkpoint and score it with sacreBLEU.

    python -m seq2seq.stages.evaluate --params params.yaml --data data/prepared --tokenizer data/tokenizer \
        --checkpoints data/train/checkpoints --out data/evaluate --metrics metrics/test.json

`decode.checkpoint` picks the checkpoint: best (by valid BLEU), last, or averaged.

Hypotheses are detokenized with SentencePiece and scored against the raw references: BLEU,
chrF and TER, each with its sacreBLEU signature (the headline scores), and `bleu_tok_lc`, BLEU on
Moses-tokenized lowercased text as published IWSLT'14 figures are computed (seq2seq.metrics).

This stage touches no MLflow store, so that DVC may restore it from its run cache: the track
stage, which runs every time, puts its scores and the model into MLflow (seq2seq.stages.track).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from seq2seq.command import run_stage
from seq2seq.config.params import load_params
from seq2seq.errors import DataError
from seq2seq.inference.translator import Translator
from seq2seq.io import atomic_path, read_lines, write_json
from seq2seq.metrics import score


def run(cfg, data: Path, tokenizer: Path, checkpoints: Path, out: Path, metrics: Path) -> None:
    checkpoint = checkpoints / f"{cfg.decode.checkpoint}.ckpt"
    if not checkpoint.exists():
        raise DataError(f"{checkpoint}: checkpoint not found (run the train stage)")
    translator = Translator.load(checkpoint, tokenizer, "cuda" if torch.cuda.is_available() else "cpu")
    sources = read_lines(data / f"test.{cfg.data.src}")
    refs = read_lines(data / f"test.{cfg.data.tgt}")
    if len(sources) != len(refs):
        raise DataError(f"{data}/test.{cfg.data.src} has {len(sources)} lines but {data}/test.{cfg.data.tgt} has {len(refs)}")
    d = cfg.decode
    hyps = translator.translate(sources, beam_size=d.beam_size, length_penalty=d.length_penalty, max_len_a=d.max_len_a,
                                max_len_b=d.max_len_b, batch_size=d.batch_size, progress=True)
    scores = score(hyps, refs, cfg.data.tgt)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "hyps.txt").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    write_json(metrics, scores)
    print(json.dumps(scores, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seq2seq.stages.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"))
    parser.add_argument("--checkpoints", type=Path, default=Path("data/train/checkpoints"))
    parser.add_argument("--out", type=Path, default=Path("data/evaluate"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/test.json"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.data, args.tokenizer, args.checkpoints, args.out, args.metrics))


if __name__ == "__main__":
    main()
