"""The DVC stages of dvc.yaml, one module each: arguments, then calls into the layers below.
No stage imports another."""
