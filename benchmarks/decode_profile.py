"""Where decoding time goes: torch.profiler over the project's decoding of a trained run's test set.

    .venv/bin/python benchmarks/decode_profile.py benchmarks/results/runs/transformer [--beam 1] [--n 300]
                                                  [--batch-size 64] [--threads 2] [--rows 25]

Prints the operators by self CPU time, and the share of the wall time spent outside any operator
(Python: search bookkeeping, module calls). Profiling slows everything down; compare shares, not times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if "PYTHONPATH" not in os.environ:  # PYTHONPATH=<other checkout>/src profiles that code instead
    sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args(argv)

    import torch
    from multi30k import load_trained
    from torch.profiler import ProfilerActivity, profile

    from seq2seq.inference.translator import translate

    torch.set_num_threads(args.threads)
    cfg, model, sp_src, sp_tgt, sources, _ = load_trained(args.run.resolve())
    sources, d = sources[: args.n], cfg.decode
    decode = lambda: translate(model, sp_src, sp_tgt, sources, args.beam, d.length_penalty,  # noqa: E731
                               d.max_len_a, d.max_len_b, args.batch_size)
    decode()  # warm-up
    start = time.perf_counter()
    decode()
    plain = time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        decode()
        profiled = time.perf_counter() - start
    events = prof.key_averages()
    op_time = sum(e.self_cpu_time_total for e in events) / 1e6
    print(f"{args.run.name}, beam {args.beam}: {len(sources) / plain:,.1f} sentences/s unprofiled; under the "
          f"profiler {profiled:.2f} s, of which operators {op_time:.2f} s and {1 - op_time / profiled:.0%} outside them")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
