"""Stage 5: beam-search the test set with the best checkpoint and score it with sacreBLEU.

    python -m seq2seq.evaluate --params params.yaml --data data/prepared --tokenizer data/tokenizer \
        --checkpoints data/train/checkpoints --run data/train/mlflow_run.json \
        --out data/evaluate --metrics metrics/test.json

`decode.checkpoint` picks the checkpoint: best (by valid BLEU), last, or averaged.

Hypotheses are detokenized with SentencePiece and scored against the raw references: BLEU,
chrF and TER, each with its sacreBLEU signature (the headline scores), and `bleu_tok_lc`, BLEU on
Moses-tokenized lowercased text as published IWSLT'14 figures are computed (see tokenized_bleu).

MLflow: one run per pipeline run. The first evaluation of a trained model logs into the run the
train stage created (named in --run). When that run was evaluated already — DVC reused the
model and reran only this stage, e.g. `dvc exp run -S decode.beam_size=10` — the scores go into
a new run holding every param of this pipeline run (the model's training params included: DVC
skipped training because they are unchanged) and the tags `seq2seq.model_run_id` and
`seq2seq.checkpoint_md5` naming where the model came from; the earlier run stays as it was.
The store must be the one the train stage used: an unreachable or different store fails before
decoding, naming both. The run then gets the model itself, as an MLflow pyfunc model registered
as a new version of `registry.name`, with its lineage (seq2seq.registry).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import sacrebleu
import torch

from seq2seq import registry, tracking
from seq2seq.config import load_params
from seq2seq.errors import DataError, Seq2SeqError
from seq2seq.io import atomic_path, md5sum, read_lines, write_json
from seq2seq.stage import run_stage
from seq2seq.translator import Translator


def score(hyps: list[str], refs: list[str], lang: str = "en") -> dict:
    """BLEU, chrF and TER of detokenized hypotheses against raw references, with signatures
    (sacreBLEU: the headline), and `bleu_tok_lc`, BLEU as published IWSLT'14 figures compute it."""
    result = {}
    for name, metric in [("bleu", sacrebleu.metrics.BLEU()), ("chrf", sacrebleu.metrics.CHRF()), ("ter", sacrebleu.metrics.TER())]:
        result[name] = round(metric.corpus_score(hyps, [refs]).score, 4)
        result[f"{name}_signature"] = str(metric.get_signature())
    result["bleu_tok_lc"], result["bleu_tok_lc_signature"] = tokenized_bleu(hyps, refs, lang)
    return result


def tokenized_bleu(hyps: list[str], refs: list[str], lang: str) -> tuple[float, str]:
    """BLEU comparable with published IWSLT'14 figures (fairseq's prepare-iwslt14.sh and scorer,
    Joey NMT): both sides get fairseq's ’ → ' replacement, the Moses tokenizer as the prepare stage
    runs it (prepare.moses_words: tokenizer.perl -l `lang`, the period after a sentence-final
    abbreviation split off) and lowercasing; then corpus BLEU with no further tokenization and no
    smoothing (multi-bleu.perl). Not comparable with sacreBLEU."""
    import sacremoses

    from seq2seq.prepare import moses_words

    def prep(lines: list[str], what: str) -> list[str]:
        return [" ".join(words) for words in moses_words([line.replace("\u2019", "'") for line in lines], lang, what)]

    metric = sacrebleu.metrics.BLEU(tokenize="none", lowercase=True, smooth_method="none", force=True)
    value = round(metric.corpus_score(prep(hyps, "hypotheses"), [prep(refs, "references")]).score, 4)
    return value, f"moses:sacremoses-{sacremoses.__version__}|lang:{lang}|{metric.get_signature()}"


EVALUATED = "seq2seq.evaluated"  # tag of a run that holds test scores


def model_run(cfg, run_file: Path) -> tuple[str, str, bool]:
    """(tracking URI, the train stage's run id, whether the store holds that run), checked before
    any decoding: Seq2SeqError when the store cannot be reached, or when it is not the store the
    train stage used and does not hold the run (scores would land away from their model)."""
    trained = json.loads(run_file.read_text())
    uri = tracking.tracking_uri(cfg)
    mlc = tracking.open_store(uri)
    try:
        mlc.get_run(trained["run_id"])
        found = True
    except Exception:  # noqa: BLE001 - MlflowException: no such run in this store
        found = False
    if not found and tracking.redact(uri) != trained["tracking_uri"]:
        raise Seq2SeqError(
            f"{run_file}: the model was trained in MLflow run {trained['run_id']} of {trained['tracking_uri']}, "
            f"but this evaluation would log to {tracking.redact(uri)}, which does not hold that run; set "
            "MLFLOW_TRACKING_URI (or mlflow.tracking_uri) to the store the train stage used, or retrain "
            "(dvc repro --force train)")
    return uri, trained["run_id"], found


def evaluation_run(cfg, uri: str, trained_id: str, found: bool, checkpoint_md5: str) -> str:
    """The run this evaluation's scores go into: the training's own run if no evaluation has
    claimed it yet, else a new run (see the module docstring). Claimed under the store's lock, so
    that parallel queue workers evaluating one model never share a run."""
    mlc = tracking.client(uri)
    with tracking.store_lock(uri):
        if found and EVALUATED not in mlc.get_run(trained_id).data.tags:
            run_id = trained_id
        else:
            _, run_id = tracking.start_run(cfg, {"seq2seq.model_run_id": trained_id})
        mlc.set_tag(run_id, EVALUATED, "true")
    mlc.set_tag(run_id, "seq2seq.checkpoint_md5", checkpoint_md5)
    return run_id


def run(cfg, data: Path, tokenizer: Path, checkpoints: Path, run_file: Path, out: Path, metrics: Path,
        params_file: Path = Path("params.yaml")) -> None:
    checkpoint = checkpoints / f"{cfg.decode.checkpoint}.ckpt"
    if not checkpoint.exists():
        raise DataError(f"{checkpoint}: checkpoint not found (run the train stage)")
    uri, trained_id, found = model_run(cfg, run_file)
    translator = Translator.load(checkpoint, tokenizer, "cuda" if torch.cuda.is_available() else "cpu")
    sources = read_lines(data / f"test.{cfg.data.src}")
    refs = read_lines(data / f"test.{cfg.data.tgt}")
    if len(sources) != len(refs):
        raise DataError(f"{data}/test.{cfg.data.src} has {len(sources)} lines but {data}/test.{cfg.data.tgt} has {len(refs)}")
    d = cfg.decode
    hyps = translator.translate(sources, beam_size=d.beam_size, length_penalty=d.length_penalty, max_len_a=d.max_len_a,
                                max_len_b=d.max_len_b, batch_size=d.batch_size, progress=True)
    scores = score(hyps, refs, cfg.data.tgt)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "hyps.txt").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    write_json(metrics, scores)
    print(json.dumps(scores, indent=1))

    with tracking.tolerant(f"test scores of the model of run {trained_id}"):
        run_id = evaluation_run(cfg, uri, trained_id, found, md5sum(checkpoint))
        print(f"mlflow: test scores in run {run_id} of {tracking.redact(uri)}"
              + ("" if run_id == trained_id else f" (the model comes from run {trained_id})"))
        mlc = tracking.client(uri)
        for name in ("bleu", "chrf", "ter", "bleu_tok_lc"):
            mlc.log_metric(run_id, f"test_{name}", scores[name])
            mlc.set_tag(run_id, f"test_{name}_signature", scores[f"{name}_signature"])
        mlc.log_param(run_id, "test.sentences", len(hyps))
        mlc.set_tag(run_id, "test_checkpoint", cfg.decode.checkpoint)
        for path in (out / "hyps.txt", metrics):
            mlc.log_artifact(run_id, str(path), artifact_path="evaluate")
        with tracking.tolerant(f"the model of run {run_id}"):
            version = registry.log_model(mlc, run_id, cfg, checkpoint, tokenizer, params_file, sources, scores)
            print(f"mlflow: model in run {run_id} (artifacts/model)" + (f", registered as {version}" if version else ""))
        if run_id != trained_id:  # a run of this stage's own: it ends here (the train stage ends its own)
            mlc.set_terminated(run_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--tokenizer", type=Path, default=Path("data/tokenizer"))
    parser.add_argument("--checkpoints", type=Path, default=Path("data/train/checkpoints"))
    parser.add_argument("--run", type=Path, default=Path("data/train/mlflow_run.json"))
    parser.add_argument("--out", type=Path, default=Path("data/evaluate"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/test.json"))
    args = parser.parse_args(argv)
    run_stage(lambda: run(load_params(args.params), args.data, args.tokenizer, args.checkpoints, args.run, args.out,
                          args.metrics, Path(args.params)))


if __name__ == "__main__":
    main()
