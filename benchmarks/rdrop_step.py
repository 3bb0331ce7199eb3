"""What R-Drop costs a training step: the train stage's step with and without it, on synthetic batches.

    .venv/bin/python benchmarks/rdrop_step.py [--recipes multi30k_cpu multi30k_cpu_transformer]
                                              [--precision bf16-mixed] [--alpha 1] [--steps 20] [--threads 2]

For each recipe, its model and TranslationModule's own training step (forward, the recipe's loss, backward,
Adam) on roofline.py's fixed-shape synthetic batches (125 sentences of 16 source and 16 target tokens),
in three variants: without R-Drop (`trainer.rdrop_alpha=0`), with it and the KL term eager
(`trainer.compile_loss=false` for the KL only), with it and the KL compiled (what `compile_loss=true` does).
Prints target tokens/s of each and the time a step against the one without R-Drop, as a markdown table with the
CPU model. R-Drop runs each batch twice: 2× is its floor, anything above is the KL's own cost.
"""

from __future__ import annotations

import argparse
import time

import torch
from roofline import BATCH, TGT_LEN, batch, build, recipe_config

from multi30k import cpu_model
from seq2seq.data.batching import Batch
from seq2seq.training import module as module_lib
from seq2seq.training.module import TranslationModule

VARIANTS = ("no R-Drop", "R-Drop, KL eager", "R-Drop, KL compiled")


def step_tok_per_s(recipe: str, variant: str, precision: str, alpha: float, steps: int) -> float:
    t = recipe_config(recipe).trainer
    torch.manual_seed(0)
    model = build(recipe).train()
    module = TranslationModule(model, str, [], label_smoothing=t.label_smoothing, compile_loss=t.compile_loss,
                               rdrop_alpha=0.0 if variant == VARIANTS[0] else alpha)
    module.log = lambda *args, **kwargs: None  # no trainer attached
    kl = module_lib.compiled_symmetric_kl
    if variant == VARIANTS[1]:
        module_lib.compiled_symmetric_kl = lambda: module_lib.symmetric_kl  # the KL eagerly, the CE as the recipe says
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        src, lens, tgt_in, tgt_out = batch(generator)
        batches.append(Batch(torch.arange(BATCH), src, lens, tgt_in, tgt_out, tgt_out.numel()))

    def step(b: Batch) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16")):
            loss = module.training_step(b, 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    try:
        for b in batches[:2]:  # warm-up: oneDNN primitives, the allocator, compiling
            step(b)
        start = time.perf_counter()
        for i in range(steps):
            step(batches[i % len(batches)])
        return steps * BATCH * TGT_LEN / (time.perf_counter() - start)
    finally:
        module_lib.compiled_symmetric_kl = kl


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["multi30k_cpu", "multi30k_cpu_transformer"])
    parser.add_argument("--precision", default="bf16-mixed", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = [f"CPU: {cpu_model()}, {args.threads} threads, {args.precision}, alpha {args.alpha:g}, {args.steps} steps "
             f"of {BATCH * TGT_LEN:,} target tokens", "",
             "| recipe | " + " | ".join(f"{v} tok/s" for v in VARIANTS) + " | step time, KL eager | step time, KL compiled |",
             "| --- |" + " ---: |" * (len(VARIANTS) + 2)]
    for recipe in args.recipes:
        rates = [step_tok_per_s(recipe, v, args.precision, args.alpha, args.steps) for v in VARIANTS]
        lines.append(f"| {recipe} | " + " | ".join(f"{r:,.0f}" for r in rates) +
                     f" | {rates[0] / rates[1]:.2f}× | {rates[0] / rates[2]:.2f}× |")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
