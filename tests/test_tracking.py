"""The MLflow store under parallel writers: DVC's queue workers (`dvc queue start -j N`) start
stages at the same moment, and each may be the first to create the sqlite store."""

import subprocess
import sys

import pytest

from conftest import ROOT, run_env

STARTER = """
import sys, time
from seq2seq.tracking import runs as tracking
from seq2seq.config.params import compose
cfg = compose([f"mlflow.tracking_uri=sqlite:///{sys.argv[1]}"])
print("ready", flush=True)
sys.stdin.readline()  # the barrier: the test lets every process go at once
entered = time.time()
run_id = tracking.start_run(cfg)[1]
print(entered, time.time(), run_id)
"""


@pytest.mark.slow
def test_parallel_stages_create_one_store_and_lose_no_run(tmp_path):
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    errs = [open(tmp_path / f"stderr_{i}", "w+") for i in range(4)]  # closed below
    procs = [subprocess.Popen([sys.executable, "-c", STARTER, str(db)], cwd=ROOT, env=run_env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=err, text=True) for err in errs]
    try:
        for p, err in zip(procs, errs):  # every interpreter has imported mlflow and composed its config
            assert p.stdout.readline() == "ready\n", err.seek(0) or err.read()[-3000:]
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=300)[0] for p in procs]
        for p, err in zip(procs, errs):
            assert p.returncode == 0, err.seek(0) or err.read()[-3000:]
    finally:
        for p, err in zip(procs, errs):
            p.kill()
            err.close()
    entered, left, run_ids = zip(*(out.split() for out in outs))
    # The race happened: every process was inside start_run before the first one came out of it.
    assert max(map(float, entered)) < min(map(float, left)), (entered, left)
    mlc = MlflowClient(f"sqlite:///{db}")
    (exp,) = [e for e in mlc.search_experiments() if e.name == "seq2seq"]  # one, not one per process
    assert {r.info.run_id for r in mlc.search_runs([exp.experiment_id])} == set(run_ids) and len(set(run_ids)) == 4
