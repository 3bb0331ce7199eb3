"""Stage 1: HTTP download (a real server on 127.0.0.1), MD5, safe extraction, local archives, parallel folders."""

import base64
import hashlib
import logging
import random
import re
import shutil
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from iwslt_fixtures import build_iwslt_archive, make_parallel, write_parallel
from omegaconf import OmegaConf

from seq2seq.config.params import compose
from seq2seq.data.fetch import fetch, safe_extract
from seq2seq.errors import DataError, DownloadError
from seq2seq.io import read_lines
from seq2seq.stages import download

FAST = {"retries": 3, "backoff": 0.001, "timeout": 5}


class Server:
    """Serves `files` by path; `script[path]` lists answers to give first (a status code, or
    ("cut", n) to send the headers of the whole file but only n bytes); records every request."""

    def __init__(self):
        self.files, self.script, self.requests = {}, {}, []
        self.honour_range = True
        self.basic_auth = None  # "user:password" that every request must carry, when set
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append((self.path, dict(self.headers)))
                if owner.basic_auth and self.headers.get("Authorization") != "Basic " + base64.b64encode(
                        owner.basic_auth.encode()).decode():
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="corpus"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                step = owner.script.get(self.path, []) and owner.script[self.path].pop(0)
                data = owner.files.get(self.path)
                if isinstance(step, int) or data is None:
                    self.send_error(step or 404)
                    return
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and owner.honour_range:
                    start, status = int(rng.removeprefix("bytes=").rstrip("-")), 206
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                self.wfile.write(body[: step[1]] if step else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = build_iwslt_archive(tmp_path_factory.mktemp("archive"))
    return path, path.read_bytes(), hashlib.md5(path.read_bytes()).hexdigest()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/de-en.tgz"


def iwslt_cfg(**data):
    cfg = compose()
    for key, value in data.items():
        cfg.data[key] = value
    return cfg


# --- fetch -----------------------------------------------------------------------------------
def test_fetch_ok_with_md5(server, archive, tmp_path):
    _, data, md5 = archive
    server.files["/de-en.tgz"] = data
    path = fetch([server.url("/de-en.tgz")], tmp_path / "cache/de-en.tgz", md5, **FAST)
    assert path == tmp_path / "cache/de-en.tgz" and path.read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == ["de-en.tgz"]
    assert server.requests[0][1].get("Range") is None
    fetch([server.url("/de-en.tgz")], path, md5, **FAST)  # cached: no second request
    assert len(server.requests) == 1


def test_fetch_md5_mismatch_keeps_nothing(server, archive, tmp_path):
    _, data, md5 = archive
    server.files["/de-en.tgz"] = data
    with pytest.raises(DownloadError) as exc:
        fetch([server.url("/de-en.tgz")], tmp_path / "de-en.tgz", "0" * 32, **FAST)
    assert f"MD5 mismatch: expected {'0' * 32}, got {md5}" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_404_moves_to_next_mirror(server, archive, tmp_path):
    _, data, md5 = archive
    server.files["/b/de-en.tgz"] = data
    fetch([server.url("/a/de-en.tgz"), server.url("/b/de-en.tgz")], tmp_path / "de-en.tgz", md5, **FAST)
    assert server.paths() == ["/a/de-en.tgz", "/b/de-en.tgz"]  # a 404 is not retried
    assert (tmp_path / "de-en.tgz").read_bytes() == data


def test_fetch_retries_5xx(server, archive, tmp_path):
    _, data, md5 = archive
    server.files["/de-en.tgz"] = data
    server.script["/de-en.tgz"] = [503, 500]
    fetch([server.url("/de-en.tgz")], tmp_path / "de-en.tgz", md5, **FAST)
    assert server.paths() == ["/de-en.tgz"] * 3


def test_fetch_all_fail_lists_every_address(server, tmp_path):
    server.script["/down.tgz"] = [502, 502, 502]
    dead = closed_port_url()
    urls = [server.url("/missing.tgz"), server.url("/down.tgz"), dead]
    with pytest.raises(DownloadError) as exc:
        fetch(urls, tmp_path / "de-en.tgz", **FAST)
    msg = str(exc.value)
    assert f"{urls[0]}: HTTP 404" in msg
    assert f"{urls[1]}: HTTP 502 Bad Gateway (after 3 tries)" in msg
    assert f"{dead}: ConnectionError" in msg and "(after 3 tries)" in msg.split(dead)[1]
    assert server.paths() == ["/missing.tgz"] + ["/down.tgz"] * 3
    assert list(tmp_path.iterdir()) == []


def test_fetch_resumes_partial_with_range(server, archive, tmp_path):
    _, data, md5 = archive
    server.files["/de-en.tgz"] = data
    (tmp_path / "de-en.tgz.part").write_bytes(data[:1000])
    fetch([server.url("/de-en.tgz")], tmp_path / "de-en.tgz", md5, **FAST)
    assert server.requests[0][1]["Range"] == "bytes=1000-"
    assert (tmp_path / "de-en.tgz").read_bytes() == data and not (tmp_path / "de-en.tgz.part").exists()


def test_fetch_restarts_when_server_ignores_range(server, archive, tmp_path):
    _, data, md5 = archive
    server.files["/de-en.tgz"] = data
    server.honour_range = False
    (tmp_path / "de-en.tgz.part").write_bytes(b"x" * 1000)  # would corrupt the file if appended to
    fetch([server.url("/de-en.tgz")], tmp_path / "de-en.tgz", md5, **FAST)
    assert server.requests[0][1]["Range"] == "bytes=1000-"
    assert (tmp_path / "de-en.tgz").read_bytes() == data


def test_fetch_416_means_partial_is_complete(server, archive, tmp_path):
    _, data, md5 = archive
    server.files["/de-en.tgz"] = data
    (tmp_path / "de-en.tgz.part").write_bytes(data)
    fetch([server.url("/de-en.tgz")], tmp_path / "de-en.tgz", md5, **FAST)
    assert server.requests[0][1]["Range"] == f"bytes={len(data)}-"
    assert (tmp_path / "de-en.tgz").read_bytes() == data


def test_fetch_resumes_after_connection_drops(server, tmp_path):
    data = random.Random(0).randbytes(300_000)  # several chunks, so some arrive before the cut
    server.files["/de-en.tgz"] = data
    server.script["/de-en.tgz"] = [("cut", 200_000)]
    fetch([server.url("/de-en.tgz")], tmp_path / "de-en.tgz", hashlib.md5(data).hexdigest(), **FAST)
    ranges = [h.get("Range") for _, h in server.requests]
    assert len(ranges) == 2 and ranges[0] is None
    assert 0 < int(ranges[1].removeprefix("bytes=").rstrip("-")) <= 200_000
    assert (tmp_path / "de-en.tgz").read_bytes() == data


# --- safe extraction -------------------------------------------------------------------------
@pytest.mark.parametrize("kind,member", [
    ("dotdot", "de-en/../../evil.txt"), ("absolute", "evil_abs.txt"), ("symlink", "de-en/link"),
    ("chain", "de-en/d/e"), ("hardlink", "de-en/hard"), ("fifo", "de-en/fifo"),
])
def test_safe_extract_refuses_hostile_members(tmp_path, kind, member):
    archive = build_iwslt_archive(tmp_path / "a", escape_member=kind)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(DownloadError, match=rf"de-en\.tgz: refusing unsafe member '[^']*{member}'"):
        safe_extract(archive, tmp_path / "a/b/target")
    assert sorted(tmp_path.rglob("*")) == before  # nothing written anywhere, the target included


def test_run_with_hostile_archive_leaves_no_output(tmp_path):
    archive = build_iwslt_archive(tmp_path / "a", escape_member="symlink")
    with pytest.raises(DownloadError, match="unsafe member"):
        download.run(iwslt_cfg(archive=str(archive), md5={}), tmp_path / "out/raw", tmp_path / "cache")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "not_gzip"])
def test_safe_extract_unreadable_archive(tmp_path, archive, damage):
    path = tmp_path / "de-en.tgz"
    data = archive[1]
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"<html>not found</html>" * 50)
    with pytest.raises(DownloadError, match=r"de-en\.tgz: not a readable tar/gzip archive"):
        safe_extract(path, tmp_path / "out")


def test_plain_tar_is_accepted(tmp_path):
    tar = build_iwslt_archive(tmp_path, fmt="tar")
    safe_extract(tar, tmp_path / "out")
    assert (tmp_path / "out/de-en/train.tags.de-en.en").is_file()


def test_layout_check_names_missing_files(tmp_path):
    path = tmp_path / "de-en.tgz"
    (tmp_path / "de-en").mkdir()
    (tmp_path / "de-en/train.tags.de-en.de").write_text("x\n")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tmp_path / "de-en", arcname="de-en")
    with pytest.raises(DownloadError) as exc:
        download.run(iwslt_cfg(archive=str(path), md5={}), tmp_path / "raw", tmp_path / "cache")
    assert str(exc.value) == (f"{path}: not an IWSLT'14 de-en archive; missing de-en/train.tags.de-en.en, "
                              "de-en/IWSLT14.TED*.de-en.de.xml, de-en/IWSLT14.TED*.de-en.en.xml")
    assert not (tmp_path / "raw").exists()


# --- stage: iwslt14 --------------------------------------------------------------------------
def expected_layout(out):
    names = sorted(p.name for p in (out / "de-en").iterdir())
    assert names[-2:] == ["train.tags.de-en.de", "train.tags.de-en.en"] and len(names) == 12
    assert sorted(p.name for p in out.iterdir()) == ["de-en"]


def test_run_local_archive_without_network(server, archive, tmp_path):
    path, _, md5 = archive
    cfg = iwslt_cfg(archive=str(path), md5={"de-en": md5}, mirrors=[server.url("/{src}-{tgt}.tgz")])
    download.run(cfg, tmp_path / "raw", tmp_path / "cache")
    expected_layout(tmp_path / "raw")
    assert server.requests == [] and not (tmp_path / "cache").exists()
    download.run(iwslt_cfg(archive=path.as_uri(), md5={"de-en": md5}), tmp_path / "raw2", tmp_path / "cache")
    expected_layout(tmp_path / "raw2")


def test_run_local_archive_md5(archive, tmp_path, caplog):
    path, _, md5 = archive
    with pytest.raises(DownloadError, match=f"MD5 mismatch for de-en: expected {'f' * 32} .*, got {md5}") as e:
        download.run(iwslt_cfg(archive=str(path), md5={"de-en": "f" * 32}), tmp_path / "raw", tmp_path / "cache")
    assert f"-S 'data.md5.de-en={md5}'" in str(e.value) and "-S '~data.md5.de-en'" in str(e.value)  # how to accept it
    assert not (tmp_path / "raw").exists()
    with caplog.at_level(logging.WARNING, logger="seq2seq"):
        download.run(iwslt_cfg(archive=str(path), md5={}), tmp_path / "raw", tmp_path / "cache")
    assert f"no known MD5 for de-en to check; its MD5 is {md5}" in caplog.text


def test_run_missing_local_archive(tmp_path):
    with pytest.raises(DownloadError, match="data.archive=.*nope.tgz: no such file"):
        download.run(iwslt_cfg(archive=str(tmp_path / "nope.tgz")), tmp_path / "raw", tmp_path / "cache")


def test_run_downloads_from_mirrors(server, archive, tmp_path):
    _, data, md5 = archive
    server.files["/m2/de-en.tgz"] = data
    cfg = iwslt_cfg(md5={"de-en": md5}, mirrors=[server.url("/m1/{src}-{tgt}.tgz"), server.url("/m2/{src}-{tgt}.tgz")])
    download.run(cfg, tmp_path / "raw", tmp_path / "cache", **FAST)
    expected_layout(tmp_path / "raw")
    assert server.paths() == ["/m1/de-en.tgz", "/m2/de-en.tgz"]
    assert (tmp_path / "cache/de-en.tgz").read_bytes() == data


def test_run_all_mirrors_fail_tells_user_what_to_do_and_it_works(server, archive, tmp_path):
    """Offline: the message names the place where the same command (`make run`, `dvc repro`: the same
    params) finds an archive fetched elsewhere, and the archive put there is used."""
    path, _, md5 = archive
    cfg = iwslt_cfg(md5={"de-en": md5}, mirrors=[server.url("/m1/{src}-{tgt}.tgz"), server.url("/m2/{src}-{tgt}.tgz")])
    with pytest.raises(DownloadError) as exc:
        download.run(cfg, tmp_path / "raw", tmp_path / "cache", **FAST)
    msg = str(exc.value)
    assert f"{server.url('/m1/de-en.tgz')}: HTTP 404" in msg and f"{server.url('/m2/de-en.tgz')}: HTTP 404" in msg
    assert f"(MD5 {md5}) and put it at {tmp_path / 'cache/de-en.tgz'}: `make run`, `dvc repro` and `dvc exp run`" in msg
    assert "`dvc exp run -S data.archive=/path/to/de-en.tgz`" in msg and "seq2seq compose" in msg
    assert not (tmp_path / "raw").exists()
    shutil.copyfile(path, tmp_path / "cache/de-en.tgz")  # what the message says
    download.run(cfg, tmp_path / "raw", tmp_path / "cache", **FAST)
    expected_layout(tmp_path / "raw")
    assert len(server.paths()) == 2  # the two failed tries only: nothing downloaded the second time


def test_run_drops_a_bad_unverified_download(server, tmp_path):
    server.files["/de-en.tgz"] = b"<html>captive portal</html>"
    cfg = iwslt_cfg(md5={}, mirrors=[server.url("/{src}-{tgt}.tgz")])
    with pytest.raises(DownloadError, match="not a readable tar/gzip archive"):
        download.run(cfg, tmp_path / "raw", tmp_path / "cache", **FAST)
    assert list((tmp_path / "cache").iterdir()) == []  # the next run downloads again


def test_main_ok_and_error_exit(archive, tmp_path, capsys):
    path, _, md5 = archive
    params = tmp_path / "params.yaml"
    OmegaConf.save(iwslt_cfg(archive=str(path), md5={"de-en": md5}), params)
    download.main(["--params", str(params), "--out", str(tmp_path / "raw"), "--cache-dir", str(tmp_path / "c")])
    expected_layout(tmp_path / "raw")
    OmegaConf.save(iwslt_cfg(archive=str(path), md5={"de-en": "0" * 32}), params)
    with pytest.raises(SystemExit) as exc:
        download.main(["--params", str(params), "--out", str(tmp_path / "raw2")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert f"error: {path}: MD5 mismatch for de-en: expected {'0' * 32} (data.md5.de-en), got {md5}" in err
    assert "Traceback" not in err


# --- stage: parallel -------------------------------------------------------------------------
def parallel_cfg(folder):
    cfg = compose(["data=parallel"])
    cfg.data.path = str(folder)
    return cfg


def test_parallel_copies_the_six_files(tmp_path):
    splits = write_parallel(tmp_path / "corpus", make_parallel())
    (tmp_path / "corpus/valid.de").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "corpus/valid.de").read_bytes())
    download.run(parallel_cfg(tmp_path / "corpus"), tmp_path / "raw", tmp_path / "cache")
    out = tmp_path / "raw/parallel"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{lang}" for s in splits for lang in ("de", "en"))
    for split, pairs in splits.items():
        assert read_lines(out / f"{split}.de") == [s for s, _ in pairs]
        assert read_lines(out / f"{split}.en") == [t for _, t in pairs]
    assert (out / "valid.de").read_bytes()[:3] != b"\xef\xbb\xbf"  # normalized to plain UTF-8


def test_parallel_missing_files_are_listed(tmp_path):
    write_parallel(tmp_path / "corpus")
    (tmp_path / "corpus/valid.en").unlink()
    (tmp_path / "corpus/test.de").unlink()
    with pytest.raises(DataError, match=r"corpus: missing valid\.en, test\.de$"):
        download.run(parallel_cfg(tmp_path / "corpus"), tmp_path / "raw", tmp_path / "cache")
    assert not (tmp_path / "raw").exists()


def test_parallel_misaligned_names_files_and_counts(tmp_path):
    write_parallel(tmp_path / "corpus", misaligned="train")
    with pytest.raises(DataError, match=r"corpus/train\.de has 43 segments but \S*corpus/train\.en has 42"):
        download.run(parallel_cfg(tmp_path / "corpus"), tmp_path / "raw", tmp_path / "cache")
    assert not (tmp_path / "raw").exists()


def test_parallel_invalid_utf8_names_file_and_line(tmp_path):
    write_parallel(tmp_path / "corpus")
    (tmp_path / "corpus/test.en").write_bytes(b"ok\n\xc3\x28 bad\n")
    with pytest.raises(DataError, match=r"corpus/test\.en:2: not valid UTF-8"):
        download.run(parallel_cfg(tmp_path / "corpus"), tmp_path / "raw", tmp_path / "cache")


def test_secrets_in_archive_and_mirror_addresses_stay_out_of_errors_and_logs(tmp_path, caplog):
    closed = closed_port_url()
    secret = closed.replace("http://", "http://alice:s3cret@") + "?X-Amz-Signature=deadbeef&token=t0k"
    with caplog.at_level(logging.INFO, logger="seq2seq"), pytest.raises(DownloadError) as e:
        download.run(iwslt_cfg(archive=None, mirrors=[secret, secret.replace("alice", "bob")]), tmp_path / "raw",
                     tmp_path / "cache", retries=1)
    for text in (str(e.value), caplog.text):
        assert "***@127.0.0.1" in text and "X-Amz-Signature=***" in text
        assert not {"alice", "bob", "s3cret", "deadbeef", "t0k"} & set(re.split(r"[/:@?&=\s]", text)), text
    with pytest.raises(DownloadError) as e:
        download.run(iwslt_cfg(archive="/no/such/archive.tgz?sig=abc"), tmp_path / "raw", tmp_path / "cache")
    assert "sig=***" in str(e.value) and "abc" not in str(e.value)


def test_a_server_that_wants_a_password_gets_it_from_netrc(server, archive, tmp_path, monkeypatch, caplog):
    """The user's ~/.netrc (here $NETRC) holds the password; params.yaml holds only the address."""
    _, data, md5 = archive
    server.files["/private/de-en.tgz"] = data
    server.basic_auth = "alice:n3trc-s3cret"
    cfg = iwslt_cfg(md5={"de-en": md5}, mirrors=[server.url("/private/{src}-{tgt}.tgz")])
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with pytest.raises(DownloadError, match="HTTP 401"):
        download.run(cfg, tmp_path / "raw", tmp_path / "cache", **FAST)
    (tmp_path / "netrc").write_text("machine 127.0.0.1 login alice password n3trc-s3cret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        download.run(cfg, tmp_path / "raw", tmp_path / "cache", **FAST)
    expected_layout(tmp_path / "raw")
    assert "n3trc-s3cret" not in caplog.text


def test_a_presigned_address_comes_from_the_environment_and_stays_out_of_logs(server, archive, tmp_path, monkeypatch,
                                                                               caplog):
    _, data, md5 = archive
    server.files["/bucket/de-en.tgz?X-Amz-Signature=pr3s1gned"] = data
    monkeypatch.setenv("SEQ2SEQ_ARCHIVE_URL", server.url("/bucket/de-en.tgz?X-Amz-Signature=pr3s1gned"))
    cfg = iwslt_cfg(md5={"de-en": md5}, mirrors=[server.url("/mirror/{src}-{tgt}.tgz")])
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        download.run(cfg, tmp_path / "raw", tmp_path / "cache", **FAST)
    expected_layout(tmp_path / "raw")
    assert server.paths() == ["/bucket/de-en.tgz?X-Amz-Signature=pr3s1gned"]  # the mirrors are not asked
    assert "SEQ2SEQ_ARCHIVE_URL" in caplog.text and "pr3s1gned" not in caplog.text
