"""Reading a sweep directory: its finished jobs, with their configs flattened to dotted keys.

A sweep directory holds one sub-directory per job (`model.attention=luong_dot,seed=2/`) with
`results.json` and `outputs/<split>.hyp` / `outputs/<split>.ref`. Unfinished jobs (no
`results.json`) and jobs whose files cannot be used (`mt.report.validate`: malformed or
unreadable results.json, a score that is not a finite number, an unreadable or non-UTF-8
output file) are listed as `Missing` with the reason, not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt.report.validate import RESULTS_FILE, JobProblem, Outputs, read_outputs, read_results
from mt.training.checkpoint import migrate_config


class ReportError(Exception):
    """A problem with the sweep or the options, said in one line that names the fix."""


@dataclass
class Job:
    """One finished job: its directory and its results.json, with the config flattened to
    dotted keys (`model.attention.name`), and its test outputs (`read_outputs`, NFC)."""

    name: str
    path: Path
    results: dict[str, Any]
    config: dict[str, Any]
    outputs: Outputs = field(default_factory=dict)


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


def _exists(path: Path) -> bool:
    """Whether `path` exists; one that cannot be looked at (permission denied) counts as existing."""
    try:
        return path.exists()
    except OSError:
        return True


def _looks_like_job(path: Path) -> bool:
    """A sub-directory Hydra made for a job (named by its overrides, `jobN`, or holding run files)."""
    return (
        "=" in path.name
        or path.name.startswith("job")
        or path.name.isdigit()
        or any(_exists(path / f) for f in (RESULTS_FILE, ".hydra", "config.yaml", "train.log"))
    )


def read_job(path: Path) -> Job:
    """The job in directory `path`: results.json checked, outputs read; JobProblem says why not."""
    results = read_results(path)
    # keys added to the schema after a job ran get their default, as when it is resumed
    config = flatten(migrate_config(results["config"]))
    return Job(path.name, path, results, config, read_outputs(path, list(results["test"])))


def collect_jobs(sweep_dir: Path) -> tuple[list[Job], list[Missing]]:
    """Finished jobs and unreportable job directories (each with its reason) directly under `sweep_dir`."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(
            f"{sweep_dir} is not a directory; pass the sweep directory (hydra.sweep.dir) of a multirun"
        )
    try:
        entries = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise ReportError(f"cannot list {sweep_dir} ({e.strerror or e}); check its permissions") from None
    jobs: list[Job] = []
    missing: list[Missing] = []
    for path in entries:
        if not _looks_like_job(path):
            continue
        if not _exists(path / RESULTS_FILE):
            missing.append(Missing(path.name, f"unfinished: no {RESULTS_FILE}"))
            continue
        try:
            jobs.append(read_job(path))
        except JobProblem as e:
            missing.append(Missing(path.name, str(e)))
    return jobs, missing


def split_names(jobs: list[Job]) -> list[str]:
    """Test split names in the order the jobs list them."""
    seen: dict[str, None] = {}
    for job in jobs:
        for split in job.results.get("test") or {}:
            seen.setdefault(split, None)
    return list(seen)
