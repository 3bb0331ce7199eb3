"""A verified archive: downloaded with retries and resume, checked against its MD5, extracted safely.

The archive {src}-{tgt}.tgz comes from $SEQ2SEQ_ARCHIVE_URL (an address with a secret in it, e.g.
pre-signed: kept out of params.yaml and dvc.lock; data.md5 still pins what it delivers), else
data.archive (a local path, file:// or http(s) URL), else the first of data.mirrors that delivers
it. A server that wants a user and password gets them from ~/.netrc (requests reads it). A partial
download `<pair>.tgz.part` survives and is resumed with a Range request.
"""

from __future__ import annotations

import logging
import os
import tarfile
import time
import zlib
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests
from tqdm import tqdm

from seq2seq.errors import DownloadError
from seq2seq.io import md5sum, redact

log = logging.getLogger(__name__)

ARCHIVE_URL_VAR = "SEQ2SEQ_ARCHIVE_URL"  # an archive address with a secret in it (never a param)
CHUNK = 1 << 16


class _Retry(Exception):
    """A failure worth asking the same address again: connection error, timeout, 5xx."""


class _Skip(Exception):
    """A failure the same address would repeat: 4xx, bad URL."""


def fetch(
    urls: list[str],
    dest: str | os.PathLike,
    md5: str | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30,
) -> Path:
    """Download the first of `urls` that delivers a file with the given MD5 to `dest`.

    Bytes go to `dest`.part first, which a later call resumes; `dest` appears only once verified.
    An existing `dest` with the right MD5 (or any, when `md5` is None) is reused. Each address
    gets `retries` tries on connection errors, timeouts and 5xx, waiting backoff * 2**k seconds;
    a 4xx moves on at once. Raises DownloadError listing every address and its answer.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        if md5 is None or md5sum(dest) == md5:
            log.info("using cached %s", dest)
            return dest
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    answers = []
    for url in urls:
        answer = _try_url(url, part, retries, backoff, timeout)
        if answer is None:
            actual = md5sum(part)
            if md5 is not None and actual != md5:
                part.unlink()
                answer = f"MD5 mismatch: expected {md5}, got {actual} (file deleted)"
            else:
                if md5 is None:
                    log.warning("%s: no known MD5 to check; its MD5 is %s", redact(url), actual)
                os.replace(part, dest)
                return dest
        log.warning("%s: %s", redact(url), redact(answer))
        answers.append(f"  {redact(url)}: {redact(answer)}")
    if not answers:
        raise DownloadError(f"no address to download {dest.name} from")
    raise DownloadError(f"could not download {dest.name}; tried:\n" + "\n".join(answers))


def _try_url(url: str, part: Path, retries: int, backoff: float, timeout: float) -> str | None:
    """None once `part` holds the whole file from `url`, else what the address answered."""
    answer = "not tried (retries < 1)"
    for attempt in range(1, retries + 1):
        try:
            _get(url, part, timeout)
            return None
        except _Skip as e:
            return str(e)
        except _Retry as e:
            answer = str(e)
            if attempt < retries:
                log.info("%s: %s; retrying (%d of %d)", redact(url), redact(str(e)), attempt + 1, retries)
                time.sleep(backoff * 2 ** (attempt - 1))
    return f"{answer} (after {retries} tries)"


def _get(url: str, part: Path, timeout: float) -> None:
    """One GET into `part`, resuming from its size; raises _Retry or _Skip."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
            if r.status_code == 416 and offset:
                log.info("%s: server has no bytes past %d; checking the partial file", redact(url), offset)
                return
            if r.status_code >= 500:
                raise _Retry(f"HTTP {r.status_code} {r.reason}")
            if r.status_code >= 400:
                raise _Skip(f"HTTP {r.status_code} {r.reason}")
            if r.status_code == 206:
                if not r.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                    part.unlink()
                    raise _Retry(f"unexpected Content-Range {r.headers.get('Content-Range')!r}")
                mode = "ab"
            else:  # 200: the server ignored the range, start over
                offset, mode = 0, "wb"
            size = r.headers.get("Content-Length")
            total = offset + int(size) if size and size.isdigit() else None
            with open(part, mode) as f, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=part.name[: -len(".part")], disable=None,
            ) as bar:
                for chunk in r.iter_content(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            got = part.stat().st_size
            if total is not None and got < total:
                raise _Retry(f"connection closed after {got} of {total} bytes")
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
        raise _Retry(_describe(e)) from None
    except requests.RequestException as e:
        raise _Skip(_describe(e)) from None


def _describe(e: requests.RequestException) -> str:
    """'ConnectionError: Failed to establish a new connection: [Errno 111] Connection refused'."""
    reason = getattr(e.args[0], "reason", None) if e.args else None
    text = str(reason).split(": ", 1)[-1] if reason is not None else str(e)
    return f"{type(e).__name__}: {text}"


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> None:
    """Extract a .tgz/.tar into `target`, refusing members that could write outside it.

    Rejected (DownloadError naming the member): absolute paths, `..` escapes, paths through a
    symlink member, symlinks/hardlinks resolving outside `target`, devices and fifos. Every
    member is checked before anything is written. Unreadable archives raise DownloadError.
    """
    root = Path(target).absolute()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            links = set()
            for m in members:
                reason = _unsafe(m, root, links)
                if reason:
                    raise DownloadError(f"{archive}: refusing unsafe member {m.name!r}: {reason}")
                if m.issym():
                    links.add(os.path.normpath(m.name))
            root.mkdir(parents=True, exist_ok=True)
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(root, members=members, **extra)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DownloadError(f"{archive}: not a readable tar/gzip archive ({e})") from None


def _unsafe(m: tarfile.TarInfo, root: Path, links: set[str]) -> str | None:
    """Why member `m` may not be extracted under `root`, or None."""
    name = m.name
    if name.startswith(("/", "\\")) or os.path.isabs(name):
        return "absolute path"
    if not _inside(root, root / name):
        return "path leaves the target folder"
    parts = Path(os.path.normpath(name)).parts
    if any(os.path.join(*parts[:i]) in links for i in range(1, len(parts))):
        return "path goes through a symlink"
    if m.issym() and (os.path.isabs(m.linkname) or not _inside(root, root / Path(name).parent / m.linkname)):
        return f"symlink to {m.linkname!r} points outside the target folder"
    if m.islnk() and (os.path.isabs(m.linkname) or not _inside(root, root / m.linkname)):
        return f"hardlink to {m.linkname!r} points outside the target folder"
    if m.isdev():
        return "device or fifo"
    return None


def _inside(root: Path, path: Path) -> bool:
    root, path = os.path.normpath(root), os.path.normpath(path)
    return os.path.commonpath([root, path]) == root


def get_archive(data, cache_dir: str | os.PathLike, **fetch_kw) -> Path:
    """The verified {src}-{tgt}.tgz for the data config: data.archive if set, else a mirror's."""
    pair = f"{data.src}-{data.tgt}"
    md5 = (data.md5 or {}).get(pair)
    cached = Path(cache_dir) / f"{pair}.tgz"
    shown = os.path.relpath(cached) if _inside(os.getcwd(), os.path.abspath(cached)) else str(cached)
    hint = (f"Download {pair}.tgz some other way{f' (MD5 {md5})' if md5 else ''} and put it at {shown}: "
            "`make run`, `dvc repro` and `dvc exp run` all take it from there. Or name it: "
            f"`dvc exp run -S data.archive=/path/to/{pair}.tgz` (also for `dvc exp run --queue`); for `dvc repro`, "
            f"`seq2seq compose <your overrides> data.archive=/path/to/{pair}.tgz` writes it into params.yaml.")
    if os.environ.get(ARCHIVE_URL_VAR):
        urls = [os.environ[ARCHIVE_URL_VAR]]
        log.info("%s: from $%s", redact(urls[0]), ARCHIVE_URL_VAR)
    elif data.archive:
        url = urlparse(str(data.archive))
        if url.scheme in ("http", "https"):
            urls = [str(data.archive)]
        else:
            path = Path(url2pathname(url.path)) if url.scheme == "file" else Path(str(data.archive))
            if not path.is_file():
                raise DownloadError(f"data.archive={redact(str(data.archive))}: no such file")
            actual = md5sum(path)
            if md5 is not None and actual != md5:
                raise DownloadError(
                    f"{path}: MD5 mismatch for {pair}: expected {md5} (data.md5.{pair}), got {actual}. To use this "
                    f"archive on purpose, run with -S 'data.md5.{pair}={actual}', or -S '~data.md5.{pair}' to check no MD5")
            if md5 is None:
                log.warning("%s: no known MD5 for %s to check; its MD5 is %s", path, pair, actual)
            return path
    else:
        urls = [m.format(src=data.src, tgt=data.tgt) for m in data.mirrors]
    try:
        return fetch(urls, cached, md5, **fetch_kw)
    except DownloadError as e:
        raise DownloadError(f"{e}\n{hint}") from None
