"""Little data: 2,000 training pairs trained from scratch, against the same pairs fine-tuned from a
model trained on the other 27,000 (trainer.init_from), on the shared Multi30k de→en. Not a test.

    .venv/bin/python benchmarks/finetune.py [--data ../shared/data/multi30k] [--parent-minutes 30]
                                            [--epochs 20] [--precision 32-true] [--out DIR]

Run as a user runs it, in a fresh git copy of this checkout with `dvc exp run`: Multi30k's training
pairs split into the first 27,000 (the parent's corpus) and the last 2,000 (the little corpus), valid
(`val`, 1,014) and test (`test_2016_flickr`, 1,000) as they are, through data=parallel. Three
experiments of the `multi30k_cpu` recipe, one after the other:

1. parent: the 27,000 pairs, the recipe's budget (--parent-minutes), registered and promoted to
   `champion` (`seq2seq promote`);
2. scratch: the 2,000 pairs, --epochs epochs (no budget, no early stop), its own tokenizer;
3. fine-tuned: the same, from `models:/seq2seq-de-en@champion` (the parent's tokenizer and weights).

Reports test BLEU and chrF (beam 5), the epochs, the first validation of the fine-tuned run (the parent
on the little corpus' valid set) and the wall time of each, with the CPU model. --precision 32-true
runs on every CPU; bf16-mixed needs AVX512-BF16 or AMX.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multi30k import DEFAULT_DATA, cpu_model, log  # noqa: E402
from parallel import copy_repo, dvc, loadavg, sh  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARENT_PAIRS, LITTLE_PAIRS = 27_000, 2_000


def split_corpus(data: Path, work: Path) -> dict[str, Path]:
    """work/{big,little}/{train,valid,test}.{de,en}: train split in two, valid and test as they are."""
    train = {lang: (data / f"train.{lang}").read_text(encoding="utf-8").splitlines(keepends=True) for lang in ("de", "en")}
    assert len(train["de"]) >= PARENT_PAIRS + LITTLE_PAIRS, "Multi30k has 29,000 training pairs"
    folders = {}
    for name, rows in (("big", slice(0, PARENT_PAIRS)), ("little", slice(-LITTLE_PAIRS, None))):
        folder = folders[name] = work / name
        folder.mkdir(parents=True)
        for lang in ("de", "en"):
            (folder / f"train.{lang}").write_text("".join(train[lang][rows]), encoding="utf-8")
            (folder / f"valid.{lang}").symlink_to(data / f"val.{lang}")
            (folder / f"test.{lang}").symlink_to(data / f"test_2016_flickr.{lang}")
    return folders


def experiment(name: str, overrides: list[str], repo: Path, env: dict) -> dict:
    log(f"{name}: dvc exp run {' '.join(overrides)}")
    start = time.perf_counter()
    dvc("exp", "run", "-n", name, *[a for o in overrides for a in ("-S", o)], cwd=repo, env=env)
    seconds = time.perf_counter() - start
    test = json.loads((repo / "metrics/test.json").read_text())
    train = json.loads((repo / "metrics/train.json").read_text())
    row = {"name": name, "seconds": round(seconds, 1), "bleu": test["bleu"], "chrf": test["chrf"],
           "epochs": train["epochs"], "best_valid_bleu": train["best_valid_bleu"],
           "init_valid_bleu": train.get("init_valid_bleu"), "train_pairs": json.loads((repo / "metrics/prepare.json").read_text())["train"]}
    log(f"  {name}: BLEU {row['bleu']:.2f}, chrF {row['chrf']:.2f}, {row['epochs']} epochs, {seconds:.0f} s")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to copy (default: this one)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the Multi30k folder (default: %(default)s)")
    parser.add_argument("--parent-minutes", type=int, default=30, help="the parent's training budget (default: 30)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each run on the 2,000 pairs (default: 20)")
    parser.add_argument("--precision", default="32-true", help="trainer.lightning.precision (default: 32-true)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="seq2seq-finetune-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DVC_ROOT", "MLFLOW_TRACKING_URI")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # DVC runs this python
    commit = sh(["git", "rev-parse", "--short", "HEAD"], args.repo, env).strip()
    log(f"finetune: {cpu_model()}, {os.cpu_count()} cores; {args.repo} at {commit}; load {loadavg()}")
    folders = split_corpus(args.data.resolve(), work / "corpus")
    repo = copy_repo(args.repo, work / "repo", env)
    recipe = ["experiment=multi30k_cpu", f"trainer.lightning.precision={args.precision}"]
    little = [*recipe, f"data.path={folders['little']}", f"trainer.lightning.max_epochs={args.epochs}",
              "trainer.lightning.max_time=null", f"trainer.early_stopping_patience={args.epochs}"]
    rows = [experiment("parent", [*recipe, f"data.path={folders['big']}",
                                  f"trainer.lightning.max_time=00:00:{args.parent_minutes}:00"], repo, env)]
    sh([sys.executable, "-m", "seq2seq", "promote", "1"], repo, env)
    rows.append(experiment("scratch", little, repo, env))
    rows.append(experiment("finetuned", [*little, "trainer.init_from=models:/seq2seq-de-en@champion"], repo, env))
    head = (f"{cpu_model()}, {os.cpu_count()} cores, commit {commit}, {dt.date.today().isoformat()}; "
            f"multi30k_cpu at {args.precision}, test_2016_flickr, beam 5\n\n")
    lines = ["| run | training pairs | epochs | first valid BLEU | best valid BLEU | test BLEU | test chrF | wall s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        first = f"{r['init_valid_bleu']:.2f}" if r["init_valid_bleu"] is not None else "–"
        lines.append(f"| {r['name']} | {r['train_pairs']:,} | {r['epochs']} | {first} | {r['best_valid_bleu']:.2f} | "
                     f"{r['bleu']:.2f} | {r['chrf']:.2f} | {r['seconds']:,.0f} |")
    text = head + "\n".join(lines) + "\n"
    (work / "results.md").write_text(text)
    (work / "results.json").write_text(json.dumps({"cpu": cpu_model(), "commit": commit, "rows": rows}, indent=1))
    print(text)
    log(f"results: {work}")


if __name__ == "__main__":
    main()
