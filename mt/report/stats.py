"""Summaries of a sweep's groups: mean ± sample standard deviation (n-1) over a group's runs of
each metric on validation and each test split, and of the training minutes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from mt.report.collect import Job
from mt.report.group import SEED_KEY, Group


def summarize(values: list[float]) -> dict[str, Any]:
    """{mean, std (sample, n-1; None for n < 2), n, values}; mean None when there are no values."""
    n = len(values)
    return {
        "mean": statistics.fmean(values) if n else None,
        "std": statistics.stdev(values) if n > 1 else None,
        "n": n,
        "values": values,
    }


def _score(block: Any, metric: str) -> float | None:
    """results.json's {metric: {"score": x}} -> x, None when absent."""
    try:
        value = block[metric]["score"]
    except (KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def group_summary(group: Group, splits: list[str], metrics: list[str]) -> dict[str, Any]:
    """Mean ± std over the group's runs of each metric on validation and each test split, and
    of the training minutes."""

    def collect(get: Callable[[Job], float | None]) -> dict[str, Any]:
        return summarize([v for v in (get(job) for job in group.jobs) if v is not None])

    def minutes(job: Job) -> float | None:
        value = (job.results.get("train") or {}).get("train_minutes")
        return float(value) if isinstance(value, int | float) else None

    return {
        "name": group.label,
        "values": group.values,
        "n": len(group.jobs),
        "jobs": [job.name for job in group.jobs],
        "seeds": [job.config.get(SEED_KEY) for job in group.jobs],
        "valid": {m: collect(lambda j, m=m: _score(j.results.get("valid"), m)) for m in metrics},
        "test": {
            s: {
                m: collect(lambda j, s=s, m=m: _score((j.results.get("test") or {}).get(s), m))
                for m in metrics
            }
            for s in splits
        },
        "train_minutes": collect(minutes),
    }
