"""Two experiments one after the other against the same two side by side (`dvc queue start -j 2`): what
running them in parallel costs. Not a test: run it on an otherwise idle machine.

    .venv/bin/python benchmarks/parallel.py [--repo .] [--data ../shared/data/multi30k] [--only smoke multi30k]
                                            [--ways back-to-back parallel] [--epochs 1] [--out DIR] [--extra-overrides K=V ...] [--env K=V ...]

Workloads, each twice (seed=1 and seed=2) on Multi30k de→en through the project's data=parallel source
(a folder of symlinks, as benchmarks/multi30k.py makes):

- smoke: `experiment=smoke`;
- multi30k: `experiment=multi30k_cpu` for `--epochs` epochs (in fp32 where the CPU has no native bf16,
  which the recipe's LSTM needs).

For each workload and each way of running them, a fresh git copy of --repo (its tracked and untracked,
not ignored, files: --repo may be a worktree at another commit, to measure before and after a change)
in which the download and prepare stages are run first, untimed, so that every experiment restores
them from DVC's run cache; then, timed:

- back to back: `dvc exp run --temp ... -S seed=1`, then the same with seed=2;
- parallel: both queued (`dvc exp run --queue`), then `dvc queue start -j 2` until both succeeded.

Each stage imports seq2seq from the copy (PYTHONPATH=src, relative to the workspace DVC runs it in).
OMP_NUM_THREADS and OMP_WAIT_POLICY are removed from the environment (what a user who sets neither
gets); --env adds variables to every stage's environment. Reported: wall time of each way, their
ratio, and per experiment the train stage's target tokens/s, training seconds and thread count (from
the copy's mlflow.db), test BLEU; the CPU model (lscpu) and the load average before and after. Writes
<out>/results.json and <out>/results.md and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multi30k import DEFAULT_DATA, cpu_model, layout_corpus, log  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEEDS = (1, 2)
WAYS = {"back-to-back": "back to back", "parallel": "dvc queue start -j 2"}


def workloads(epochs: int, native_bf16: bool) -> dict[str, list[str]]:
    fp32 = [] if native_bf16 else ["trainer.lightning.precision=32-true"]
    return {"smoke": ["experiment=smoke"],
            "multi30k": ["experiment=multi30k_cpu", f"trainer.lightning.max_epochs={epochs}", *fp32]}


def sh(args: list[str], cwd: Path, env: dict, timeout: float = 7200) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(args)} failed ({proc.returncode}) in {cwd}:\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def dvc(*args: str, cwd: Path, env: dict) -> str:
    return sh([sys.executable, "-m", "dvc", *args], cwd, env)


def copy_repo(source: Path, dest: Path, env: dict) -> Path:
    """A new git repository holding `source`'s tracked and untracked (not ignored) files."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (source / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, dest / name)
    git = ["git", "-c", "user.name=benchmark", "-c", "user.email=benchmark@localhost"]
    sh(["git", "init", "-q", "-b", "main"], dest, env)
    sh(["git", "add", "-A"], dest, env)
    sh([*git, "commit", "-qm", f"copy of {source}"], dest, env)
    return dest


def stop_queue_workers(repo: Path, grace: float = 30.0) -> None:
    """DVC's task queue can leave an idle worker behind (treeverse/dvc#10427): wait, then end it."""
    deadline = time.time() + grace
    for pid_file in (repo / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError, OSError):
            pid = int(pid_file.read_text())
            while time.time() < deadline:
                os.kill(pid, 0)
                time.sleep(1)
            os.kill(pid, signal.SIGTERM)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def mlflow_runs(repo: Path) -> list[dict]:
    """The train runs in the copy's mlflow.db, with the figures the table reports."""
    from mlflow import MlflowClient

    mlc = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    rows = []
    for exp in mlc.search_experiments():
        for run in mlc.search_runs([exp.experiment_id]):
            m, p, t = run.data.metrics, run.data.params, run.data.tags
            if "train.train_tgt_tokens_per_s" not in m:
                continue
            rows.append({"exp": t.get("dvc.exp_name"), "seed": p.get("seed"),
                         "tokens_per_s": m["train.train_tgt_tokens_per_s"], "train_seconds": m.get("train.train_seconds"),
                         "threads": t.get("seq2seq.threads", "n/a"), "test_bleu": m.get("test_bleu")})
    return sorted(rows, key=lambda r: r["seed"] or "")


def run_mode(mode: str, source: Path, work: Path, overrides: list[str], env: dict) -> dict:
    repo = copy_repo(source, work / "repo", env)
    sh([sys.executable, "-m", "seq2seq.cli.compose", *overrides, "--out", "params.yaml"], repo, env)
    dvc("repro", "prepare", cwd=repo, env=env)  # untimed: every experiment restores these two stages
    args = [a for o in overrides for a in ("-S", o)]
    load_before = loadavg()
    walls = []
    start = time.perf_counter()
    if mode == "back to back":
        for seed in SEEDS:
            t = time.perf_counter()
            dvc("exp", "run", "--temp", *args, "-S", f"seed={seed}", cwd=repo, env=env)
            walls.append(round(time.perf_counter() - t, 1))
            log(f"    seed {seed}: {walls[-1]:.0f} s")
    else:
        for seed in SEEDS:
            dvc("exp", "run", "--queue", *args, "-S", f"seed={seed}", cwd=repo, env=env)
        start = time.perf_counter()
        # The workers inherit `queue start`'s output: with captured pipes we would wait on them.
        subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", "2"], cwd=repo, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=300)
        try:
            polls = 0
            while True:
                # A finished experiment leaves a git ref: cheap to look at every second, where
                # `dvc queue status` (a Python process) would take CPU from the experiments.
                refs = sh(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], repo, env).split()
                done = len([r for r in refs if re.fullmatch(r"refs/exps/[0-9a-f]{2}/[0-9a-f]{38}/[^/]+", r)]) >= len(SEEDS)
                polls += 1
                if done or polls % 30 == 0:
                    status = dvc("queue", "status", cwd=repo, env=env)
                    failed = [line.split()[0] for line in status.splitlines() if "Failed" in line]
                    if failed:
                        raise SystemExit(f"error: queued experiment {failed[0]} failed:\n"
                                         f"{dvc('queue', 'logs', failed[0], cwd=repo, env=env)[-3000:]}")
                    if status.count("Success") == len(SEEDS):
                        break
                time.sleep(1)
        finally:
            stop_queue_workers(repo)
    wall = round(time.perf_counter() - start, 1)
    return {"mode": mode, "wall_s": wall, "walls_s": walls, "runs": mlflow_runs(repo),
            "load_before": load_before, "load_after": loadavg(), "repo": str(repo)}


def table(results: list[dict]) -> str:
    lines = ["| workload | way | wall s | ratio | train tgt tok/s (seed 1, 2) | train s (seed 1, 2) | threads | "
             "test BLEU (seed 1, 2) | load before → after |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for r in results:
        base = next((x for x in results if x["workload"] == r["workload"] and x["mode"] == "back to back"), None)
        runs = r["runs"]
        cells = [r["workload"], r["mode"], f"{r['wall_s']:.0f}", f"{r['wall_s'] / base['wall_s']:.2f}" if base else "n/a",
                 ", ".join(f"{x['tokens_per_s']:,.0f}" for x in runs),
                 ", ".join(f"{x['train_seconds']:.0f}" for x in runs if x["train_seconds"] is not None),
                 ", ".join(str(x["threads"]) for x in runs),
                 ", ".join(f"{x['test_bleu']:.2f}" for x in runs if x["test_bleu"] is not None),
                 f"{r['load_before']} → {r['load_after']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to copy (default: this one)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the Multi30k folder (default: %(default)s)")
    parser.add_argument("--only", nargs="+", choices=["smoke", "multi30k"], default=["smoke", "multi30k"])
    parser.add_argument("--ways", nargs="+", choices=["back-to-back", "parallel"], default=["back-to-back", "parallel"],
                        help="run only these ways (the ratio needs both)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the multi30k workload (default: 1)")
    parser.add_argument("--out", type=Path, default=None, help="work folders and results (default: a temporary folder)")
    parser.add_argument("--extra-overrides", nargs="+", default=[], metavar="KEY=VALUE",
                        help="Hydra overrides added to every experiment")
    parser.add_argument("--env", nargs="+", default=[], metavar="KEY=VALUE", help="added to every stage's environment")
    parser.add_argument("--keep", action="store_true", help="keep the repository copies")
    args = parser.parse_args(argv)

    import torch

    source, data = args.repo.resolve(), args.data.expanduser().resolve()
    out = (args.out or Path(tempfile.mkdtemp(prefix="parallel-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus"
    layout_corpus(data, corpus, {"de", "en"})
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DVC_") and k not in ("MLFLOW_TRACKING_URI", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": "src",
                "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"})
    env.update(dict(kv.split("=", 1) for kv in args.env))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=source, capture_output=True, text=True).stdout.strip()
    native_bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    data_overrides = ["data=parallel", f"data.path={corpus}", "data.src=de", "data.tgt=en"]
    cpu = cpu_model()
    log(f"parallel: {cpu}, {os.cpu_count()} cores; {source} at {commit}; extra env {args.env}; load {loadavg()}")
    results = []
    for name, recipe in workloads(args.epochs, native_bf16).items():
        if name not in args.only:
            continue
        for mode in [m for way, m in WAYS.items() if way in args.ways]:
            log(f"=== {name}, {mode}: {' '.join(recipe)}")
            work = out / name / mode.split()[0]
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            r = run_mode(mode, source, work, [*recipe, *data_overrides, *args.extra_overrides], env)
            results.append({"workload": name, "overrides": recipe, **r})
            log(f"    {r['wall_s']:.0f} s; load {r['load_before']} -> {r['load_after']}")
            if not args.keep:
                shutil.rmtree(work / "repo", ignore_errors=True)
    report = table(results)
    info = {"finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), "repo": str(source), "commit": commit, "env": args.env, "argv": sys.argv[1:],
            "results": results}
    (out / "results.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "results.md").write_text(f"{cpu}, {os.cpu_count()} cores, {commit}\n\n{report}\n", encoding="utf-8")
    print(f"\n{cpu}, {os.cpu_count()} cores; {source} at {commit}\n\n{report}\n\nresults: {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
