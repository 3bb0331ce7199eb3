"""Decoding speed of a trained run against the decode batch size, greedy and beam search.

    .venv/bin/python benchmarks/decode_speed.py benchmarks/results/runs/lstm [--batch-sizes 64 128 256]
                                                [--beams 1 5] [--threads 2] [--repeat 3]

RUN is a work folder of benchmarks/multi30k.py (train/checkpoints/best.ckpt, tokenizer/, prepared/,
params.yaml). The test set's source side is decoded `--repeat` times for each (beam, batch size), and
the fastest time is reported with the BLEU of the output (which must not depend on the batch size).
Timings are only comparable on the same, otherwise idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from multi30k import load_trained  # noqa: E402  (this folder is on sys.path when run as a script)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a work folder of benchmarks/multi30k.py, e.g. benchmarks/results/runs/lstm")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    from seq2seq.inference.translator import translate
    from seq2seq.metrics import score

    run = args.run.resolve()
    checkpoint = run / "train" / "checkpoints" / "best.ckpt"
    if not checkpoint.is_file():
        sys.exit(f"error: {checkpoint} not found: RUN must be a trained work folder of benchmarks/multi30k.py")
    torch.set_num_threads(args.threads)
    cfg, model, sp_src, sp_tgt, sources, refs = load_trained(run)
    d = cfg.decode

    print(f"{run.name}: {len(sources)} test sentences, {args.threads} threads, best of {args.repeat}")
    print("| beam | batch size | sentences/s | BLEU |\n| ---: | ---: | ---: | ---: |")
    for beam in args.beams:
        for batch_size in args.batch_sizes:
            best, hyps = float("inf"), []
            for _ in range(args.repeat):
                start = time.perf_counter()
                hyps = translate(model, sp_src, sp_tgt, sources, beam, d.length_penalty, d.max_len_a, d.max_len_b,
                                 batch_size)
                best = min(best, time.perf_counter() - start)
            print(f"| {beam} | {batch_size} | {len(sources) / best:,.1f} | {score(hyps, refs)['bleu']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
