"""The package's folders are its layers, and each layer imports only what sits below it. Every import
of every module is read from the source (ast), including imports inside functions."""

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "seq2seq"

# layer -> what its modules must not import: project layers (seq2seq.<name>) and libraries
FORBIDDEN = {
    "models": {"seq2seq.config", "seq2seq.data", "seq2seq.inference", "seq2seq.training", "seq2seq.tracking",
               "seq2seq.stages", "seq2seq.cli", "seq2seq.metrics", "seq2seq.threads", "seq2seq.command",
               "lightning", "mlflow", "hydra", "omegaconf"},
    "data": {"seq2seq.models", "seq2seq.inference", "seq2seq.training", "seq2seq.tracking", "seq2seq.stages",
             "seq2seq.cli", "seq2seq.metrics", "lightning", "mlflow", "hydra"},
    "inference": {"seq2seq.config", "seq2seq.training", "seq2seq.tracking", "seq2seq.stages", "seq2seq.cli",
                  "seq2seq.threads", "seq2seq.command", "lightning", "hydra", "omegaconf", "mlflow"},
    "config": {"seq2seq.data", "seq2seq.inference", "seq2seq.training", "seq2seq.tracking", "seq2seq.stages",
               "seq2seq.cli", "lightning", "mlflow"},
    "training": {"seq2seq.tracking", "seq2seq.stages", "seq2seq.cli", "mlflow"},
    "tracking": {"seq2seq.training", "seq2seq.stages", "seq2seq.cli"},
    "cli": {"seq2seq.stages"},
}
# the served model imports mlflow; nothing else of inference/ may
ALLOWED = {("inference/pyfunc.py", "mlflow")}


def imports(path: Path, package: Path = PACKAGE) -> set[str]:
    """Absolute names of the modules `path` (a module of the package at `package`) imports anywhere
    in it, functions included; `from a import b` counts as `a.b` too (b may be a module)."""
    parts = ("seq2seq", *path.relative_to(package).with_suffix("").parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package up
                base = ".".join([*parts[: len(parts) - node.level], *([base] if base else [])])
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return names


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        layer = rel.split("/")[0] if "/" in rel else None
        for name in sorted(imports(path, package)):
            if (rel, name.split(".")[0]) in ALLOWED:
                continue
            for bad in FORBIDDEN.get(layer, ()):
                if within(name, bad):
                    found.append(f"{rel}: imports {name} ({layer}/ must not import {bad})")
            # no stage imports another stage
            if layer == "stages" and within(name, "seq2seq.stages") and name.split(".")[2:3] not in ([], ["__init__"]):
                if name.split(".")[2] != path.stem:
                    found.append(f"{rel}: imports {name} (a stage imports no other stage)")
    return found


def test_every_layer_imports_only_what_sits_below_it():
    assert not violations(), "\n".join(violations())


def test_every_layer_has_modules_to_hold():
    """The rules above name folders that exist, each with modules in it: renaming a folder cannot
    make its rule pass by holding nothing."""
    for layer in [*FORBIDDEN, "stages"]:
        assert len(list((PACKAGE / layer).glob("*.py"))) > 1, layer


@pytest.mark.parametrize("module, added, rule", [
    ("models/base.py", "    from seq2seq.training.module import TranslationModule\n", "models/ must not import seq2seq.training"),
    ("models/attention.py", "import lightning\n", "models/ must not import lightning"),
    ("data/batching.py", "from seq2seq.models import Seq2Seq\n", "data/ must not import seq2seq.models"),
    ("inference/translator.py", "from seq2seq import tracking\n", "inference/ must not import seq2seq.tracking"),
    ("inference/search.py", "import mlflow\n", "inference/ must not import mlflow"),
    ("stages/evaluate.py", "from seq2seq.stages.prepare import write_splits\n", "a stage imports no other stage"),
    ("stages/track.py", "    from seq2seq.stages import train\n", "a stage imports no other stage"),
])
def test_an_import_in_the_wrong_direction_is_caught(tmp_path, module, added, rule):
    copy = tmp_path / "seq2seq"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / module
    text = path.read_text(encoding="utf-8")
    text += ("\n\ndef added():\n" if added.startswith(" ") else "\n") + added  # at the top, or inside a function
    path.write_text(text, encoding="utf-8")
    assert not violations(PACKAGE)
    found = violations(copy)
    assert len(found) >= 1 and all(f.startswith(module) for f in found) and any(rule in f for f in found), found
