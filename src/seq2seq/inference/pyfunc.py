"""The trained model as an MLflow pyfunc model: a column of source sentences in, translations out.

    import mlflow
    model = mlflow.pyfunc.load_model("models:/seq2seq-de-en/1")
    model.predict(pd.DataFrame({"source": ["Guten Morgen ."]}), params={"beam_size": 5})
    # DataFrame: translation (best first), score (log P / GNMT penalty; None for greedy),
    #            and with n_best > 1, nbest / nbest_scores (lists, best first)
    model.predict(df, params={"engine": "ctranslate2"})   # if logged with registry.engine=ctranslate2

The track stage saves it (seq2seq.tracking.registry): the model directory holds a weights-only copy of
the checkpoint, the two SentencePiece models, the resolved params.yaml and this package's inference
modules (code/seq2seq: this file, the translator, search and model code; no Lightning or Hydra),
and, when the run set registry.engine=ctranslate2, a CTranslate2 float32 export (seq2seq.inference.export).
Bad input raises MlflowException(INVALID_PARAMETER_VALUE), which `mlflow models serve` answers
with HTTP 400 and the message.

Every request is checked before anything is decoded: the `source` values must be strings (the
signature declares the column Any, so that MLflow hands over the values as the client sent them
instead of turning 42 or null into the sentences "42" and "None"), and a request must stay within
the serving limits (Limits), read from the environment when the model loads:

    SEQ2SEQ_SERVE_MAX_ROWS=200 SEQ2SEQ_SERVE_MAX_BEAM=32 mlflow models serve -m models:/seq2seq-de-en/1 ...
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, fields

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


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. MLflow's scoring server answers 504 after 60 s but cannot stop
    the decoding, so the model refuses up front what could take longer. The largest request the
    defaults allow (every limit at once, batch_size 1, a model that never emits EOS) took 6-8 s
    through `mlflow models serve` on 2 CPU cores with the smoke recipe's model; a larger model or
    a slower machine wants smaller limits. Each is read from the environment variable
    SEQ2SEQ_SERVE_ + its name in capitals (SEQ2SEQ_SERVE_MAX_BEAM, ...) when the model loads."""

    max_rows: int = 32  # sentences a request
    max_source_tokens: int = 96  # SentencePiece tokens of one source sentence (EOS not counted)
    max_output_tokens: int = 160  # a sentence's output limit: max(1, int(max_len_a * (source tokens + 1) + max_len_b))
    max_beam: int = 8  # beam_size
    max_nbest: int = 8  # n_best

    ENV_PREFIX = "SEQ2SEQ_SERVE_"

    @classmethod
    def env_name(cls, field: str) -> str:
        return cls.ENV_PREFIX + field.upper()

    @classmethod
    def from_env(cls, environ=os.environ) -> "Limits":
        """The defaults, overridden by the SEQ2SEQ_SERVE_* variables that are set; ValueError
        naming the variable when one is not a positive integer."""
        values = {}
        for f in fields(cls):
            name = cls.env_name(f.name)
            raw = environ.get(name, "").strip()
            if raw:
                if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
                    raise ValueError(f"{name}={raw!r}: must be a positive integer")
                values[f.name] = int(raw)
        return cls(**values)

    def refusal(self, field: str, what: str) -> MlflowException:
        """bad_request saying that `what` is over the limit `field`, and how to change it."""
        env = self.env_name(field)
        return bad_request(f"{what}: over this server's limit of {getattr(self, field):,} ({env}, read from the "
                           f"environment when the model loads: restart `mlflow models serve` with {env}=<n> to change it)")


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


def check_limits(p: dict, limits: Limits) -> None:
    """The request's n_best and beam_size (checked by check_params) within the serving limits."""
    for name, field in (("n_best", "max_nbest"), ("beam_size", "max_beam")):
        if p[name] > getattr(limits, field):
            raise limits.refusal(field, f"parameter {name}={p[name]:,}")


def describe(value) -> str:
    """A value of the `source` column as JSON would name it: `42 (a number)`, `null`, ..."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"  # dataframe_split and dataframe_records turn a JSON null into NaN
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    kind = ("a number" if isinstance(value, numbers.Number) else "an array" if isinstance(value, (list, tuple))
            else "an object" if isinstance(value, dict) else type(value).__name__)
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({kind})"


def check_sentences(model_input, limits: Limits) -> list[str]:
    """The source sentences of a request: a DataFrame with a `source` column of strings, at most
    limits.max_rows of them. Checked before anything else, so that a malformed request costs nothing."""
    if not isinstance(model_input, pd.DataFrame) or INPUT_COLUMN not in model_input.columns:
        raise bad_request(f"the input needs a column {INPUT_COLUMN!r} of source sentences, e.g. "
                          f'{{"inputs": {{"{INPUT_COLUMN}": ["Guten Morgen ."]}}}}')
    sentences = model_input[INPUT_COLUMN].tolist()
    if len(sentences) == 1 and isinstance(sentences[0], list):
        # {"inputs": {"source": [...]}} of strings only: MLflow's schema check makes this one row
        # that holds the list (for an Any column); with any non-string in it, one row a value.
        sentences = sentences[0]
    if not sentences:
        raise bad_request(f"no sentences: the {INPUT_COLUMN!r} column is empty")
    if len(sentences) > limits.max_rows:
        raise limits.refusal("max_rows", f"{len(sentences):,} sentences")
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise bad_request(f"row {i} of {INPUT_COLUMN!r} is {describe(s)}, not a string")
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as e:
            raise bad_request(f"row {i} of {INPUT_COLUMN!r} is not valid Unicode (character {e.start} is a lone "
                              "surrogate)") from None
    return sentences


def check_lengths(sentences: list[str], sp_src, p: dict, limits: Limits) -> None:
    """Each sentence within limits.max_source_tokens, and its output limit (seq2seq.inference.search's
    max_length, source tokens counted with EOS as the search does) within limits.max_output_tokens."""
    from seq2seq.inference.search import max_length

    for i, ids in enumerate(sp_src.encode(sentences, out_type=int)):
        if len(ids) > limits.max_source_tokens:
            raise limits.refusal("max_source_tokens", f"row {i} of {INPUT_COLUMN!r}: {len(ids):,} source tokens")
        longest = max_length(len(ids) + 1, p["max_len_a"], p["max_len_b"])
        if longest > limits.max_output_tokens:
            raise limits.refusal("max_output_tokens", f"row {i} of {INPUT_COLUMN!r}: up to {longest:,} output tokens "
                                 f"(max_len_a={p['max_len_a']:g} x {len(ids) + 1} source tokens with EOS + "
                                 f"max_len_b={p['max_len_b']:,})")


class TranslationModel(mlflow.pyfunc.PythonModel):
    """Loads the bundled checkpoint and SentencePiece models with seq2seq.inference.translator."""

    def load_context(self, context) -> None:
        import torch

        from seq2seq.inference.translator import Translator

        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.engines = {"torch": Translator.load(context.artifacts["checkpoint"], context.artifacts["tokenizer"], device)}
        if "ctranslate2" in context.artifacts:
            from seq2seq.inference.ct2 import CT2Translator

            self.engines["ctranslate2"] = CT2Translator.load(context.artifacts["ctranslate2"], device)
        self.defaults = dict(context.model_config)  # the run's decode settings, as in the signature
        self.limits = Limits.from_env()
        try:  # a server whose limits refuse the model's own settings would refuse every plain request
            check_limits(check_params(self.defaults), self.limits)
        except MlflowException as e:
            raise MlflowException(f"the model's default decoding settings: {e.message}") from None

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """DataFrame with `source` -> DataFrame with `translation` and `score` (+ nbest lists)."""
        sentences = check_sentences(model_input, self.limits)
        p = check_params({**self.defaults, **(params or {})})
        check_limits(p, self.limits)
        engine = p.pop("engine")
        if engine not in self.engines:
            raise bad_request(f"parameter engine={engine!r}: this model has {', '.join(map(repr, self.engines))} "
                              "(a CTranslate2 export is bundled when the run sets registry.engine=ctranslate2)")
        check_lengths(sentences, self.engines[engine].sp_src, p, self.limits)
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
