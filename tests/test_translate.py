"""The translate command's answers to odd input: each bad argument named, no traceback."""

import pytest

from seq2seq.cli import translate


def error_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        translate.main(argv)
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["--beam", "0", "x"], "--beam 0: must be at least 1"),
    (["--n-best", "0", "x"], "--n-best 0: must be at least 1"),
    (["--beam", "2", "--n-best", "3", "x"], "--n-best 3: must not exceed --beam 2"),
    (["--batch-size", "0", "x"], "--batch-size 0: must be at least 1"),
    (["--max-len-b", "-1", "x"], "must not be negative"),
])
def test_bad_arguments_are_named(argv, message, capsys, tmp_path):
    assert message in error_of([*argv, "--checkpoint", str(tmp_path / "none.ckpt")], capsys)


def test_a_file_that_is_no_checkpoint_is_one_clean_line(tmp_path, capsys):
    for content in (b"beam: 5\n", b"", b"PK\x03\x04 not really a zip"):
        path = tmp_path / "params.yaml"
        path.write_bytes(content)
        err = error_of(["--checkpoint", str(path), "x"], capsys)
        assert f"error: {path}: not a checkpoint of this project's train stage" in err


def test_a_pickle_that_is_no_checkpoint_is_named_without_pytorchs_advice(tmp_path, capsys):
    """torch.load(weights_only=True) refuses a pickle holding more than tensors and adds that the
    file "can still be loaded" with weights_only=False (which runs the code it names): the
    translate command says only that it is not a checkpoint of this project."""
    import argparse

    import torch

    path = tmp_path / "options.pt"
    torch.save({"args": argparse.Namespace(beam=5)}, path)
    with pytest.raises(Exception, match="can still be loaded"):
        torch.load(path, weights_only=True)  # what PyTorch itself would say
    err = error_of(["--checkpoint", str(path), "x"], capsys)
    assert err == f"error: {path}: not a checkpoint of this project's train stage\n", err


def test_a_missing_checkpoint_is_one_clean_line_in_every_entry_point(tmp_path, capsys):
    from seq2seq.cli.export import main as export_main
    from seq2seq.errors import DataError
    from seq2seq.inference.translator import load_model

    missing = tmp_path / "best.ckpt"
    expected = f"{missing}: checkpoint not found (run `dvc repro` first, or pass --checkpoint)"
    assert f"error: {expected}" in error_of(["--checkpoint", str(missing), "x"], capsys)
    with pytest.raises(SystemExit):
        export_main(["--checkpoint", str(missing), "--out", str(tmp_path / "ct2")])
    assert f"error: {expected}" in capsys.readouterr().err and not (tmp_path / "ct2").exists()
    with pytest.raises(DataError, match="checkpoint not found"):
        load_model(missing)


def test_the_inference_library_loads_no_training_stack():
    """seq2seq.inference.translator (and through it every model) imports neither Lightning, Hydra, OmegaConf
    nor MLflow: translating needs torch, sentencepiece and the model code only."""
    import subprocess
    import sys

    code = ("import sys; from seq2seq.inference.translator import Translator; from seq2seq.models.builder import build_model; "
            "build_model({'_target_': 'seq2seq.models.Transformer', 'd_model': 8, 'n_heads': 2, 'ff_size': 8}, 9, 9); "
            "build_model({'_target_': 'seq2seq.models.ConvSeq2Seq', 'emb_size': 8, 'hidden_size': 8}, 9, 9); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('lightning', 'pytorch_lightning', 'hydra', 'omegaconf', 'mlflow', 'sacrebleu', 'dvc')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_build_model_builds_only_model_classes():
    from seq2seq.errors import ConfigError
    from seq2seq.models.builder import build_model

    for target in ("os.system", "seq2seq.models._private", "seq2seq.models.RecurrentEncoderX", "builtins.eval",
                   "seq2seq.models.RecurrentEncoder", "seq2seq.models.Dropout"):
        with pytest.raises(ConfigError, match="is not a model class"):
            build_model({"_target_": target}, 9, 9)
