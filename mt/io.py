"""The one way mt writes a file (atomically) and reads and writes JSON.

A crash or a full disk during a write leaves either the old file or the new one, never a
mix: data goes to a temporary file in the same folder, is flushed to disk, then renamed.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mt.errors import OutputError


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call `write(f)` on a temporary binary file beside `path`, fsync it and rename it over `path`.

    Folders are created. An OSError becomes an OutputError naming the path and the fix; the
    temporary file is removed on any failure.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError(
            f"could not write {path}: {write_problem(path, e)}; choose another output directory"
        ) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise OutputError(
            f"could not write {path}: {write_problem(path, e)}. The previous file, if any, is intact; "
            f"free disk space or choose another output directory."
        ) from e
    except BaseException:  # any other exit, Ctrl-C included: remove the temporary file, re-raise
        _unlink_quietly(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` as UTF-8 to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_lines(path: str | Path, lines: list[str]) -> Path:
    """One line per item, each ending with a newline, atomically."""
    return atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write `obj` as indented UTF-8 JSON."""
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    """Parse a JSON file (UTF-8)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_problem(path: str | Path, error: OSError) -> str:
    """What kept `path` from being written: a file where one of its folders should be, else the
    operating system's words for `error`."""
    blocker = next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)
    return f"{blocker} is a file, not a folder" if blocker else (error.strerror or str(error))


def unreadable_reason(path: str | Path) -> str | None:
    """Why `path` cannot be read as a file ('does not exist', 'is a directory', 'is a symlink
    loop', 'cannot be read (permission denied)', ...), or None when it can."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symlink loop (a link that points back to itself)"
        if path.is_symlink():
            return f"is a symlink to {os.readlink(path)}, which does not exist"
        if e.errno in (errno.EACCES, errno.EPERM):
            return "cannot be read (permission denied)"
        if e.errno == errno.ENOTDIR:
            return "does not exist (a part of its path is a file, not a folder)"
        return "does not exist" if e.errno == errno.ENOENT else f"cannot be read ({e.strerror})"
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISSOCK(mode) or stat.S_ISBLK(mode):
        return f"is a {'socket' if stat.S_ISSOCK(mode) else 'block device'}, not a file"
    # pipes and character devices are read as streams: input=<(zcat f.gz), input=/dev/stdin
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
