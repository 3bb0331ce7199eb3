"""The machine's roofline next to the models' training throughput, measured in one run on one machine.

    .venv/bin/python benchmarks/roofline.py [--results benchmarks/results/results.json ...] [--threads 2]
                                            [--recipes multi30k_cpu multi30k_cpu_transformer] [--steps 20]

Measures, in this process (--threads intra-op threads):
  * matrix-product peak: 2048 x 2048 products in fp32 and in bf16, GFLOP/s;
  * per recipe, its model trained by a plain PyTorch loop (forward, the train stage's loss: label-smoothed
    cross-entropy, compiled as the recipe says, backward, Adam) on
    fixed-shape synthetic batches of 2,000 target tokens (125 sentences of 16 source and 16 target
    tokens), in fp32 and under bf16 autocast: target tokens/s. That is the model's arithmetic with
    nothing else around it: no data loading, no shape variety, no validation, no logging;
  * FLOP per target token of one such training step (forward + backward), counted by
    torch.utils.flop_counter for matrix products and attention, plus the LSTM/GRU layers' matrix
    products (which the counter does not see: 2 * gates * H * (I + H) per token, direction and layer,
    forward, and twice that backward).
Then each rate as a fraction of the matrix peak of its precision. With --results (benchmarks/multi30k.py's
results.json files, e.g. one run in fp32 and one in bf16), the real training loop's tokens/s of each configuration whose recipe was measured here,
as a fraction of the synthetic loop at the same precision and of the matrix peak.
Absolute figures differ between CPUs; the fractions are what compare. Prints a markdown table with the
CPU model and writes it to --out (default: beside the first --results, else benchmarks/results/roofline.md).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

VOCAB, BATCH, SRC_LEN, TGT_LEN = 8000, 125, 16, 16  # 2,000 target tokens, about Multi30k's sentence length
PRECISIONS = ("32-true", "bf16-mixed")


def matmul_gflops(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def build(recipe: str) -> torch.nn.Module:
    from seq2seq.models.builder import build_model

    return build_model(recipe_config(recipe).model, VOCAB, VOCAB)


@functools.cache
def recipe_config(recipe: str):
    from seq2seq.config.params import compose

    return compose([f"experiment={recipe}", "data.path=/unused"])


def loss_fn(recipe: str):
    """The train stage's loss for this recipe: (logits, target) -> label-smoothed cross-entropy."""
    from seq2seq.training.module import compiled_sequence_loss, sequence_loss

    t = recipe_config(recipe).trainer
    fn = compiled_sequence_loss() if t.compile_loss else sequence_loss
    return lambda logits, target: fn(logits, target, 0, t.label_smoothing)  # PAD 0: none in these batches


def batch(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    src = torch.randint(4, VOCAB, (BATCH, SRC_LEN), generator=generator)  # [B, S]
    tgt = torch.randint(4, VOCAB, (BATCH, TGT_LEN + 1), generator=generator)  # [B, T + 1]
    return src, torch.full((BATCH,), SRC_LEN), tgt[:, :-1], tgt[:, 1:]


def train_step(model, optimizer, criterion, src, lens, tgt_in, tgt_out, bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(src, lens, tgt_in)  # [B, T, V]
        loss = criterion(logits, tgt_out)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def rnn_flops(model: torch.nn.Module, src_tokens: int, tgt_tokens: int) -> float:
    """Forward + backward FLOP of the recurrent layers' matrix products, which FlopCounterMode misses."""
    total = 0.0
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.RNNBase):
            gates = {"LSTM": 4, "GRU": 3}.get(m.mode, 1)
            tokens = src_tokens if name.startswith("encoder") else tgt_tokens
            dirs = 2 if m.bidirectional else 1
            for layer in range(m.num_layers):
                inp = m.input_size if layer == 0 else m.hidden_size * dirs
                total += 3 * 2 * gates * m.hidden_size * (inp + m.hidden_size) * tokens * dirs
    return total


def flop_per_token(model: torch.nn.Module) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    src, lens, tgt_in, tgt_out = batch(torch.Generator().manual_seed(1))
    counter = FlopCounterMode(display=False)
    with counter:
        logits = model(src, lens, tgt_in)
        F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten()).backward()
    model.zero_grad(set_to_none=True)
    tokens = tgt_out.numel()
    return (counter.get_total_flops() + rnn_flops(model, src.numel(), tokens)) / tokens


def synthetic_tok_per_s(recipe: str, precision: str, steps: int) -> float:
    torch.manual_seed(0)
    model = build(recipe).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    batches = [batch(generator) for _ in range(4)]
    bf16, criterion = precision.startswith("bf16"), loss_fn(recipe)
    for b in batches[:2]:  # warm-up: oneDNN primitives, allocator, compiling the loss
        train_step(model, optimizer, criterion, *b, bf16)
    start = time.perf_counter()
    for i in range(steps):
        train_step(model, optimizer, criterion, *batches[i % len(batches)], bf16)
    return steps * BATCH * TGT_LEN / (time.perf_counter() - start)


def real_rows(results: list[Path]) -> dict[tuple[str, str], float]:
    """(recipe, precision) -> the real loop's training tgt tokens/s from multi30k.py's results.json files
    (a later file wins for the same recipe and precision)."""
    rows = {}
    for row in (row for path in results for row in json.loads(path.read_text())["configs"]):
        if row.get("status") != "ok" or not row.get("train_metrics"):
            continue
        recipe = next((o.split("=", 1)[1] for o in row["overrides"] if o.startswith("experiment=")), None)
        if any(o.startswith("model=") for o in row["overrides"]):
            continue  # a variant of the recipe's model: not the model measured here
        precision = next((o.split("=", 1)[1] for o in row["overrides"]
                          if o.startswith("trainer.lightning.precision=")), None)
        if precision is None:
            precision = recipe_config(recipe).trainer.lightning.precision
        tok_s = row["train_metrics"].get("train_tgt_tokens_per_s")
        if recipe and tok_s:
            rows[(recipe, str(precision))] = float(tok_s)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, nargs="*", default=[],
                        help="benchmarks/multi30k.py results.json files (real training rates)")
    parser.add_argument("--recipes", nargs="+", default=["multi30k_cpu", "multi30k_cpu_transformer"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from multi30k import cpu_model

    peak = {"32-true": matmul_gflops(torch.float32), "bf16-mixed": matmul_gflops(torch.bfloat16)}
    real = real_rows(args.results)
    lines = [f"CPU: {cpu_model()}, {args.threads} threads. Matrix-product peak (2048²): fp32 {peak['32-true']:,.0f} "
             f"GFLOP/s, bf16 {peak['bf16-mixed']:,.0f} GFLOP/s.", "",
             "| recipe | precision | MFLOP / tgt token | synthetic tgt tok/s | synthetic / peak | real tgt tok/s "
             "| real / synthetic | real / peak |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = []
    for recipe in args.recipes:
        flop = flop_per_token(build(recipe).train())
        for precision in PRECISIONS:
            try:
                synth = synthetic_tok_per_s(recipe, precision, args.steps)
            except RuntimeError as e:  # e.g. no bf16 LSTM in oneDNN without AVX512
                lines.append(f"| {recipe} | {precision} | {flop / 1e6:.1f} | failed: {str(e).splitlines()[0][:80]} "
                             "| | | | |")
                continue
            r = real.get((recipe, precision))
            row = {"recipe": recipe, "precision": precision, "flop_per_token": flop, "synthetic_tok_s": synth,
                   "synthetic_of_peak": synth * flop / 1e9 / peak[precision], "real_tok_s": r}
            rows.append(row)
            real_cells = ("| — | — | —" if r is None else
                          f"| {r:,.0f} | {r / synth:.0%} | {r * flop / 1e9 / peak[precision]:.1%}")
            lines.append(f"| {recipe} | {precision} | {flop / 1e6:.1f} | {synth:,.0f} | "
                         f"{row['synthetic_of_peak']:.1%} {real_cells} |")
    table = "\n".join(lines)
    print(table)
    out = args.out or ((args.results[0].parent if args.results else REPO / "benchmarks" / "results") / "roofline.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"cpu_model": cpu_model(), "peak_gflops": peak, "rows": rows},
                                                   indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
