"""Load on a real `mlflow models serve`: good, malformed and abusive requests from concurrent clients.

    .venv/bin/python benchmarks/serve_load.py MODEL [--clients 8] [--seconds 60] [--slices 6]
    MLFLOW_TRACKING_URI=sqlite:///mlflow.db .venv/bin/python benchmarks/serve_load.py models:/seq2seq-de-en/1

MODEL is a model folder or URI that `mlflow models serve` accepts. The script starts the server on
127.0.0.1 (`--env-manager local`, this interpreter's environment; the SEQ2SEQ_SERVE_* limits from
the environment, if set), then `--clients` threads send requests for 2 x `--seconds`: half of the
time good requests only (1-8 sentences each), half of the time the mix (80% good, 10% malformed,
10% abusive: over a serving limit), alternating in `--slices` slices of each so that the two see
the same machine. It prints requests/s, p50/p99 of the good requests without and with the mix,
the counts by HTTP status, every answer that was not the expected one (a good request must get
one translation per sentence, a malformed or abusive one a 400 naming its row or limit), how long
a one-word request takes once the load is over, how busy other processes kept the CPUs, and the
CPU model. Exit status 1 if any answer was unexpected. Timings compare only on the same, otherwise
idle machine.

tests/test_registry.py runs the same requests for a few seconds against the smoke model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

WORDS = "Haus Baum Fluss Licht Fenster Musik Stadt Wasser Freund Idee Welt Garten Tisch Brot Stein".split()
GOOD_ONLY = {"good": 1.0}
MIX = {"good": 0.8, "malformed": 0.1, "abusive": 0.1}

# (body, what its 400 must say): the `source` values are not strings
MALFORMED = [
    ({"inputs": {"source": [42]}}, ["row 0 of 'source' is 42 (a number), not a string"]),
    ({"inputs": {"source": [None]}}, ["row 0 of 'source' is null, not a string"]),
    ({"inputs": {"source": [True]}}, ["row 0 of 'source' is true (a boolean), not a string"]),
    ({"inputs": {"source": [3.5]}}, ["row 0 of 'source' is 3.5 (a number), not a string"]),
    ({"inputs": {"source": ["Haus .", "Baum .", {"text": "Licht"}]}}, ["row 2 of 'source' is {'text': 'Licht'} (an object)"]),
    ({"inputs": {"source": ["Haus .", 7]}}, ["row 1 of 'source' is 7 (a number), not a string"]),
    ({"dataframe_split": {"columns": ["source"], "data": [["Haus ."], [None]]}}, ["row 1 of 'source' is null, not a string"]),
    ({"dataframe_records": [{"source": "Haus ."}, {"source": False}]}, ["row 1 of 'source' is false (a boolean)"]),
]
# (body, what its 400 must say): each over one serving limit, by far (decoded, each would take minutes)
ONE = {"source": ["Haus Baum Fluss ."]}
ABUSIVE = [
    ({"inputs": {"source": [f"Satz {i} ." for i in range(10_000)]}},
     ["10,000 sentences: over this server's limit of", "SEQ2SEQ_SERVE_MAX_ROWS"]),
    ({"inputs": ONE, "params": {"beam_size": 10_000}},
     ["parameter beam_size=10,000: over this server's limit of", "SEQ2SEQ_SERVE_MAX_BEAM"]),
    ({"inputs": ONE, "params": {"beam_size": 10_000, "n_best": 10_000}},
     ["parameter n_best=10,000: over this server's limit of", "SEQ2SEQ_SERVE_MAX_NBEST"]),
    ({"inputs": ONE, "params": {"max_len_b": 1_000_000}},
     ["row 0 of 'source': up to 1,000,000 output tokens", "SEQ2SEQ_SERVE_MAX_OUTPUT_TOKENS"]),
    ({"inputs": ONE, "params": {"max_len_a": 1000.0}},
     ["row 0 of 'source': up to", "output tokens (max_len_a=1000 x", "SEQ2SEQ_SERVE_MAX_OUTPUT_TOKENS"]),
    ({"inputs": {"source": ["Haus .", " ".join(WORDS[i % len(WORDS)] for i in range(5000))]}},
     ["row 1 of 'source': ", "source tokens: over this server's limit of", "SEQ2SEQ_SERVE_MAX_SOURCE_TOKENS"]),
]


@dataclass
class Answer:
    """One request and what came back: kind (good, malformed, abusive), phase (good-only, mix)."""

    kind: str
    phase: str
    status: int | None  # None: no HTTP answer (connection error, client timeout)
    seconds: float
    problem: str | None  # None when the answer was the expected one


def good_request(rng: random.Random) -> tuple[dict, int]:
    """1-8 sentences of 3-12 words (the body, and how many translations must come back)."""
    n = rng.randint(1, 8)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + " ." for _ in range(n)]
    return {"inputs": {"source": sentences}}, n


def send(session: requests.Session, url: str, kind: str, phase: str, rng: random.Random, timeout: float) -> Answer:
    """Send one request of `kind` and check its answer."""
    if kind == "good":
        body, n = good_request(rng)
    else:
        body, says = rng.choice(MALFORMED if kind == "malformed" else ABUSIVE)
    start = time.perf_counter()
    try:
        r = session.post(f"{url}/invocations", data=json.dumps(body), timeout=timeout,
                         headers={"Content-Type": "application/json"})
    except requests.RequestException as e:
        return Answer(kind, phase, None, time.perf_counter() - start, f"no answer: {type(e).__name__}: {e}")
    seconds = time.perf_counter() - start
    problem = None
    if kind == "good":
        predictions = r.json().get("predictions") if r.status_code == 200 else None
        if (not isinstance(predictions, list) or len(predictions) != n
                or not all(isinstance(p.get("translation"), str) for p in predictions)):
            problem = f"{n} sentences: HTTP {r.status_code} {r.text[:300]}"
    else:
        try:
            message = r.json().get("message", "")
        except ValueError:  # not JSON: e.g. MLflow's 504 when a request takes over 60 s
            message = r.text
        if r.status_code != 400 or not all(part in message for part in says):
            problem = f"{json.dumps(body)[:100]}: HTTP {r.status_code} {message[-300:]!r}, expected 400 with {says}"
    return Answer(kind, phase, r.status_code, seconds, problem)


def run_load(url: str, clients: int, seconds: float, mix: dict, phase: str, seed: int = 0,
             timeout: float = 120) -> list[Answer]:
    """`clients` threads, each sending one request after the other for `seconds`, the kinds drawn
    from `mix` ({kind: share}); every answer, in no particular order."""
    answers: list[Answer] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        with requests.Session() as session:
            while time.perf_counter() < deadline:
                kind = rng.choices(list(mix), weights=list(mix.values()))[0]
                answer = send(session, url, kind, phase, rng, timeout)
                with lock:
                    answers.append(answer)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def alternate(url: str, clients: int, seconds: float, slices: int, seed: int = 0, timeout: float = 120) -> list[Answer]:
    """Good-only and mixed load, `seconds` each in all, alternating in `slices` slices of each."""
    answers = []
    for s in range(slices):
        answers += run_load(url, clients, seconds / slices, GOOD_ONLY, "good-only", seed * 100 + 2 * s, timeout)
        answers += run_load(url, clients, seconds / slices, MIX, "mix", seed * 100 + 2 * s + 1, timeout)
    return answers


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method: a value that was measured."""
    ranked = sorted(values)
    return ranked[max(0, min(len(ranked) - 1, round(q / 100 * len(ranked) + 0.5) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServer:
    """`mlflow models serve -m MODEL --env-manager local` on a free port of 127.0.0.1, in its own
    process group (so that stop() ends uvicorn too); output to `log`."""

    def __init__(self, model_uri: str, log: Path, cwd: Path | None = None, env: dict | None = None):
        env = dict(os.environ if env is None else env)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # uvicorn from this venv
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                if requests.get(f"{self.url}/ping", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited:\n{self.log.read_text()[-3000:]}")
            if time.time() > deadline:
                raise RuntimeError(f"mlflow models serve did not answer /ping within {timeout:.0f} s")
            time.sleep(0.5)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes (Linux /proc)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # process group: the server and uvicorn
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all cores together (Linux /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def summary(answers: list[Answer], seconds: float) -> dict:
    """requests/s of each phase, p50/p99 of good requests in each, counts by status and kind, problems."""
    out = {}
    for phase in ("good-only", "mix"):
        mine = [a for a in answers if a.phase == phase]
        good = [a.seconds for a in mine if a.kind == "good" and a.problem is None]
        statuses = {}
        for a in mine:
            key = f"{a.status or 'no answer'} {a.kind}"
            statuses[key] = statuses.get(key, 0) + 1
        out[phase] = {"requests": len(mine), "requests_per_s": len(mine) / seconds,
                      "good_p50_s": percentile(good, 50) if good else None,
                      "good_p99_s": percentile(good, 99) if good else None, "statuses": dict(sorted(statuses.items()))}
    out["problems"] = [a.problem for a in answers if a.problem]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a model folder, runs:/... or models:/<name>/<version> (with MLFLOW_TRACKING_URI)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60, help="of each load: good-only, and the mix")
    parser.add_argument("--slices", type=int, default=6, help="alternate good-only and mix this many times")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, default=Path("serve_load.log"), help="the server's output")
    args = parser.parse_args(argv)

    from multi30k import cpu_model  # this folder is on sys.path when run as a script

    limits = {k: v for k, v in os.environ.items() if k.startswith("SEQ2SEQ_SERVE_")}
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; {args.model}; limits: {limits or 'the defaults'}")
    server = ModelServer(args.model, args.log)
    try:
        server.wait_ready()
        send(requests.Session(), server.url, "good", "warm-up", random.Random(0), 120)
        before = busy_cpu_seconds(), server.cpu_seconds(), time.process_time(), time.perf_counter()
        answers = alternate(server.url, args.clients, args.seconds, args.slices, args.seed)
        others = busy_cpu_seconds() - before[0] - (server.cpu_seconds() - before[1]) - (time.process_time() - before[2])
        wall = time.perf_counter() - before[3]
        time.sleep(2)
        cpu = server.cpu_seconds()
        start = time.perf_counter()
        tiny = requests.post(f"{server.url}/invocations", json={"inputs": {"source": ["Haus"]}}, timeout=120)
        tiny_s = time.perf_counter() - start
        time.sleep(2)
        idle_cpu = server.cpu_seconds() - cpu
    finally:
        server.stop()

    result = summary(answers, args.seconds)
    print(f"{args.clients} clients, {args.seconds:g} s of good requests only and {args.seconds:g} s of the mix "
          f"(80% good, 10% malformed, 10% abusive), alternating in {args.slices} slices of each")
    print("| load | requests/s | good p50 (s) | good p99 (s) | answers |\n| --- | ---: | ---: | ---: | --- |")
    for phase in ("good-only", "mix"):
        r = result[phase]
        counts = ", ".join(f"{n} x {k}" for k, n in r["statuses"].items())
        print(f"| {phase} | {r['requests_per_s']:.1f} | {r['good_p50_s']:.3f} | {r['good_p99_s']:.3f} | {counts} |")
    print(f"after the load: a one-word request answered {tiny.status_code} in {tiny_s:.3f} s; "
          f"the server used {idle_cpu:.2f} s of CPU in the 4 s around it")
    print(f"other processes kept {others / wall:.2f} of the {os.cpu_count()} CPUs busy during the load "
          "(compare timings only when this is near 0)")
    for problem in result["problems"][:20]:
        print(f"unexpected: {problem}")
    print(f"{len(result['problems'])} unexpected answers")
    return 1 if result["problems"] or tiny.status_code != 200 else 0


if __name__ == "__main__":
    sys.exit(main())
