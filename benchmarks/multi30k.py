"""Benchmark the whole pipeline on Multi30k (task 1) with the CPU recipes, one configuration after another.

    .venv/bin/python benchmarks/multi30k.py [--data ../shared/data/multi30k] [--out benchmarks/results]
                                            [--only NAME ...] [--max-time MINUTES] [--extra-overrides K=V ...]
                                            [--score-epochs]

The corpus is used exactly as a user's own parallel files are (data=parallel): a folder of symlinks
`{train,valid,test}.{de,en,fr}` → `train.*`, `val.*`, `test_2016_flickr.*` is made under --out (the
data is never copied). Each configuration gets its own work folder under <out>/runs/ with its own
params.yaml, composed by `python -m seq2seq.cli.compose`, and the five stages of dvc.yaml run in it as
subprocesses, one after the other, with every path inside the work folder. All runs log into one
MLflow store, sqlite:///<out>/mlflow.db.

Measured for each configuration: wall time of each stage and of the pipeline; peak resident memory of
each stage's process tree (measured by a small launcher process, so that this process's own memory
never counts); training throughput and epochs
(the train stage's metrics and timing files); then, in this process (torch.set_num_threads(2)), the
best checkpoint decodes the test set greedily and with beam 5, each timed and scored with sacreBLEU.

Writes <out>/results.json and <out>/results.md and prints the markdown table, which also holds the
configurations earlier invocations ran into the same --out (so `--only NAME` one at a time builds the
whole table). With --score-epochs, the checkpoint after every epoch is kept (copied from the train stage's
state as it goes) and each is scored on the test set with beam 5 too: scores at a fixed number of epochs,
for runs that fit different numbers of epochs in one budget. Timings are only comparable between runs made on the same, otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "multi30k"
DEFAULT_OUT = REPO / "benchmarks" / "results"

# Multi30k file prefix → the split names of data=parallel
SPLITS = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
LANGS = ("de", "en", "fr")

# name → (source, target, recipe overrides). The recipe part (experiment=...) is what the hidden
# --recipe-override replaces for a quick trial; data.* is added for every configuration.
CONFIGS: dict[str, tuple[str, str, list[str]]] = {
    "lstm": ("de", "en", ["experiment=multi30k_cpu"]),
    "transformer": ("de", "en", ["experiment=multi30k_cpu_transformer"]),
    "no_attention": ("de", "en", ["experiment=multi30k_cpu", "model=no_attention"]),
    "lstm_en_fr": ("en", "fr", ["experiment=multi30k_cpu"]),
}
BEAM = 5
TAIL_LINES = 25


class StageFailed(Exception):
    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage, self.message = stage, message


# --- helpers ---------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, flush=True)


def tail(text: str, n: int = TAIL_LINES) -> str:
    """The last n non-empty lines; progress bars (\\r-rewritten lines) count as their last state."""
    lines = [ln.split("\r")[-1].rstrip() if "\r" in ln else ln.rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip()]
    return "\n".join(lines[-n:])


def max_time_arg(minutes: float) -> str:
    """Minutes → Lightning's DD:HH:MM:SS."""
    seconds = int(round(minutes * 60))
    if seconds <= 0:
        raise argparse.ArgumentTypeError("--max-time must be > 0 minutes")
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{d:02d}:{h:02d}:{m:02d}:{s:02d}"


def positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    max_time_arg(value)
    return value


def layout_corpus(data: Path, folder: Path, langs: set[str]) -> None:
    """Symlinks {train,valid,test}.<lang> → the Multi30k files; nothing is copied."""
    missing = [str(data / f"{prefix}.{lang}") for prefix in SPLITS.values() for lang in sorted(langs)
               if not (data / f"{prefix}.{lang}").is_file()]
    if missing:
        sys.exit(f"error: the Multi30k folder {data} lacks: {', '.join(missing)} (see --data)")
    folder.mkdir(parents=True, exist_ok=True)
    for split, prefix in SPLITS.items():
        for lang in LANGS:
            target, link = (data / f"{prefix}.{lang}").resolve(), folder / f"{split}.{lang}"
            if link.is_symlink() or link.exists():
                link.unlink()
            if target.is_file():
                link.symlink_to(target)


def missing_conf_files(overrides: list[str]) -> list[str]:
    """conf/<group>/<name>.yaml named by group overrides (`model=no_attention`) that do not exist."""
    missing = []
    for ov in overrides:
        key, sep, value = ov.partition("=")
        key = key.lstrip("+~")
        if not sep or "." in key or "/" in value or not value or value == "null":
            continue
        if (REPO / "conf" / key).is_dir() and not (REPO / "conf" / key / f"{value}.yaml").exists():
            missing.append(f"conf/{key}/{value}.yaml")
    return missing


# Runs the stage as its child and writes that child's peak RSS (ru_maxrss, KiB on Linux) to argv[1].
# A process started from this (big) benchmark process would count the benchmark's own resident
# memory at fork time in its ru_maxrss; this small launcher's children do not.
_LAUNCHER = ("import resource, subprocess, sys\n"
             "code = subprocess.call(sys.argv[2:])\n"
             "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
             "sys.exit(code)\n")


def run_stage(name: str, cmd: list[str], cwd: Path, env: dict, logs: Path) -> dict:
    """Run one stage as a subprocess; returns its wall seconds and the peak RSS (MiB) of its process tree
    (the largest resident set of the stage or of any process it waited for)."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path, rss_path = logs / f"{name}.out", logs / f"{name}.err", logs / f"{name}.maxrss"
    start = time.perf_counter()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        code = subprocess.call([sys.executable, "-c", _LAUNCHER, str(rss_path), *cmd], cwd=cwd, env=env,
                               stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    try:
        maxrss = int(rss_path.read_text())
    except (OSError, ValueError):
        maxrss = None
    if maxrss is not None:
        rss_mib = maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, KiB on Linux
    if code != 0:
        stderr = err_path.read_text(encoding="utf-8", errors="replace")
        stdout = out_path.read_text(encoding="utf-8", errors="replace")
        raise StageFailed(name, f"exit status {code} after {seconds:.1f} s; last lines of its output "
                                f"({err_path}):\n{tail(stderr) or tail(stdout)}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(rss_mib, 1) if maxrss is not None else None}


class EpochCheckpoints(threading.Thread):
    """While the train stage runs: a copy of its `last.ckpt` (rewritten after each epoch) into `dest`, as
    001.ckpt, 002.ckpt, …, each once it is written (the same size and time over two polls)."""

    def __init__(self, last: Path, dest: Path, poll: float = 1.0):
        super().__init__(daemon=True)
        self.last, self.dest, self.poll, self.done = last, dest, poll, threading.Event()

    def run(self) -> None:
        copied, pending = set(), None
        while not self.done.wait(self.poll):
            try:
                st = self.last.stat()
            except OSError:
                pending = None
                continue
            key = (st.st_mtime_ns, st.st_size)
            if key not in copied and key == pending:
                self.dest.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copyfile(self.last, self.dest / f"{len(copied) + 1:03d}.ckpt")
                    copied.add(key)
                except OSError:  # removed meanwhile: the stage has finished
                    pass
            pending = key

    def stop(self) -> None:
        self.done.set()
        self.join()


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def prepare_mlflow(uri: str, experiment_name: str, artifacts: Path) -> None:
    """Create the experiment with its artifacts under --out (else MLflow would put them beside
    the first work folder). Failures only warn: the stages report tracking trouble themselves."""
    try:
        from mlflow import MlflowClient

        mlc = MlflowClient(tracking_uri=uri)
        if mlc.get_experiment_by_name(experiment_name) is None:
            mlc.create_experiment(experiment_name, artifact_location=artifacts.resolve().as_uri())
    except Exception as e:  # noqa: BLE001 - any tracking failure
        log(f"warning: could not prepare the MLflow experiment {experiment_name!r} in {uri}: {e}")


def log_to_mlflow(uri: str, run_file: Path, name: str, row: dict) -> None:
    try:
        from mlflow import MlflowClient

        run_id = read_json(run_file).get("run_id")
        if not run_id:
            return
        mlc = MlflowClient(tracking_uri=uri)
        mlc.set_tag(run_id, "mlflow.runName", f"multi30k-{name}")
        mlc.set_tag(run_id, "benchmark.config", name)
        for key in ("bleu_greedy", "bleu_beam5", "chrf_greedy", "chrf_beam5", "bleu_tok_lc_beam5", "decode_sent_per_s_greedy",
                    "decode_sent_per_s_beam5", "peak_rss_mib", "pipeline_seconds"):
            if isinstance(row.get(key), (int, float)):
                mlc.log_metric(run_id, f"benchmark.{key}", float(row[key]))
    except Exception as e:  # noqa: BLE001 - any tracking failure
        log(f"warning: benchmark figures of {name} not logged to MLflow: {e}")


# --- one configuration -----------------------------------------------------------------------
def load_trained(work: Path):
    """A trained work folder: (params, best model, source and target SentencePiece, test sources,
    test references). Imports seq2seq (and torch) only when called."""
    from seq2seq.config.params import load_params
    from seq2seq.data.sentencepiece import load_sp
    from seq2seq.inference.translator import load_model
    from seq2seq.io import read_lines

    cfg = load_params(work / "params.yaml")
    model, _ = load_model(work / "train" / "checkpoints" / "best.ckpt")
    sp_src, sp_tgt = load_sp(work / "tokenizer", "src"), load_sp(work / "tokenizer", "tgt")
    sources = read_lines(work / "prepared" / f"test.{cfg.data.src}")
    refs = read_lines(work / "prepared" / f"test.{cfg.data.tgt}")
    return cfg, model, sp_src, sp_tgt, sources, refs


def run_config(name: str, overrides: list[str], src: str, tgt: str, work: Path, env: dict,
               score_epochs: bool = False) -> dict:
    row: dict = {"config": name, "direction": f"{src}→{tgt}", "overrides": overrides, "status": "ok",
                 "work_dir": str(work), "stages": {}}
    py = sys.executable
    params, logs = work / "params.yaml", work / "logs"
    W = lambda p: str(work / p)  # noqa: E731
    stages = [
        ("config", [py, "-m", "seq2seq.cli.compose", *overrides, "--out", str(params)]),
        ("download", [py, "-m", "seq2seq.stages.download", "--params", str(params), "--out", W("raw"),
                      "--cache-dir", W(".downloads")]),
        ("prepare", [py, "-m", "seq2seq.stages.prepare", "--params", str(params), "--raw", W("raw"), "--out", W("prepared"),
                     "--stats", W("metrics/prepare.json")]),
        ("parent", [py, "-m", "seq2seq.stages.parent", "--params", str(params), "--out", W("parent")]),
        ("tokenizer", [py, "-m", "seq2seq.stages.tokenizer", "--params", str(params), "--data", W("prepared"),
                       "--parent", W("parent"), "--out", W("tokenizer")]),
        ("encode", [py, "-m", "seq2seq.stages.encode", "--params", str(params), "--data", W("prepared"),
                    "--tokenizer", W("tokenizer"), "--out", W("encoded")]),
        ("train", [py, "-m", "seq2seq.stages.train", "--params", str(params), "--data", W("prepared"),
                   "--tokenizer", W("tokenizer"), "--encoded", W("encoded"), "--parent", W("parent"), "--out", W("train"),
                   "--metrics", W("metrics/train.json"), "--state", W(".train_state"), "--history", W("plots/history.csv")]),
        ("evaluate", [py, "-m", "seq2seq.stages.evaluate", "--params", str(params), "--data", W("prepared"),
                      "--tokenizer", W("tokenizer"), "--checkpoints", W("train/checkpoints"),
                      "--out", W("evaluate"), "--metrics", W("metrics/test.json")]),
        ("track", [py, "-m", "seq2seq.stages.track", "--params", str(params), "--data", W("prepared"),
                   "--tokenizer", W("tokenizer"), "--checkpoints", W("train/checkpoints"),
                   "--run", W("train/mlflow_run.json"), "--evaluate", W("evaluate"), "--metrics", W("metrics/test.json"),
                   "--train-metrics", W("metrics/train.json"), "--history", W("plots/history.csv")]),
    ]
    missing = missing_conf_files(overrides)
    if missing:
        raise StageFailed("config", f"{', '.join(missing)} does not exist (yet): cannot compose "
                                    f"`{' '.join(overrides)}`")
    pipeline_start = time.perf_counter()
    for stage, cmd in stages:
        log(f"[{name}] {stage} ...")
        keeper = EpochCheckpoints(work / ".train_state" / "last.ckpt", work / "epochs") if score_epochs and stage == "train" else None
        if keeper:
            keeper.start()
        try:
            result = run_stage(stage, cmd, work, env, logs)
        except StageFailed as e:
            if stage == "config":
                text = (logs / "config.err").read_text(errors="replace")
                named = sorted(set(re.findall(r"Could not (?:find|load) '([\w./-]+)'", text)))
                errors = [ln.strip() for ln in text.splitlines() if ln.startswith("error:")]
                if named:
                    e = StageFailed("config", f"cannot compose `{' '.join(overrides)}`: "
                                              f"{', '.join(f'conf/{n}.yaml' for n in named)} does not exist (yet) "
                                              f"(full output: {logs / 'config.err'})")
                elif errors:
                    e = StageFailed("config", f"{' / '.join(errors)} (full output: {logs / 'config.err'})")
            raise e
        finally:
            if keeper:
                keeper.stop()
        row["stages"][stage] = result
        log(f"[{name}] {stage}: {result['seconds']:.1f} s, peak RSS {fmt(result['peak_rss_mib'], 0)} MiB")
        if stage == "config":
            pipeline_start = time.perf_counter()  # the pipeline proper: the five stages of dvc.yaml
    row["pipeline_seconds"] = round(time.perf_counter() - pipeline_start, 1)
    row["peak_rss_mib"] = max((s["peak_rss_mib"] for s in row["stages"].values() if s["peak_rss_mib"] is not None),
                              default=None)

    # Imported only now: this process stays small while the stages run. Decoding runs in this
    # process: greedy and beam 5 with the best checkpoint.
    try:
        import torch

        from seq2seq.inference.translator import translate
        from seq2seq.metrics import score

        torch.set_num_threads(2)
        cfg, model, sp_src, sp_tgt, sources, refs = load_trained(work)
        train_metrics = {**read_json(work / "train" / "timing.json"), **read_json(work / "metrics" / "train.json")}
        row["train_metrics"] = train_metrics
        row["test_metrics_evaluate_stage"] = read_json(work / "metrics" / "test.json")
        row["epochs"] = train_metrics.get("epochs")
        tps = train_metrics.get("train_tgt_tokens_per_s")
        if tps is None and train_metrics.get("train_tgt_tokens") is not None and train_metrics.get("train_seconds"):
            tps = train_metrics["train_tgt_tokens"] / train_metrics["train_seconds"]
        row["train_tgt_tokens_per_s"] = round(tps, 1) if tps is not None else None
        row["max_time"] = cfg.trainer.lightning.max_time
        row["precision"] = cfg.trainer.lightning.precision

        row["params_millions"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
        d = cfg.decode
        row["decode"] = {"batch_size": d.batch_size, "length_penalty": d.length_penalty, "max_len_a": d.max_len_a,
                         "max_len_b": d.max_len_b, "sentences": len(sources), "threads": torch.get_num_threads()}
        for label, beam in (("greedy", 1), (f"beam{BEAM}", BEAM)):
            log(f"[{name}] decode {label} ({len(sources)} sentences) ...")
            start = time.perf_counter()
            hyps = translate(model, sp_src, sp_tgt, sources, beam, d.length_penalty, d.max_len_a, d.max_len_b,
                             d.batch_size)
            seconds = time.perf_counter() - start
            scores = score(hyps, refs, tgt)
            row[f"bleu_{label}"], row[f"chrf_{label}"], row[f"ter_{label}"] = scores["bleu"], scores["chrf"], scores["ter"]
            row[f"bleu_tok_lc_{label}"], row["bleu_tok_lc_signature"] = scores["bleu_tok_lc"], scores["bleu_tok_lc_signature"]
            row[f"decode_seconds_{label}"] = round(seconds, 2)
            row[f"decode_sent_per_s_{label}"] = round(len(sources) / seconds, 1)
            row["bleu_signature"], row["chrf_signature"] = scores["bleu_signature"], scores["chrf_signature"]
            (work / f"hyps.{label}.txt").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
            log(f"[{name}] decode {label}: {seconds:.1f} s, BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f}")
        if score_epochs:
            row["epoch_scores"] = epoch_scores(name, work, cfg, sp_src, sp_tgt, sources, refs, tgt)
    except Exception:  # noqa: BLE001 - reported as this configuration's failure
        raise StageFailed("decode", tail(traceback.format_exc())) from None
    return row


def epoch_scores(name: str, work: Path, cfg, sp_src, sp_tgt, sources: list[str], refs: list[str], tgt: str) -> list[dict]:
    """Beam-5 test scores of each checkpoint kept after an epoch (EpochCheckpoints) and of the last one,
    decoded as above: [{"epoch", "step", "bleu_beam5", "chrf_beam5"}], in training order."""
    from seq2seq.errors import DataError
    from seq2seq.inference.checkpoint import read_checkpoint
    from seq2seq.inference.translator import model_from_checkpoint, translate
    from seq2seq.metrics import score

    d, seen, out = cfg.decode, set(), []
    for path in [*sorted((work / "epochs").glob("*.ckpt")), work / "train" / "checkpoints" / "last.ckpt"]:
        try:
            ckpt = read_checkpoint(path)
        except DataError as e:  # a copy caught half-written
            log(f"[{name}] skipped {path}: {e}")
            continue
        epoch, step = ckpt["epoch"] + 1, ckpt["global_step"]
        if step in seen:
            continue
        seen.add(step)
        model = model_from_checkpoint(ckpt, source=str(path))
        hyps = translate(model, sp_src, sp_tgt, sources, BEAM, d.length_penalty, d.max_len_a, d.max_len_b, d.batch_size)
        scores = score(hyps, refs, tgt)
        out.append({"epoch": epoch, "step": step, f"bleu_beam{BEAM}": scores["bleu"], f"chrf_beam{BEAM}": scores["chrf"]})
        log(f"[{name}] epoch {epoch} (step {step}): beam {BEAM} BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f}")
    return out


# --- report ----------------------------------------------------------------------------------
COLUMNS = ["config", "direction", "precision", "params (M)", "epochs", "train tgt tok/s", "BLEU greedy", f"BLEU beam{BEAM}",
           f"chrF beam{BEAM}", f"tok. lc BLEU beam{BEAM}", "decode sent/s greedy", f"decode sent/s beam{BEAM}", "peak RSS MiB", "wall time min"]


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(" --- " if i < 3 else " ---: " for i in range(len(COLUMNS))) + "|"]
    for r in rows:
        if r["status"] != "ok":
            cells = [f"{r['config']} (**failed: {r.get('failed_stage', '?')}**)", r["direction"]] + ["—"] * (len(COLUMNS) - 2)
        else:
            wall = r.get("pipeline_seconds")
            cells = [r["config"], r["direction"], fmt(r.get("precision")), fmt(r.get("params_millions"), 2), fmt(r.get("epochs")),
                     fmt(r.get("train_tgt_tokens_per_s"), 0), fmt(r.get("bleu_greedy"), 2), fmt(r.get(f"bleu_beam{BEAM}"), 2),
                     fmt(r.get(f"chrf_beam{BEAM}"), 2), fmt(r.get(f"bleu_tok_lc_beam{BEAM}"), 2),
                     fmt(r.get("decode_sent_per_s_greedy")),
                     fmt(r.get(f"decode_sent_per_s_beam{BEAM}")), fmt(r.get("peak_rss_mib"), 0),
                     fmt(wall / 60 if wall is not None else None)]
        lines.append("| " + " | ".join(cells) + " |")
    signatures = sorted({r["bleu_signature"] for r in rows if r.get("bleu_signature")})
    chrf = sorted({r["chrf_signature"] for r in rows if r.get("chrf_signature")})
    lines.append("")
    tok = sorted({r["bleu_tok_lc_signature"] for r in rows if r.get("bleu_tok_lc_signature")})
    lines.append("BLEU signature: " + ("; ".join(signatures) if signatures else "n/a") +
                 ("  ·  chrF signature: " + "; ".join(chrf) if chrf else ""))
    lines.append("Tokenized lowercased BLEU (comparable with published IWSLT'14 figures, not with sacreBLEU): " +
                 ("; ".join(tok) if tok else "n/a"))
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        first = (r.get("error") or "").strip().splitlines()
        lines.append(f"\n{r['config']} failed at stage {r.get('failed_stage')}: {first[0] if first else ''}")
    scored = [r for r in rows if r.get("epoch_scores")]
    if scored:
        lines += ["", f"Test scores after each epoch (beam {BEAM}; the last row of a run may be a part of an epoch):", "",
                  f"| config | epoch | step | BLEU beam{BEAM} | chrF beam{BEAM} |", "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['config']} | {e['epoch']} | {e['step']:,} | {e[f'bleu_beam{BEAM}']:.2f} | {e[f'chrf_beam{BEAM}']:.2f} |"
                  for r in scored for e in r["epoch_scores"]]
    return "\n".join(lines)


def cpu_model() -> str:
    """lscpu's model name and the widest matrix instructions the CPU has (they decide the kernels)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
        flags = set(next((ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), []))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"
    isa = next((label for flag, label in (("amx_tile", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX512"),
                                          ("avx2", "AVX2")) if flag in flags), "no AVX2")
    return f"{name} ({isa})"


def machine() -> dict:
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()}
    info["cpu_model"] = cpu_model()
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                            check=True).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                                                text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


# --- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the whole pipeline on Multi30k for the CPU recipes, one configuration after another, "
                    "and report BLEU, throughput, memory and time as one markdown table.",
        epilog="configurations: " + ", ".join(f"{n} ({s}→{t}: {' '.join(o)})" for n, (s, t, o) in CONFIGS.items()))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the Multi30k folder: train/val/test_2016_flickr.{de,en,fr} (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="results, work folders, corpus symlinks and mlflow.db go here (default: %(default)s)")
    parser.add_argument("--only", nargs="+", choices=list(CONFIGS), metavar="NAME",
                        help=f"run only these configurations ({', '.join(CONFIGS)})")
    parser.add_argument("--max-time", type=positive_minutes, metavar="MINUTES",
                        help="training budget in minutes for every configuration (trainer.lightning.max_time); "
                             "default: the recipe's (30)")
    parser.add_argument("--extra-overrides", nargs="+", default=[], metavar="KEY=VALUE",
                        help="Hydra overrides added to every configuration (e.g. trainer.batch_tokens=2000)")
    # Hidden: replaces the recipe (experiment=..., model=...) of every configuration, for a quick trial
    # of the benchmark itself, e.g. --recipe-override experiment=smoke.
    parser.add_argument("--score-epochs", action="store_true",
                        help="keep the checkpoint after every epoch and score each on the test set (beam 5)")
    parser.add_argument("--recipe-override", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    data, out = args.data.expanduser().resolve(), args.out.expanduser().resolve()
    names = args.only or list(CONFIGS)
    if not data.is_dir():
        sys.exit(f"error: Multi30k folder {data} not found (pass --data /path/to/multi30k)")
    corpus = out / "corpus"
    layout_corpus(data, corpus, {lang for n in names for lang in CONFIGS[n][:2]})

    uri = f"sqlite:///{out / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    env.update({"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(
        p for p in [str(REPO / "src"), os.environ.get("PYTHONPATH", "")] if p)})
    sys.path.insert(0, str(REPO / "src"))
    prepare_mlflow(uri, "seq2seq", out / "mlartifacts")

    log(f"benchmark: {', '.join(names)}; corpus {data} (as {corpus}); results in {out}")
    rows, started = [], dt.datetime.now(dt.timezone.utc)
    for name in names:
        src, tgt, recipe = CONFIGS[name]
        if args.recipe_override is not None:
            recipe = ["data=parallel", *args.recipe_override]
        overrides = [*recipe, f"data.path={corpus}", f"data.src={src}", f"data.tgt={tgt}"]
        if args.max_time is not None:
            overrides.append(f"trainer.lightning.max_time='{max_time_arg(args.max_time)}'")
        overrides += args.extra_overrides
        work = out / "runs" / name
        if work.exists():
            shutil.rmtree(work)  # a fresh run: no resumed training, no stale outputs
        work.mkdir(parents=True)
        log(f"\n=== {name} ({src}→{tgt}): {' '.join(overrides)}")
        start = time.perf_counter()
        try:
            row = run_config(name, overrides, src, tgt, work, env, args.score_epochs)
        except StageFailed as e:
            row = {"config": name, "direction": f"{src}→{tgt}", "overrides": overrides, "status": "failed",
                   "failed_stage": e.stage, "error": e.message, "work_dir": str(work)}
            log(f"[{name}] FAILED at stage {e.stage}: {e.message}")
        row["total_seconds"] = round(time.perf_counter() - start, 1)
        if row["status"] == "ok":
            log_to_mlflow(uri, work / "train" / "mlflow_run.json", name, row)
        rows.append(row)
        (work / "result.json").write_text(json.dumps(row, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    # The table also keeps the configurations that earlier invocations ran into the same --out
    # (e.g. one --only NAME at a time), in the order of CONFIGS.
    ran = {r["config"]: r for r in rows}
    earlier = {n: read_json(out / "runs" / n / "result.json") for n in CONFIGS if n not in ran}
    earlier = {n: r for n, r in earlier.items() if r.get("config") == n and "status" in r}
    failed_now = any(r["status"] != "ok" for r in rows)
    rows = [ran.get(n) or earlier[n] for n in CONFIGS if n in ran or n in earlier]
    report = table(rows)
    results = {"started": started.isoformat(timespec="seconds"), "argv": sys.argv[1:], "data": str(data),
               "mlflow_tracking_uri": uri, "machine": machine(), "configs": rows,
               "from_earlier_runs": sorted(earlier)}
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "results.md").write_text(report + "\n", encoding="utf-8")
    print("\n" + report, flush=True)
    return 1 if failed_now else 0


if __name__ == "__main__":
    sys.exit(main())
