"""The trained model as an MLflow pyfunc model: a column of source sentences in, translations out.

    import mlflow
    model = mlflow.pyfunc.load_model("models:/seq2seq-de-en/1")
    model.predict(pd.DataFrame({"source": ["Guten Morgen ."]}), params={"beam_size": 5})
    # DataFrame: translation (best first), score (log P / GNMT penalty; None for greedy),
    #            and with n_best > 1, nbest / nbest_scores (lists, best first)
    model.predict(df, params={"engine": "ctranslate2"})   # if logged with registry.engine=ctranslate2

The track stage saves it (seq2seq.registry): the model directory holds a weights-only copy of
the checkpoint, the two SentencePiece models, the resolved params.yaml and this package's inference
modules (code/seq2seq: this file, the translator, search and model code; no Lightning or Hydra),
and, when the run set registry.engine=ctranslate2, a CTranslate2 float32 export (seq2seq.export).
Bad input raises MlflowException(INVALID_PARAMETER_VALUE), which `mlflow models serve` answers
with HTTP 400 and the message.
"""

from __future__ import annotations

import math
import numbers

import mlflow.models
import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

INPUT_COLUMN = "source"
# name -> (MLflow type, the python type it must have); defaults come from the run's decode config
PARAMS = {
    "beam_size": ("long", int),
    "n_best": ("long", int),
    "length_penalty": ("double", float),
    "max_len_a": ("double", float),
    "max_len_b": ("long", int),
    "batch_size": ("long", int),
    "engine": ("string", str),  # torch, or ctranslate2 when the model holds an export
}
MAX_SENTENCES = 10_000  # a request larger than this is refused (one request decodes synchronously)


def bad_request(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def check_params(params: dict) -> dict:
    """The decoding settings of a request, checked: bad_request naming the first bad one."""
    for name, value in params.items():
        if name not in PARAMS:
            raise bad_request(f"unknown parameter {name!r} (accepted: {', '.join(PARAMS)})")
        kind = PARAMS[name][1]
        if kind is str:
            if not isinstance(value, str):
                raise bad_request(f"parameter {name}={value!r} must be a string")
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or (kind is int and value != int(value)):
            raise bad_request(f"parameter {name}={value!r} must be {'an integer' if kind is int else 'a number'}")
        if not math.isfinite(value):
            raise bad_request(f"parameter {name}={value!r} must be finite")
    p = {k: PARAMS[k][1](v) for k, v in params.items()}
    for name in ("beam_size", "n_best", "batch_size"):
        if p[name] < 1:
            raise bad_request(f"parameter {name}={p[name]}: must be at least 1")
    if p["n_best"] > p["beam_size"]:
        raise bad_request(f"parameter n_best={p['n_best']}: must not exceed beam_size={p['beam_size']}")
    if p["max_len_a"] < 0 or p["max_len_b"] < 0:
        raise bad_request(f"parameters max_len_a={p['max_len_a']} / max_len_b={p['max_len_b']}: must not be negative")
    return p


def check_sentences(model_input) -> list[str]:
    """The source sentences of a request: a DataFrame with a `source` column of strings."""
    if not isinstance(model_input, pd.DataFrame) or INPUT_COLUMN not in model_input.columns:
        raise bad_request(f"the input needs a column {INPUT_COLUMN!r} of source sentences, e.g. "
                          f'{{"dataframe_split": {{"columns": ["{INPUT_COLUMN}"], "data": [["Guten Morgen ."]]}}}}')
    sentences = model_input[INPUT_COLUMN].tolist()
    if not sentences:
        raise bad_request(f"no sentences: the {INPUT_COLUMN!r} column is empty")
    if len(sentences) > MAX_SENTENCES:
        raise bad_request(f"{len(sentences)} sentences: at most {MAX_SENTENCES} a request")
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise bad_request(f"row {i} of {INPUT_COLUMN!r} is {s!r} ({type(s).__name__}), not a string")
    return sentences


class TranslationModel(mlflow.pyfunc.PythonModel):
    """Loads the bundled checkpoint and SentencePiece models with seq2seq.translator."""

    def load_context(self, context) -> None:
        import torch

        from seq2seq.translator import Translator

        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.engines = {"torch": Translator.load(context.artifacts["checkpoint"], context.artifacts["tokenizer"], device)}
        if "ctranslate2" in context.artifacts:
            from seq2seq.ct2 import CT2Translator

            self.engines["ctranslate2"] = CT2Translator.load(context.artifacts["ctranslate2"], device)
        self.defaults = dict(context.model_config)  # the run's decode settings, as in the signature

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """DataFrame with `source` -> DataFrame with `translation` and `score` (+ nbest lists)."""
        sentences = check_sentences(model_input)
        p = check_params({**self.defaults, **(params or {})})
        engine = p.pop("engine")
        if engine not in self.engines:
            raise bad_request(f"parameter engine={engine!r}: this model has {', '.join(map(repr, self.engines))} "
                              "(a CTranslate2 export is bundled when the run sets registry.engine=ctranslate2)")
        nbest = self.engines[engine].translate_nbest(sentences, **p)
        out = pd.DataFrame({
            "translation": [hyps[0][0] for hyps in nbest],
            "score": pd.Series([None if math.isnan(hyps[0][1]) else hyps[0][1] for hyps in nbest], dtype=object),
        })
        if p["n_best"] > 1:
            out["nbest"] = [[text for text, _ in hyps] for hyps in nbest]
            out["nbest_scores"] = [[score for _, score in hyps] for hyps in nbest]
        return out


# MLflow's "models from code": the saved model runs this file (bundled under code/) instead of
# unpickling an object.
mlflow.models.set_model(TranslationModel())
