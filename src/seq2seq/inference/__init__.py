"""Translating with a trained model: search, the translator, CTranslate2 export and engine, and the
MLflow pyfunc model. Knows nothing of training, tracking or the stages: the served model bundles it."""
