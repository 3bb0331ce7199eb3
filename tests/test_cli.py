"""The `seq2seq` command: one program name, every subcommand listed, defaults in --help."""

import subprocess
import sys

import pytest

from conftest import run_env
from seq2seq.cli.main import COMMANDS


def seq2seq(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seq2seq", *args], capture_output=True, text=True, env=run_env())


def test_help_lists_every_command_and_a_wrong_one_is_named():
    out = seq2seq("--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: seq2seq ")
    for name in ("translate", "export", "promote", "restore", "compose", "plots-page"):
        assert f"\n  {name} " in out.stdout, name
    assert set(COMMANDS) == {"translate", "export", "promote", "restore", "compose", "plots-page"}
    wrong = seq2seq("translte")
    assert wrong.returncode == 2 and "invalid choice: 'translte'" in wrong.stderr
    assert seq2seq().returncode == 2


@pytest.mark.parametrize("command, shows", [
    ("translate", ["usage: seq2seq translate ", "beam size; 1 is greedy (default: 5)", "(default: data/tokenizer)"]),
    ("promote", ["usage: seq2seq promote ", "the alias to move (default: champion)", "seq2seq promote 3 "]),
    ("compose", ["usage: seq2seq compose ", "(default: params.yaml)"]),
])
def test_each_command_has_one_program_name_and_shows_its_defaults(command, shows):
    out = seq2seq(command, "--help")
    assert out.returncode == 0 and "python -m" not in out.stdout, out.stdout
    for text in shows:
        assert text in " ".join(out.stdout.split()) or text in out.stdout, (text, out.stdout)
