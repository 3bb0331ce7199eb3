"""benchmarks/multi30k.py on a tiny Multi30k-shaped folder: every stage runs, the table reports each
configuration, and a later `--only NAME` keeps the rows that earlier invocations wrote; then
benchmarks/decode_speed.py on the trained run."""

import json
import sys
import time
from pathlib import Path

import pytest
from test_learning import WORDS, corpus

from conftest import ROOT as REPO
from conftest import run_env, sh

FRENCH = {"the": "le", "dog": "chien", "cat": "chat", "sees": "voit", "likes": "aime", "a": "un", "red": "rouge",
          "small": "petit", "ball": "balle", "man": "homme", "woman": "femme", "house": "maison"}


def multi30k_folder(folder: Path) -> Path:
    """train / val / test_2016_flickr .{de,en,fr} as in Multi30k's release, word-for-word 'translations'."""
    assert set(FRENCH) == set(WORDS.values())
    de, en = corpus(260, seed=3)
    fr = [" ".join(FRENCH[w] for w in line.split()) for line in en]
    folder.mkdir()
    for split, rows in (("train", slice(0, 200)), ("val", slice(200, 230)), ("test_2016_flickr", slice(230, 260))):
        for lang, lines in (("de", de), ("en", en), ("fr", fr)):
            (folder / f"{split}.{lang}").write_text("".join(s + "\n" for s in lines[rows]), encoding="utf-8")
    return folder


def benchmark(data: Path, out: Path, *only: str, flags: tuple[str, ...] = ()) -> dict:
    sh([sys.executable, str(REPO / "benchmarks" / "multi30k.py"), "--data", str(data), "--out", str(out),
        "--only", *only, "--recipe-override", "experiment=smoke", "--extra-overrides", "tokenizer.vocab_size=60",
        "trainer.lightning.max_epochs=1", *flags], cwd=REPO, env=run_env(), timeout=600)
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_benchmark_reports_each_configuration_and_keeps_earlier_rows(tmp_path):
    data, out = multi30k_folder(tmp_path / "multi30k"), tmp_path / "results"

    first = benchmark(data, out, "lstm")
    (row,) = first["configs"]
    assert row["config"] == "lstm" and row["status"] == "ok" and row["direction"] == "de→en"
    assert row["epochs"] == 1 and row["train_tgt_tokens_per_s"] > 0 and row["precision"] == "32-true"
    assert 0 <= row["bleu_greedy"] <= 100 and 0 <= row["bleu_beam5"] <= 100
    assert row["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert len((out / "runs" / "lstm" / "hyps.beam5.txt").read_text().splitlines()) == 30
    assert (out / "corpus" / "valid.de").is_symlink()  # the corpus is linked, never copied
    assert (out / "corpus" / "valid.de").resolve() == (data / "val.de").resolve()
    assert "epoch_scores" not in row and not (out / "runs" / "lstm" / "epochs").exists()

    second = benchmark(data, out, "lstm_en_fr", flags=("--score-epochs",))
    assert [r["config"] for r in second["configs"]] == ["lstm", "lstm_en_fr"]
    assert second["from_earlier_runs"] == ["lstm"]
    assert second["configs"][0] == row
    fr = second["configs"][1]
    assert fr["direction"] == "en→fr" and fr["status"] == "ok"
    main_table, _, epoch_table = (out / "results.md").read_text().partition("Test scores after each epoch")
    assert [line.split("|")[1].strip() for line in main_table.splitlines() if line.startswith("| lstm")] == ["lstm", "lstm_en_fr"]
    # one epoch: its checkpoint is the best and the last, scored by the same beam search as the table's
    (after,) = fr["epoch_scores"]
    assert after["epoch"] == 1 and after["step"] > 0
    assert (after["bleu_beam5"], after["chrf_beam5"]) == (fr["bleu_beam5"], fr["chrf_beam5"]) and fr["chrf_beam5"] > 0
    assert f"| lstm_en_fr | 1 | {after['step']:,} | {fr['bleu_beam5']:.2f} | {fr['chrf_beam5']:.2f} |" in epoch_table

    speed = sh([sys.executable, str(REPO / "benchmarks" / "decode_speed.py"), str(out / "runs" / "lstm"),
                "--batch-sizes", "3", "16", "--beams", "1", "2", "--repeat", "1"], cwd=REPO, env=run_env())
    rows = [line.split("|")[1:-1] for line in speed.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    results = {(int(beam), int(batch)): float(bleu) for beam, batch, _, bleu in rows[1:]}
    assert sorted(results) == [(1, 3), (1, 16), (2, 3), (2, 16)]
    assert results[(1, 3)] == results[(1, 16)] == pytest.approx(row["bleu_greedy"], abs=0.01)  # batching is invisible
    assert results[(2, 3)] == results[(2, 16)]


def test_epoch_checkpoints_copies_each_written_state_once(tmp_path):
    """The train stage rewrites last.ckpt after each epoch and removes it at the end: each version is
    copied once, after it stopped changing, and a missing file is no error."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from multi30k import EpochCheckpoints

    last, dest = tmp_path / "state" / "last.ckpt", tmp_path / "epochs"
    keeper = EpochCheckpoints(last, dest, poll=0.05)
    keeper.start()
    try:
        time.sleep(0.2)  # no file yet
        last.parent.mkdir()
        for epoch in (1, 2):
            last.write_bytes(b"epoch %d" % epoch + b"." * epoch)  # another size each time
            deadline = time.monotonic() + 10
            while len(list(dest.glob("*.ckpt"))) < epoch and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(0.3)  # unchanged: not copied again
        last.unlink()
        time.sleep(0.2)
    finally:
        keeper.stop()
    assert sorted(p.name for p in dest.iterdir()) == ["001.ckpt", "002.ckpt"]
    assert [(dest / n).read_bytes() for n in ("001.ckpt", "002.ckpt")] == [b"epoch 1.", b"epoch 2.."]
