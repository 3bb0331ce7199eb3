"""The decode table: one trained run, decoded by every engine, greedy and beam 5, in one sitting.

    .venv/bin/python benchmarks/decode_engines.py benchmarks/results/runs/transformer [--baseline REV]
                                                  [--n 1000] [--batch-size 64] [--threads 2] [--repeat 3]

RUN is a work folder of benchmarks/multi30k.py. Its test set's first --n source sentences are decoded
with batches of --batch-size by
  * `project`: this checkout's PyTorch decoding (seq2seq.inference.translator), float32;
  * `project @REV` (with --baseline REV): the same, with the code of git revision REV (a temporary
    git worktree), so that a speed-up is measured against its starting point on the same machine;
  * `ctranslate2 float32` and `ctranslate2 int8`: the checkpoint exported by seq2seq.inference.export
    (Transformers only; needs the ctranslate2 extra).
Each measurement runs in a fresh subprocess with --threads intra-op threads, decodes once to warm up,
then --repeat times; the fastest time counts. BLEU is sacreBLEU's on the test references. The table
names the CPU model (lscpu) and says which outputs equal the project's line for line.
Writes <RUN>/decode_engines.json and .md. Timings compare only within one table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEAMS = (1, 5)

from multi30k import cpu_model  # noqa: E402  (this folder is on sys.path when run as a script)


def measure(args: argparse.Namespace) -> None:
    """In the subprocess: decode with one engine and print one JSON line per beam."""
    import torch

    torch.set_num_threads(args.threads)
    from multi30k import load_trained

    from seq2seq.metrics import score

    cfg, model, sp_src, sp_tgt, sources, refs = load_trained(args.run)
    sources, refs = sources[: args.n], refs[: args.n]
    d = cfg.decode
    if args.engine == "torch":
        from seq2seq.inference.translator import translate

        decode = lambda beam: translate(model, sp_src, sp_tgt, sources, beam, d.length_penalty,  # noqa: E731
                                        d.max_len_a, d.max_len_b, args.batch_size)
    else:
        from seq2seq.inference.ct2 import CT2Translator

        ct2 = CT2Translator.load(args.ct2_model, threads=args.threads)
        decode = lambda beam: ct2.translate(sources, beam_size=beam, length_penalty=d.length_penalty,  # noqa: E731
                                            max_len_a=d.max_len_a, max_len_b=d.max_len_b, batch_size=args.batch_size)
    for beam in BEAMS:
        hyps = decode(beam)  # warm-up
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            hyps = decode(beam)
            best = min(best, time.perf_counter() - start)
        print(json.dumps({"beam": beam, "seconds": best, "sent_per_s": len(sources) / best,
                          "bleu": score(hyps, refs)["bleu"], "hyps": hyps}), flush=True)


def run_engine(name: str, src: Path, args: argparse.Namespace, extra: list[str]) -> dict[int, dict]:
    cmd = [sys.executable, __file__, str(args.run), "--measure", "--n", str(args.n), "--batch-size",
           str(args.batch_size), "--threads", str(args.threads), "--repeat", str(args.repeat), *extra]
    env = {**os.environ, "PYTHONPATH": str(src)}
    print(f"… {name}", file=sys.stderr, flush=True)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"error: {name} failed:\n{out.stderr[-3000:]}")
    return {r["beam"]: r for r in map(json.loads, out.stdout.splitlines())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--baseline", metavar="REV", help="also measure the project's decoding at this git revision")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--ct2-model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.run = args.run.resolve()
    if args.measure:
        measure(args)
        return 0
    if not (args.run / "train/checkpoints/best.ckpt").is_file():
        sys.exit(f"error: {args.run}/train/checkpoints/best.ckpt not found: RUN must be a trained work folder "
                 "of benchmarks/multi30k.py")
    sys.path.insert(0, str(REPO / "src"))
    from seq2seq.inference.translator import load_model

    model, meta = load_model(args.run / "train/checkpoints/best.ckpt")
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    results: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            rev = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=REPO, capture_output=True,
                                 text=True, check=True).stdout.strip()
            subprocess.run(["git", "worktree", "add", "--detach", "-f", f"{tmp}/base", rev], cwd=REPO, check=True,
                           capture_output=True)
            try:
                results[f"project @{rev}"] = run_engine(f"project @{rev}", Path(tmp) / "base/src", args, [])
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", f"{tmp}/base"], cwd=REPO, check=False)
        results["project"] = run_engine("project", REPO / "src", args, [])
        if meta["model"]["_target_"].endswith(".Transformer"):
            from seq2seq.inference.export import export

            for quant in ("float32", "int8"):
                folder = export(args.run / "train/checkpoints/best.ckpt", args.run / "tokenizer", Path(tmp) / quant, quant)
                results[f"ctranslate2 {quant}"] = run_engine(f"ctranslate2 {quant}", REPO / "src", args,
                                                             ["--engine", "ct2", "--ct2-model", str(folder)])
    ref = results["project"]
    cpu = cpu_model()
    lines = [f"{args.run.name} ({meta['model']['_target_'].rsplit('.', 1)[1]}, {params_m:.1f}M parameters): "
             f"{len(ref[1]['hyps'])} test sentences, batches of {args.batch_size}, {args.threads} threads, "
             f"best of {args.repeat}; CPU: {cpu}", "",
             "| engine | greedy sent/s | greedy BLEU | beam 5 sent/s | beam 5 BLEU | lines equal to `project` "
             "(greedy / beam 5) | speed / `project` (greedy / beam 5) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        same = " / ".join(str(sum(a == b for a, b in zip(r[b]["hyps"], ref[b]["hyps"]))) for b in BEAMS)
        speed = " / ".join(f"{r[b]['sent_per_s'] / ref[b]['sent_per_s']:.2f}" for b in BEAMS)
        lines.append(f"| {name} | {r[1]['sent_per_s']:,.0f} | {r[1]['bleu']:.2f} | {r[5]['sent_per_s']:,.0f} | "
                     f"{r[5]['bleu']:.2f} | {same} | {speed} |")
    table = "\n".join(lines)
    print(table)
    (args.run / "decode_engines.md").write_text(table + "\n", encoding="utf-8")
    summary = {name: {b: {k: v for k, v in r[b].items() if k != "hyps"} for b in BEAMS} for name, r in results.items()}
    (args.run / "decode_engines.json").write_text(json.dumps({"cpu_model": cpu, "results": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
