"""dvc.yaml lists, for every stage, exactly the project modules the stage's code imports: editing any
of them reruns the stage, editing any other does not. The imports are derived from the source (ast),
not listed by hand."""

import ast
import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(path: Path, package: str) -> set[str]:
    """Project modules that `path` imports anywhere in it (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [node.module])
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}  # `from seq2seq import tracking`
    return {n for n in names if n.split(".")[0] == "seq2seq" and module_file(n)}


def closure(module: str) -> set[Path]:
    """Files of `module`, its packages' __init__ and every project module reached from them.
    Models are built from the `_target_` of conf/model/*.yaml (seq2seq.models.builder imports
    it by name), so a stage that reaches the builder depends on those modules too."""
    targets = {OmegaConf.load(p)._target_.rsplit(".", 1)[0] for p in (ROOT / "conf/model").glob("*.yaml")}
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            part = ".".join(parts[:i])
            path = module_file(part)
            if path is None or path in seen:
                continue
            seen.add(path)
            pkg = part if path.name == "__init__.py" else ".".join(part.split(".")[:-1])
            todo += imported(path, pkg)
            if part == "seq2seq.models.builder":
                todo += targets
    return seen


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_lists_every_project_module_it_imports(stage):
    spec = STAGES[stage]
    module = re.search(r"python -m (seq2seq[\w.]+)", spec["cmd"]).group(1)
    files = closure(module)
    assert module_file(module) in files and len(files) > 1
    missing = sorted(p.relative_to(ROOT).as_posix() for p in files if not covered(p, spec["deps"]))
    assert not missing, f"dvc.yaml stage {stage!r} imports {missing} but does not list them in deps"
    # and nothing more: a listed folder is one whose every module the stage imports
    extra = [d for d in spec["deps"] if d.startswith("src/")
             and not all(p in files for p in ([ROOT / d] if d.endswith(".py") else (ROOT / d).rglob("*.py")))]
    assert not extra, f"dvc.yaml stage {stage!r} lists {extra}, which it does not (all) import: edits there would rerun it"


def test_the_closure_follows_imports_inside_functions_and_model_targets():
    files = {p.relative_to(ROOT).as_posix() for p in closure("seq2seq.stages.evaluate")}
    assert "src/seq2seq/inference/translator.py" in files  # evaluate loads models through the translator
    assert "src/seq2seq/models/transformer.py" in files  # a `_target_` of conf/model/
    assert "src/seq2seq/__init__.py" in files


def test_the_served_model_bundles_every_module_it_imports():
    """seq2seq.tracking.registry copies INFERENCE_MODULES into the MLflow model's code/: they must hold the
    whole import closure of the pyfunc model, and nothing of the training stack."""
    from seq2seq.tracking.registry import INFERENCE_MODULES

    package = SRC / "seq2seq"
    files = {p.relative_to(package).as_posix() for p in closure("seq2seq.inference.pyfunc")}
    bundled = lambda f: any(f == m or f.startswith(m + "/") for m in INFERENCE_MODULES)  # noqa: E731
    assert not sorted(f for f in files if not bundled(f)), "imported by the served model but not bundled"
    assert not [m for m in INFERENCE_MODULES if m.split("/")[0] in ("stages", "training", "tracking", "config", "cli")]
