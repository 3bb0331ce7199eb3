"""params.yaml is data: whatever it holds, checking it calls no code, imports nothing outside
seq2seq.models, reads no environment variable and accepts no credential; each refusal names the key."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from seq2seq.config.check import check_file as check
from seq2seq.config.params import compose
from seq2seq.errors import ConfigError

SECRET = "s3cr3t-Zq9"


def params_with(tmp_path: Path, edit) -> Path:
    """params.yaml of the default composition, edited as plain YAML (as a hand edit or git would)."""
    raw = OmegaConf.to_container(compose(), resolve=True)
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def copy_call(victim: Path, source: Path) -> dict:
    """What an attacker would put in a model value: Hydra calling shutil.copyfile(source, victim)."""
    return {"_target_": "shutil.copyfile", "_args_": [str(source), str(victim)]}


@pytest.mark.parametrize("where", [("model", "enc_hidden_size"), ("model", "hidden_size"), ("trainer", "lr"),
                                   ("data", "filter"), ("decode", "beam_size"), ("tokenizer", "vocab_size")])
def test_a_nested_target_is_refused_and_never_called(tmp_path, where):
    victim, source = tmp_path / "victim.txt", tmp_path / "source.txt"
    victim.write_text("untouched")
    source.write_text("overwritten")
    section, key = where
    path = params_with(tmp_path, lambda raw: raw[section].__setitem__(key, copy_call(victim, source)))
    with pytest.raises(ConfigError, match=rf"{section}\.{key}\._target_"):
        check(path)
    assert victim.read_text() == "untouched"


@pytest.mark.parametrize("special", ["_args_", "_partial_", "_recursive_", "_convert_"])
def test_hydra_special_keys_are_refused_anywhere(tmp_path, special):
    for section in ("model", "trainer", "mlflow"):
        path = params_with(tmp_path, lambda raw: raw[section].__setitem__(special, True))
        with pytest.raises(ConfigError, match=rf"{section}\.{special}"):
            check(path)


def test_a_top_level_target_outside_the_models_is_never_imported(tmp_path):
    """A module that writes a file when imported, on sys.path: naming it as model._target_ must not import it."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_module.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\nclass Model: pass\n")
    path = params_with(tmp_path, lambda raw: raw["model"].__setitem__("_target_", "evil_module.Model"))
    code = ("import sys; from seq2seq.config.check import check_file as check; from seq2seq.errors import ConfigError\n"
            f"try:\n    check({str(path)!r})\nexcept ConfigError as e:\n    print(e)\n"
            "print('evil_module' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).parents[1] / 'src'}", "PATH": "/usr/bin:/bin"}).stdout
    assert "model._target_='evil_module.Model' is not a model class of seq2seq.models" in out
    assert out.strip().endswith("False") and not marker.exists()


@pytest.mark.parametrize("target", ["seq2seq.models.Dropout", "seq2seq.models.RecurrentEncoder", "seq2seq.config.Schema",
                                    "seq2seq.models.Seq2Seq.__init__", "os.system"])
def test_only_model_classes_may_be_targets(tmp_path, target):
    path = params_with(tmp_path, lambda raw: raw["model"].__setitem__("_target_", target))
    with pytest.raises(ConfigError, match=r"model\._target_=.* is not a model class"):
        check(path)


@pytest.mark.parametrize("value", [{"a": 1}, [[1, 2]], [{"x": 1}]])
def test_model_values_are_plain(tmp_path, value):
    path = params_with(tmp_path, lambda raw: raw["model"].__setitem__("hidden_size", value))
    with pytest.raises(ConfigError, match=r"model\.hidden_size"):
        check(path)


@pytest.mark.parametrize("edit, key", [
    (lambda raw: raw["data"]["mirrors"].append("https://example.org/${oc.env:HOME}.tgz"), r"data\.mirrors\[2\]"),
    (lambda raw: raw["data"].__setitem__("archive", "${oc.env:AWS_SECRET_ACCESS_KEY}"), r"data\.archive"),
    (lambda raw: raw["mlflow"].__setitem__("experiment_name", "${decode.beam_size}"), r"mlflow\.experiment_name"),
])
def test_interpolations_are_refused_and_the_environment_is_not_read(tmp_path, monkeypatch, edit, key):
    monkeypatch.setenv("HOME", f"/home/{SECRET}")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    path = params_with(tmp_path, edit)
    with pytest.raises(ConfigError, match=key) as info:
        check(path)
    assert "interpolation" in str(info.value) and SECRET not in str(info.value)


@pytest.mark.parametrize("edit, key, what", [
    (lambda raw: raw["data"]["mirrors"].insert(0, f"https://alice:{SECRET}@example.org/x.tgz"), r"data\.mirrors\[0\]",
     "user and password"),
    (lambda raw: raw["data"].__setitem__("archive", f"https://b.s3.amazonaws.com/de-en.tgz?X-Amz-Credential=A%2F1"
                                                    f"&X-Amz-Signature={SECRET}"), r"data\.archive", "X-Amz-Credential"),
    (lambda raw: raw["mlflow"].__setitem__("tracking_uri", f"http://bob:{SECRET}@mlflow.example.org:5000"),
     r"mlflow\.tracking_uri", "user and password"),
    (lambda raw: raw["mlflow"].__setitem__("tracking_uri", f"https://mlflow.example.org/?token={SECRET}"),
     r"mlflow\.tracking_uri", "token"),
    (lambda raw: raw["data"].__setitem__("archive", "https://example.org/x.tgz?sig=" + SECRET), r"data\.archive", "sig"),
    (lambda raw: raw["mlflow"].__setitem__("experiment_name", "ghp_" + "a1B2" * 9), r"mlflow\.experiment_name",
     "GitHub token"),
])
def test_credentials_are_refused_without_being_echoed(tmp_path, edit, key, what):
    path = params_with(tmp_path, edit)
    with pytest.raises(ConfigError, match=key) as info:
        check(path)
    message = str(info.value)
    assert what in message and SECRET not in message and "a1B2a1B2" not in message
    assert "~/.netrc" in message and "MLFLOW_TRACKING_PASSWORD" in message and "SEQ2SEQ_ARCHIVE_URL" in message


def test_plain_addresses_pass(tmp_path):
    path = params_with(tmp_path, lambda raw: raw["data"].__setitem__("archive", "https://example.org/de-en.tgz?version=2"))
    assert check(path).data.archive.endswith("version=2")


@pytest.mark.parametrize("edit, unknown, closest", [
    (lambda raw: raw["decode"].__setitem__("beam_sise", 3), "decode.beam_sise", "decode.beam_size"),
    (lambda raw: raw.__setitem__("beam_size", 3), "beam_size", "decode.beam_size"),
    (lambda raw: raw["trainer"]["lightning"].__setitem__("max_epoch", 3), "trainer.lightning.max_epoch",
     "trainer.lightning.max_epochs"),
    (lambda raw: raw["model"].__setitem__("hiden_size", 3), "model.hiden_size", "model.hidden_size"),
])
def test_unknown_keys_name_the_closest_known_key(tmp_path, edit, unknown, closest):
    path = params_with(tmp_path, edit)
    with pytest.raises(ConfigError, match=rf"unknown parameter {unknown.replace('.', '[.]')} .*did you mean {closest}\?"):
        check(path)
