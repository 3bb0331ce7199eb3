"""Atomic file output (every file or folder a stage writes appears whole or not at all), text
input, and the masking of secrets in addresses."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from seq2seq.errors import DataError

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&#\s]+)=[^&#\s]*")


def md5sum(path: str | os.PathLike) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def redact(text: str) -> str:
    """Addresses in `text` with their secrets masked: `https://user:secret@host` → `https://***@host`,
    and every query value (signed URLs: `?X-Amz-Signature=...`, `?token=...`) → `***`."""
    return _QUERY_VALUE.sub(r"\1=***", _USERINFO.sub("***@", text))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; on success rename it to `path`, on failure remove it.

    Works for files and folders: the caller creates whatever it likes at the yielded path.
    An existing `path` is replaced only once the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if not target.exists():
            raise FileNotFoundError(f"nothing was written to {target}")
        old = None
        if path.exists() or path.is_symlink():
            old = tmp / (path.name + ".old")
            os.replace(path, old)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def line_writer(path: str | os.PathLike) -> Iterator[Callable[[str], None]]:
    """`write(line)` appends one LF-terminated UTF-8 line to `path`, which appears (atomically) when
    the block ends without an error. read_lines gives back the same strings when none holds a LF or
    ends with a CR: a first line starting with U+FEFF gets a BOM in front, which read_lines drops."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        first = True

        def write(line: str) -> None:
            nonlocal first
            if first and line.startswith("\ufeff"):
                f.write("\ufeff")
            first = False
            f.write(line)
            f.write("\n")

        yield write


# Characters that some line readers (str.splitlines, universal newlines) treat as line ends.
_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` with every run of line-break characters (CR, LF, VT, FF, FS-RS, NEL, U+2028/9) as one space.

    Written with line_writer, the result is one line for any reader, not only read_lines.
    """
    return _BREAKS.sub(" ", text)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes; DataError naming the file if it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def iter_lines(path: str | os.PathLike) -> Iterator[str]:
    """The lines of a UTF-8 text file without their line ends (LF or CRLF; a lone CR is kept as
    text), read one at a time: memory stays flat in the file's size. A leading BOM is dropped.
    Invalid UTF-8 raises DataError naming the file and line."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    with f:
        for n, line in enumerate(f, start=1):
            if n == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
                if not line:  # the file is a BOM and nothing else: no lines
                    return
            if line.endswith(b"\n"):
                line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{n}: not valid UTF-8 ({e.reason} at byte {e.start})") from None


def read_lines(path: str | os.PathLike) -> list[str]:
    """Every line of iter_lines(path), in a list."""
    return list(iter_lines(path))
