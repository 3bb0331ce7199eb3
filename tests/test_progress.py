"""Progress on stderr: tqdm's bar on a terminal, plain lines in a log file."""

import io

from tqdm import tqdm

from seq2seq.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_plain_lines_and_a_terminal_the_bar():
    log = io.StringIO()
    assert list(progress(range(3), desc="decode", unit="batch", every_s=0, stream=log)) == [0, 1, 2]
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue() and [line.split(",")[0] for line in lines[:-1]] == [
        "decode: 1/3 batch", "decode: 2/3 batch", "decode: 3/3 batch", "decode: 3/3 batch done"]
    quiet = io.StringIO()
    list(progress(iter(range(5)), desc="moses", unit="line", every_s=3600, stream=quiet))
    assert quiet.getvalue().startswith("moses: 5 line done, 0:0")  # no total known: a count; no line before the end
    assert isinstance(progress(range(3), desc="decode", unit="batch", stream=Terminal()), tqdm)
    items = [1, 2]
    assert progress(items, desc="decode", unit="batch", disable=True) is items
