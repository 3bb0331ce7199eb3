"""MLflow: runs, the evaluation of a pipeline run, lineage, the model registry and restoring a version."""
