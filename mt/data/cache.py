"""Verified disk caches: a cached file is reused only when its record vouches for it.

A cache entry is one or more files plus a JSON record written after them (atomically), which
holds what the files were built for (versions, settings, text hashes: the inputs of the cache
key) and the size and SHA-256 of each file. An entry is reused only when its record parses,
matches the inputs asked for, every file has its recorded size and digest, and each file opens.
Anything else (a truncated or garbage file, a file copied from another key, an entry from an
older mt without a record) logs one warning naming the file and the reason, removes the entry
and tells the caller to rebuild it.

Runs that share a cache folder (the jobs of a sweep, two trainings started together) check and
build each entry under its lock file (:func:`entry_lock`), so an entry is built once and one run
never takes another's half-written entry for an interrupted one and removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from mt.io import read_json, write_json

logger = logging.getLogger("mt.data.cache")

RECORD_FORMAT = "mt-cache-record"
RECORD_VERSION = 1


def file_digest(path: Path, chunk: int = 1 << 20) -> dict[str, Any]:
    """Return ``{"size": bytes, "sha256": hex digest}`` of the file at ``path``."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return {"size": size, "sha256": h.hexdigest()}


def _as_json(obj: Mapping[str, Any]) -> Any:
    """Return ``obj`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def write_record(record: Path, built_for: Mapping[str, Any], files: Sequence[Path], **extra: Any) -> None:
    """Vouch for ``files`` (already written): record what they were built for and their size and sha256."""
    write_json(
        record,
        {
            "format": RECORD_FORMAT,
            "version": RECORD_VERSION,
            "built_for": _as_json(built_for),
            "files": {p.name: file_digest(p) for p in files},
            **extra,
        },
    )


@dataclass(frozen=True)
class Damage:
    """Why a cache entry cannot be reused: the file at fault and what is wrong with it."""

    path: Path
    reason: str  # e.g. "damaged (sha256 mismatch)"


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def find_damage(
    record: Path,
    built_for: Mapping[str, Any],
    files: Sequence[Path],
    opens: Callable[[Path], object] | None = None,
) -> Damage | None:
    """Return why the entry (``files`` vouched for by ``record``) is unusable, or None when it passes every check."""
    if not record.is_file():
        present = next((p for p in files if p.exists()), files[0])
        return Damage(present, "from an older version or an interrupted run (no checksum record)")
    try:
        meta = read_json(record)
    except Exception as e:  # unreadable, not UTF-8, not JSON: all the same to the caller
        return Damage(record, f"damaged (unreadable record: {_one_line(e)})")
    recorded = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(recorded, dict) or meta.get("format") != RECORD_FORMAT:
        return Damage(record, "from an older version or damaged (no checksums in its record)")
    if meta.get("version") != RECORD_VERSION:
        return Damage(record, f"from another version of mt (record version {meta.get('version')!r})")
    if meta.get("built_for") != _as_json(built_for):
        return Damage(files[0], "built for other data or settings (its record does not match)")
    for path in files:
        want = recorded.get(path.name)
        if not isinstance(want, dict):
            return Damage(path, "not vouched for (absent from its record)")
        if not path.is_file():
            return Damage(path, "missing")
        try:
            got = file_digest(path)
        except OSError as e:
            return Damage(path, f"damaged (unreadable: {_one_line(e)})")
        if got["size"] != want.get("size"):
            return Damage(path, f"damaged (size {got['size']} bytes, expected {want.get('size')})")
        if got["sha256"] != want.get("sha256"):
            return Damage(path, "damaged (sha256 mismatch)")
        if opens is not None:
            try:
                opens(path)
            except Exception as e:  # any failure to load a cached file is damage
                return Damage(path, f"damaged (cannot be loaded: {_one_line(e)})")
    return None


def remove_entry(record: Path, files: Sequence[Path]) -> None:
    """Delete an entry's record (first, so nothing vouches for a half-deleted entry), then its files."""
    for path in (record, *files):
        try:
            os.unlink(path)
        except OSError:  # absent, or a read-only cache: the rebuild overwrites or says why it cannot
            pass


def reusable(
    what: str,
    record: Path,
    built_for: Mapping[str, Any],
    files: Sequence[Path],
    opens: Callable[[Path], object] | None = None,
) -> bool:
    """Return whether the cached ``files`` can be reused; False when absent, or (after one warning
    naming the file and why, and removing the entry) when they fail a check of :func:`find_damage`.

    ``what`` names the cache in the warning, e.g. ``"tokenizer cache"``.
    """
    if not record.exists() and not any(p.exists() for p in files):
        return False
    damage = find_damage(record, built_for, files, opens)
    if damage is None:
        return True
    logger.warning("%s %s is %s; rebuilding", what, damage.path, damage.reason)
    remove_entry(record, files)
    return False


@contextlib.contextmanager
def entry_lock(what: str, entry: Path) -> Iterator[None]:
    """Hold the lock of the cache entry at ``entry`` (its file or folder) for the block: the file
    ``<entry>.lock`` beside it, left in place for the next run.

    Check, build and open an entry inside it: a run that finds the lock held waits (with one
    log line naming the lock) until the other run has written the entry, then reuses it. A
    folder where no lock file can be made (a read-only cache) is used without one: nothing can be
    built there, so nothing can race.
    """
    path = entry.with_name(entry.name + ".lock")
    lock = FileLock(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            logger.info(
                "%s: another run holds this entry (building or checking it); waiting for %s", what, path
            )
            lock.acquire()
    except OSError as e:
        logger.debug("%s: no lock at %s (%s); using the cache unlocked", what, path, _one_line(e))
        yield
        return
    try:
        yield
    finally:
        lock.release()
