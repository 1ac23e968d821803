"""Locating (and, when allowed, downloading) the raw Multi30k task-1 files.

Files are named ``{split}.{lang}.gz`` (``train``, ``val``, ``test_2016_flickr``,
``test_2017_flickr``; an uncompressed ``{split}.{lang}`` is accepted too). They are looked up in:

1. ``data.data_dir/multi30k/`` (or ``data.data_dir`` itself) when ``data.data_dir`` is set, else
   ``$MT_DATA_DIR/multi30k/`` when that variable is set;
2. ``data/multi30k/`` under the project root (see :mod:`mt.data.paths`), where downloads go.
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from mt.config import MULTI30K_MISSING, MULTI30K_TEST_SPLITS
from mt.data.paths import MT_DATA_DIR_ENV, resolve_input, resolve_output
from mt.errors import DataFileNotFoundError

logger = logging.getLogger("mt.data")

MULTI30K_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/{name}"
MULTI30K_BROWSE_URL = "https://github.com/multi30k/dataset/tree/master/data/task1/raw"
DOWNLOAD_SUBDIR = "data/multi30k"
# our split name -> file prefix
SPLIT_FILES = {"train": "train", "validation": "val"} | {s: s for s in MULTI30K_TEST_SPLITS}
DOWNLOAD_TIMEOUT_S = 30.0


def default_download_dir() -> Path:
    """Return the folder downloads are written to (``data/multi30k`` under the project root)."""
    return resolve_output(DOWNLOAD_SUBDIR)


def search_dirs(data_dir: str | None) -> list[Path]:
    """Return the folders searched for Multi30k files, in order; the download folder is last."""
    if data_dir:
        base = resolve_input(data_dir)
        dirs = [base / "multi30k", base]
    elif os.environ.get(MT_DATA_DIR_ENV):
        dirs = [resolve_input(os.environ[MT_DATA_DIR_ENV]) / "multi30k"]
    else:
        dirs = []
    dl = default_download_dir()
    return dirs + ([dl] if dl not in dirs else [])


def available_test_splits(src_lang: str, tgt_lang: str) -> list[str]:
    """Return the Multi30k test splits that exist for a language pair."""
    return [
        s
        for s in MULTI30K_TEST_SPLITS
        if (s, src_lang) not in MULTI30K_MISSING and (s, tgt_lang) not in MULTI30K_MISSING
    ]


def _find(name: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        for candidate in (d / f"{name}.gz", d / name):
            if candidate.is_file():
                return candidate
    return None


def download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download ``url`` to ``dest`` with a progress bar; ``dest`` appears only once complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, os.fdopen(fd, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=f"download {dest.name}", leave=False
            ) as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
        with open(tmp, "rb") as f:
            if dest.suffix == ".gz" and f.read(2) != b"\x1f\x8b":
                raise OSError(f"{url} did not return a gzip file")
        os.replace(tmp, dest)
    except BaseException:  # any exit, Ctrl-C included: remove the partial file, then re-raise
        Path(tmp).unlink(missing_ok=True)
        raise


def locate(split: str, lang: str, data_dir: str | None, allow_download: bool) -> Path:
    """Return the path of one Multi30k file, downloading it when absent and allowed."""
    name = f"{SPLIT_FILES[split]}.{lang}"
    dirs = search_dirs(data_dir)
    found = _find(name, dirs)
    if found is not None:
        return found
    url = MULTI30K_URL.format(name=f"{name}.gz")
    dest = default_download_dir() / f"{name}.gz"
    reason = "downloading is off (data.download=false)"
    if allow_download:
        logger.info("Multi30k: %s.gz not found locally; downloading %s", name, url)
        try:
            download(url, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = f"downloading {url} failed ({e})"
    looked = ", ".join(str(d) for d in dirs)
    raise DataFileNotFoundError(
        f"Multi30k file {name}.gz was not found (looked in: {looked}) and {reason}. Provide the raw "
        f"files in one of two ways: set {MT_DATA_DIR_ENV} to a folder that contains multi30k/ "
        f"(e.g. `export {MT_DATA_DIR_ENV}=../shared/data`), or put the .gz files into "
        f"{default_download_dir()}/ (they are at {MULTI30K_BROWSE_URL}). "
        f"data.data_dir=PATH also works, with PATH holding multi30k/."
    )
