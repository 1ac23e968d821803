"""Where relative data paths point: the current directory for inputs, the project root for outputs.

Rules (the same for every entry point, so a run started from another directory, or by a tool
that changes directory, still finds the data and shares one cache):

- The *project root* is the folder holding ``pyproject.toml`` next to the installed ``mt``
  package (an editable install or a checkout). Without one (a wheel install) it is the current
  directory.
- An input path (``data.files``, ``data.data_dir``, a local ``data.hub_name``) that is relative is
  looked up in the current directory first, then under the project root.
- An output path (``data.cache_dir``, Multi30k downloads in ``data/multi30k``) that is relative is
  placed under the project root.
"""

from __future__ import annotations

import os
from pathlib import Path

import mt

MT_DATA_DIR_ENV = "MT_DATA_DIR"


def project_root() -> Path | None:
    """Return the checkout the ``mt`` package was imported from, or None for a non-editable install."""
    root = Path(mt.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def input_candidates(path: str | os.PathLike[str]) -> list[Path]:
    """Return where an input path may be, in lookup order (current directory, then project root)."""
    p = Path(path).expanduser()
    root = project_root()
    if p.is_absolute() or root is None or (root / p).resolve() == p.resolve():
        return [p]
    return [p, root / p]


def resolve_input(path: str | os.PathLike[str]) -> Path:
    """Return the first existing candidate for an input path, else the path as given."""
    candidates = input_candidates(path)
    return next((c for c in candidates if c.exists()), candidates[0])


def resolve_output(path: str | os.PathLike[str]) -> Path:
    """Return where an output path lives: absolute as given, relative ones under the project root."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return (project_root() or Path.cwd()) / p
