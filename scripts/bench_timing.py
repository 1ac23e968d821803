"""The timer the micro-benchmarks in scripts/ share."""

from __future__ import annotations

from collections.abc import Callable

from torch.utils import benchmark


def median_seconds(fn: Callable[[], object], min_run_time: float, num_threads: int = 1) -> float:
    """Median seconds of one call of ``fn`` on `num_threads` intra-op threads (torch's benchmark
    timer, which sets them; its default is one), timed for at least `min_run_time` seconds."""
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=num_threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median
