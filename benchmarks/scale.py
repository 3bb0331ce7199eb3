"""How each stage's cost grows with the corpus: wall time and memory of every stage of `dvc repro`,
from Multi30k's 29k training pairs up to WMT14's 4.5M. Not a test: run it on an otherwise idle machine.

    .venv/bin/python benchmarks/scale.py [--data ../shared/data/multi30k] [--copies 1 5 35 155]
                                         [--steps 200] [--out DIR] [--keep]

For each size, the Multi30k de→en training pairs repeated `copies` times, each copy's lines ending in a
mark of its own (" ⟨k⟩" on both sides), so that no two copies are the same text; valid and test are
Multi30k's own (1,014 and 1,000 pairs) at every size. This measures cost, not quality: the repeated
text has Multi30k's small vocabulary, which makes SentencePiece cheaper than real WMT text would.

Each size runs in a fresh git copy of --repo (its tracked and untracked, not ignored, files) with
`experiment=smoke data=parallel`, training `--steps` batches (one epoch cut there) and validating on
200 sentences; then `dvc repro --single-item <stage>` for every stage in order, so that each stage's
time includes DVC's hashing of its outputs. Memory: every 0.1 s, the anonymous resident memory
(RssAnon: mapped file pages, such as the token store's, are shared, not owned) summed over the
stage's processes (the stage command and its children, DVC itself left out); the peak is reported.
Writes <out>/results.json and <out>/results.md and prints the table.

    .venv/bin/python benchmarks/scale.py --iwslt 167000 [--steps 200]

instead builds a `de-en.tgz` in IWSLT'14's official layout (as the tests build theirs: talks with their
header lines, the five XML test sets) whose train.tags hold that many lines of the same marked Multi30k
text, IWSLT'14's size (fairseq's split of the real archive keeps 160,239 training pairs), and runs the
`iwslt14_cpu` recipe on it: download (from the local archive), prepare, tokenizer, encode, then one
epoch cut at --steps batches with the recipe's validation. Synthetic text of IWSLT'14's size, not IWSLT'14.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests")]
from iwslt_fixtures import TEST_SETS, build_iwslt_archive  # noqa: E402
from multi30k import DEFAULT_DATA, cpu_model, log  # noqa: E402
from parallel import copy_repo, loadavg, sh  # noqa: E402

STAGES = ("check", "download", "prepare", "parent", "tokenizer", "encode", "train", "evaluate", "track")


def build_corpus(data: Path, folder: Path, copies: int) -> dict:
    """folder/{train,valid,test}.{de,en}: train repeated `copies` times with a mark per copy."""
    folder.mkdir(parents=True)
    lines = {lang: (data / f"train.{lang}").read_text(encoding="utf-8").splitlines() for lang in ("de", "en")}
    for lang in ("de", "en"):
        with open(folder / f"train.{lang}", "w", encoding="utf-8") as f:
            for k in range(copies):
                mark = f" ⟨{k}⟩" if copies > 1 else ""
                f.writelines(f"{line}{mark}\n" for line in lines[lang])
        shutil.copyfile(data / f"val.{lang}", folder / f"valid.{lang}")
        shutil.copyfile(data / f"test_2016_flickr.{lang}", folder / f"test.{lang}")
    words = sum(len(line.split()) for line in lines["en"]) * copies
    return {"pairs": len(lines["en"]) * copies, "tgt_words": words}


def _marked(pairs: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """n pairs: `pairs` over and over, each repeat's lines ending in a mark of its own."""
    return [(f"{pairs[i % len(pairs)][0]} ⟨{i // len(pairs)}⟩", f"{pairs[i % len(pairs)][1]} ⟨{i // len(pairs)}⟩")
            for i in range(n)]


def build_iwslt(data: Path, folder: Path, lines: int, talk_lines: int = 200, doc_segs: int = 100) -> dict:
    """folder/de-en.tgz in the official layout: train.tags of `lines` marked Multi30k training pairs in
    talks of `talk_lines`, each test set as large as IWSLT'14's, from Multi30k's val and test pairs."""
    read = lambda name: list(zip(*((data / f"{name}.{lang}").read_text(encoding="utf-8").splitlines()
                                   for lang in ("de", "en"))))  # noqa: E731
    train = _marked(read("train"), lines)
    sizes = {"IWSLT14.TED.dev2010": 887, "IWSLT14.TEDX.dev2012": 1000, "IWSLT14.TED.tst2010": 1568,
             "IWSLT14.TED.tst2011": 1433, "IWSLT14.TED.tst2012": 1700}
    held_out = _marked(read("val") + read("test_2016_flickr"), sum(sizes.values()))
    test, start = {}, 0
    for name in TEST_SETS:
        segs = held_out[start:start + sizes[name]]
        start += sizes[name]
        test[name] = [segs[i:i + doc_segs] for i in range(0, len(segs), doc_segs)]
    talks = [{"talkid": 1000 + t, "speaker": (f"Sprecher {t}", f"Speaker {t}"), "title": (f"Vortrag {t}", f"Talk {t}"),
              "description": (f"Beschreibung {t}", f"Description {t}"), "lines": train[i:i + talk_lines]}
             for t, i in enumerate(range(0, lines, talk_lines), 1)]
    archive = build_iwslt_archive(folder, corpus={"src": "de", "tgt": "en", "talks": talks, "test": test})
    return {"archive": archive, "train_lines": lines, "test_pairs": start}


def run_iwslt(args, env: dict, work: Path) -> dict:
    """The iwslt14_cpu recipe's stages up to one epoch cut at --steps batches, on a synthetic archive."""
    built = build_iwslt(args.data, work / "iwslt", args.iwslt)
    md5 = subprocess.run(["md5sum", str(built["archive"])], capture_output=True, text=True, check=True).stdout.split()[0]
    repo = copy_repo(args.repo, work / "repo-iwslt", env)
    overrides = ["experiment=iwslt14_cpu", f"data.archive={built['archive']}", f"data.md5.de-en={md5}",
                 "trainer.lightning.max_epochs=1", f"trainer.lightning.limit_train_batches={args.steps}",
                 "registry.name=null"]
    sh([sys.executable, "-m", "seq2seq.cli.compose", *overrides, "--out", "params.yaml"], repo, env)
    log_dir = work / "logs-iwslt"
    log_dir.mkdir()
    row = {"train_lines": built["train_lines"], "test_pairs": built["test_pairs"], "stages": {}, "load_before": loadavg()}
    for stage in STAGES[:STAGES.index("train") + 1]:
        row["stages"][stage] = run_stage(stage, repo, env, log_dir)
        log(f"  iwslt {stage}: {row['stages'][stage]['seconds']:.1f} s, anon {row['stages'][stage]['anon_mib']:.0f} MiB")
    meta = json.loads((repo / "data/encoded/meta.json").read_text())
    train = {**json.loads((repo / "metrics/train.json").read_text()), **json.loads((repo / "data/train/timing.json").read_text())}
    prepared = json.loads((repo / "metrics/prepare.json").read_text())
    row.update(prepare=prepared, tgt_tokens=meta["tokens"]["train.tgt"], train_metrics=train, load_after=loadavg())
    tok_s = train["train_tgt_tokens_per_s"]
    row["epoch_minutes_at_this_speed"] = round(row["tgt_tokens"] / tok_s / 60, 1)
    if not args.keep:
        shutil.rmtree(repo, ignore_errors=True)
    return row


def _anon_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _stage_pids(root: int) -> list[int]:
    """The processes below `root` (DVC) that run a seq2seq stage, and their children."""
    children: dict[int, list[int]] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdlines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo, inside = [], [(root, False)], set()
    while todo:
        pid, in_stage = todo.pop()
        in_stage = in_stage or "seq2seq.stages." in cmdlines.get(pid, "")
        if in_stage and pid not in inside:
            inside.add(pid)
            found.append(pid)
        todo += [(c, in_stage) for c in children.get(pid, [])]
    return found


def run_stage(stage: str, repo: Path, env: dict, log_dir: Path) -> dict:
    """`dvc repro --single-item stage`: wall seconds and the peak anonymous memory of the stage's processes."""
    with open(log_dir / f"{stage}.log", "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=repo, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, sum(_anon_kib(p) for p in _stage_pids(proc.pid)))
            time.sleep(0.1)
        seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"error: dvc repro {stage} failed in {repo}; see {log_dir / f'{stage}.log'}")
    return {"seconds": round(seconds, 1), "anon_mib": round(peak / 1024, 1)}


def run_size(copies: int, args, env: dict, work: Path) -> dict:
    corpus = work / f"corpus-x{copies}"
    size = build_corpus(args.data, corpus, copies)
    repo = copy_repo(args.repo, work / f"repo-x{copies}", env)
    overrides = ["experiment=smoke", "data=parallel", f"data.path={corpus}", "trainer.lightning.max_epochs=1",
                 f"trainer.lightning.limit_train_batches={args.steps}", "trainer.val_max_sentences=200",
                 "trainer.lightning.precision=32-true", "registry.name=null"]
    sh([sys.executable, "-m", "seq2seq.cli.compose", *overrides, "--out", "params.yaml"], repo, env)
    log_dir = work / f"logs-x{copies}"
    log_dir.mkdir()
    row = {"copies": copies, **size, "stages": {}, "load_before": loadavg()}
    for stage in STAGES:
        row["stages"][stage] = run_stage(stage, repo, env, log_dir)
        log(f"  x{copies} {stage}: {row['stages'][stage]['seconds']:.1f} s, anon {row['stages'][stage]['anon_mib']:.0f} MiB")
    meta = json.loads((repo / "data/encoded/meta.json").read_text())
    row["tgt_tokens"] = meta["tokens"]["train.tgt"]
    row["load_after"] = loadavg()
    if not args.keep:
        shutil.rmtree(repo, ignore_errors=True)
        shutil.rmtree(corpus, ignore_errors=True)
    return row


def table(rows: list[dict]) -> str:
    head = "| pairs | tgt pieces | " + " | ".join(f"{s} s / MiB" for s in STAGES) + " | prepare+tokenizer+encode s |"
    lines = [head, "|" + " ---: |" * (len(STAGES) + 3)]
    for r in rows:
        cells = [f"{r['stages'][s]['seconds']:,.1f} / {r['stages'][s]['anon_mib']:,.0f}" for s in STAGES]
        front = sum(r["stages"][s]["seconds"] for s in ("prepare", "tokenizer", "encode"))
        lines.append(f"| {r['pairs']:,} | {r['tgt_tokens']:,} | " + " | ".join(cells) + f" | {front:,.1f} |")
    base = rows[0]
    lines += ["", "Growth against the first row (time ratio / token ratio; anonymous memory ratio):", ""]
    for r in rows[1:]:
        k = r["tgt_tokens"] / base["tgt_tokens"]
        parts = [f"{s} {r['stages'][s]['seconds'] / max(base['stages'][s]['seconds'], 0.1) / k:.2f} / "
                 f"{r['stages'][s]['anon_mib'] / max(base['stages'][s]['anon_mib'], 1):.2f}" for s in STAGES]
        lines.append(f"- {r['pairs']:,} pairs (×{k:.1f} tokens): " + ", ".join(parts))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to copy (default: this one)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the Multi30k folder (default: %(default)s)")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 5, 35, 155],
                        help="training-set repeats: 1, 5, 35, 155 give about 0.4M, 2M, 13M and 60M target words")
    parser.add_argument("--steps", type=int, default=200, help="training batches at every size (default: 200)")
    parser.add_argument("--iwslt", type=int, default=None, metavar="LINES",
                        help="instead: the iwslt14_cpu recipe on a synthetic archive of this many train.tags lines")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the corpora and repository copies")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="seq2seq-scale-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DVC_ROOT")}
    # DVC runs `python` from PATH: this interpreter's; each stage imports the copy's seq2seq
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": "src"})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.repo, capture_output=True, text=True).stdout.strip()
    log(f"scale: {cpu_model()}, {os.cpu_count()} cores; {args.repo} at {commit}; load {loadavg()}")
    if args.iwslt:
        row = run_iwslt(args, env, out)
        (out / "results.json").write_text(json.dumps({"date": dt.date.today().isoformat(), "cpu": cpu_model(),
                                                      "commit": commit, "iwslt": row}, indent=1))
        print(json.dumps(row, indent=1))
        log(f"results: {out}")
        return
    rows = []
    for copies in args.copies:
        rows.append(run_size(copies, args, env, out))
        (out / "results.json").write_text(json.dumps({"date": dt.date.today().isoformat(), "cpu": cpu_model(),
                                                      "commit": commit, "rows": rows}, indent=1))
    text = f"{cpu_model()}, {os.cpu_count()} cores, {commit}, {dt.date.today().isoformat()}\n\n{table(rows)}\n"
    (out / "results.md").write_text(text)
    print(text)
    log(f"results: {out}")


if __name__ == "__main__":
    main()
