"""Beam search under the GNMT length penalty: test BLEU and output length for each (beam, alpha).

    .venv/bin/python benchmarks/length_penalty.py benchmarks/results/runs/lstm [--beams 5 10]
                                                  [--alphas 0 0.6 1.0 1.5] [--threads 2]

RUN is a trained work folder of benchmarks/multi30k.py. Its test set is decoded with every beam
size and length penalty (decode.length_penalty, GNMT alpha); the table gives sacreBLEU, the number
of output words (whitespace-separated, against the references'), and the decoding time. The CPU
model is printed with the table; times are comparable only within one run on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from multi30k import cpu_model, load_trained  # noqa: E402  (this folder is on sys.path when run as a script)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a trained work folder of benchmarks/multi30k.py")
    parser.add_argument("--beams", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.6, 1.0, 1.5])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from seq2seq.inference.translator import translate
    from seq2seq.metrics import score

    torch.set_num_threads(args.threads)
    cfg, model, sp_src, sp_tgt, sources, refs = load_trained(args.run.resolve())
    d = cfg.decode
    ref_words = sum(len(r.split()) for r in refs)
    print(f"{args.run.name}: {len(sources)} test sentences ({ref_words:,} reference words), {cpu_model()}, "
          f"{args.threads} threads, search code: {Path(sys.modules['seq2seq.inference.search'].__file__).resolve()}")
    print("| beam | alpha | BLEU | output words | decode s |\n| ---: | ---: | ---: | ---: | ---: |")
    for beam in args.beams:
        for alpha in args.alphas:
            start = time.perf_counter()
            hyps = translate(model, sp_src, sp_tgt, sources, beam, alpha, d.max_len_a, d.max_len_b, d.batch_size)
            seconds = time.perf_counter() - start
            words = sum(len(h.split()) for h in hyps)
            print(f"| {beam} | {alpha:g} | {score(hyps, refs)['bleu']:.2f} | {words:,} | {seconds:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
