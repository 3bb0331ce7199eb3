"""The MLflow store under parallel writers: DVC's queue workers (`dvc queue start -j N`) start
stages at the same moment, and each may be the first to create the sqlite store."""

import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_env

STARTER = """
import sys, time
from seq2seq import tracking
from seq2seq.config import compose
cfg = compose([f"mlflow.tracking_uri=sqlite:///{sys.argv[1]}"])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all processes start together
print(tracking.start_run(cfg)[1])
"""


@pytest.mark.slow
def test_parallel_stages_create_one_store_and_lose_no_run(tmp_path):
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    start = time.time() + 15  # after every interpreter has imported mlflow
    procs = [subprocess.Popen([sys.executable, "-c", STARTER, str(db), str(start)], cwd=ROOT, env=run_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    run_ids = {out.split()[-1] for out, _ in outs}
    mlc = MlflowClient(f"sqlite:///{db}")
    (exp,) = [e for e in mlc.search_experiments() if e.name == "seq2seq"]  # one, not one per process
    assert {r.info.run_id for r in mlc.search_runs([exp.experiment_id])} == run_ids and len(run_ids) == 4
