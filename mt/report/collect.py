"""Reading a sweep directory: its finished jobs, with their configs flattened to dotted keys.

A sweep directory holds one sub-directory per job (`model.attention=luong_dot,seed=2/`) with
`results.json` and `outputs/<split>.hyp` / `outputs/<split>.ref`. Unfinished jobs (no
`results.json`) are listed as `Missing`, not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mt.io import read_json
from mt.training.checkpoint import migrate_config


class ReportError(Exception):
    """A problem with the sweep or the options, said in one line that names the fix."""


@dataclass
class Job:
    """One finished job: its directory and its results.json, with the config flattened to
    dotted keys (`model.attention.name`)."""

    name: str
    path: Path
    results: dict[str, Any]
    config: dict[str, Any]


@dataclass
class Missing:
    """A job directory that cannot be reported, and why."""

    name: str
    reason: str


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {"a.b.c": leaf}; lists and scalars are leaves."""
    if not isinstance(cfg, dict):
        return {prefix: cfg}
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def _looks_like_job(path: Path) -> bool:
    """A sub-directory Hydra made for a job (named by its overrides, `jobN`, or holding run files)."""
    return (
        "=" in path.name
        or path.name.startswith("job")
        or path.name.isdigit()
        or any((path / f).exists() for f in ("results.json", ".hydra", "config.yaml", "train.log"))
    )


def collect_jobs(sweep_dir: Path) -> tuple[list[Job], list[Missing]]:
    """Finished jobs and unreportable job directories directly under `sweep_dir`."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(
            f"{sweep_dir} is not a directory; pass the sweep directory (hydra.sweep.dir) of a multirun"
        )
    jobs: list[Job] = []
    missing: list[Missing] = []
    for path in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not _looks_like_job(path):
            continue
        results_path = path / "results.json"
        if not results_path.is_file():
            missing.append(Missing(path.name, "unfinished: no results.json"))
            continue
        try:
            results = read_json(results_path)
        except (OSError, ValueError) as e:
            missing.append(Missing(path.name, f"unreadable results.json ({e})"))
            continue
        if not isinstance(results, dict) or not isinstance(results.get("config"), dict):
            missing.append(Missing(path.name, "results.json has no 'config' (not written by mt-train)"))
            continue
        # keys added to the schema after a job ran get their default, as when it is resumed
        jobs.append(Job(path.name, path, results, flatten(migrate_config(results["config"]))))
    return jobs, missing


def split_names(jobs: list[Job]) -> list[str]:
    """Test split names in the order the jobs list them."""
    seen: dict[str, None] = {}
    for job in jobs:
        for split in job.results.get("test") or {}:
            seen.setdefault(split, None)
    return list(seen)
