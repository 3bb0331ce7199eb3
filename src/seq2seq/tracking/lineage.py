"""Where a model comes from: the git commit and whether the tree differed from it, the DVC
experiment, and the hashes dvc.lock records for every cached output upstream; and the files
(dvc.lock, params.yaml, the upstream stages' metrics and plots) a run logs under `lineage/` so that
`seq2seq restore` can put them back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

# Logged under lineage/ with the upstream stages' uncached outputs (metrics/, plots/): with the git
# commit, what `dvc repro` needs to see the pulled data as up to date.
LINEAGE_FILES = ("dvc.lock", "params.yaml")
# On a fine-tuned run (trainer.init_from) and its registered version: the parent version or checkpoint
# and its weights' MD5 (set by the train stage)
INIT_FROM_TAG = "seq2seq.init_from"


def git(*args: str, cwd: Path | None = None) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def uncached_outs(skip_stage: str | None = None) -> list[str]:
    """The stages' outputs that git tracks (cache: false: metrics/, plots/), read from dvc.yaml,
    in order; those of `skip_stage` left out."""
    spec = yaml.safe_load(Path("dvc.yaml").read_text()) if Path("dvc.yaml").exists() else {}
    files = []
    for name, stage in ((spec or {}).get("stages") or {}).items():
        for kind in ("outs", "metrics", "plots"):
            for out in stage.get(kind, []):
                if isinstance(out, dict) and next(iter(out.values()), {}).get("cache") is False and name != skip_stage:
                    files.append(next(iter(out)))
    return files


def pipeline_files() -> set[str]:
    """Files a pipeline run changes in git on purpose: params.yaml (`dvc exp run -S`), dvc.lock
    and the stages' uncached outputs."""
    return {*LINEAGE_FILES, *uncached_outs()}


def lineage_tags() -> dict[str, str]:
    """Where this model comes from: the git commit; whether the tree differed from it in anything
    but pipeline_files() (which the run logs, or which the pipeline writes); the DVC experiment;
    and, when DVC runs the stage, the hashes dvc.lock records for every cached output upstream."""
    tags = {"git.commit": (git("rev-parse", "HEAD") or "unknown").strip()}
    status = git("status", "--porcelain", "--untracked-files=no")
    if status is not None:
        ours = pipeline_files()
        changed = sorted(p for line in status.splitlines() if (p := line[3:].split(" -> ")[-1]) not in ours)
        tags["git.dirty"] = str(bool(changed)).lower()
        if changed:
            tags["git.dirty_files"] = ", ".join(changed)[:4000]
    for var, tag in (("DVC_EXP_NAME", "dvc.exp_name"), ("DVC_EXP_BASELINE_REV", "dvc.baseline_rev")):
        if os.environ.get(var):
            tags[tag] = os.environ[var]
    lock = Path("dvc.lock")
    if os.environ.get("DVC_STAGE") and lock.exists():
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        for name, stage in stages.items():
            if name == os.environ["DVC_STAGE"]:
                continue  # this stage's own entry is the previous run's until it ends
            for out in stage.get("outs", []):
                if out.get("md5") and out.get("path"):
                    tags[f"dvc.md5.{out['path']}"] = out["md5"]
    else:
        tags["dvc.lock"] = "not run by dvc: no dvc.lock hashes"
    return tags


def lineage_copy(path: Path, tmp: Path) -> Path:
    """`path` as the run logs it: dvc.lock without the running stage's entry, which still
    describes that stage's previous run (DVC rewrites it when the stage ends)."""
    if path.name != "dvc.lock" or not os.environ.get("DVC_STAGE"):
        return path
    lock = yaml.safe_load(path.read_text()) or {}
    lock.get("stages", {}).pop(os.environ["DVC_STAGE"], None)
    out = tmp / path.name
    out.write_text(yaml.safe_dump(lock, sort_keys=False))
    return out
