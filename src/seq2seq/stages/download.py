"""Stage 1: fetch the raw corpus.

    python -m seq2seq.stages.download --params params.yaml --out data/raw [--cache-dir data/.downloads]

data.source=iwslt14: the verified archive {src}-{tgt}.tgz (seq2seq.data.fetch: $SEQ2SEQ_ARCHIVE_URL,
data.archive or data.mirrors; downloads land in --cache-dir, outside DVC's outputs, so that a
partial one is resumed), extracted safely: <out>/{src}-{tgt}/train.tags.* and IWSLT14.*.xml.

data.source=parallel: data.path/{train,valid,test}.{src,tgt}, checked and copied to <out>/parallel/
(seq2seq.data.parallel).

<out> appears only once complete.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from seq2seq.command import run_stage
from seq2seq.config.params import load_params, repo_root
from seq2seq.data.fetch import get_archive, safe_extract
from seq2seq.data.iwslt import check_layout
from seq2seq.data.parallel import copy_parallel
from seq2seq.errors import ConfigError, DownloadError
from seq2seq.io import atomic_path

log = logging.getLogger("seq2seq.stages.download")  # not __name__: that is __main__ under -m

DEFAULT_CACHE = "data/.downloads"


def run(cfg, out: str | os.PathLike, cache_dir: str | os.PathLike = DEFAULT_CACHE, **fetch_kw) -> Path:
    """Fill `out` for cfg.data (see the module docstring); returns `out`."""
    data, out = cfg.data, Path(out)
    if data.source == "parallel":
        if not data.path:
            raise ConfigError("data.source=parallel needs data.path")
        with atomic_path(out) as tmp:
            counts = copy_parallel(data.path, tmp / "parallel", data.src, data.tgt)
        log.info("copied %s from %s to %s", counts, data.path, out / "parallel")
        return out
    if data.source != "iwslt14":
        raise ConfigError(f"data.source={data.source!r} is not one of iwslt14, parallel")
    archive = get_archive(data, cache_dir, **fetch_kw)
    try:
        with atomic_path(out) as tmp:
            safe_extract(archive, tmp)
            check_layout(tmp, data.src, data.tgt, archive)
    except DownloadError:
        if archive.parent.resolve() == Path(cache_dir).resolve():
            archive.unlink(missing_ok=True)  # a download that is no good: fetch it again next time
        raise
    log.info("extracted %s to %s", archive, out / f"{data.src}-{data.tgt}")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m seq2seq.stages.download", description="Stage 1: fetch the raw corpus.")
    p.add_argument("--params", default="params.yaml", help="resolved parameters (default: params.yaml)")
    p.add_argument("--out", default="data/raw", help="output folder (default: data/raw)")
    p.add_argument("--cache-dir", default=None,
                   help=f"downloads and partials (default: <repo root>/{DEFAULT_CACHE}, shared by DVC's temporary workspaces)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s: %(message)s")
    cache_dir = args.cache_dir or repo_root() / DEFAULT_CACHE
    run_stage(lambda: run(load_params(args.params), args.out, cache_dir))


if __name__ == "__main__":
    main()
