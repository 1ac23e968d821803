"""Where a training run stands: the counters a checkpoint carries so that training resumes
exactly (`Progress`), and the grouping of an epoch's batches into updates (`grouped`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


def grouped(batches: Iterable[Any], n: int) -> Iterator[list[Any]]:
    """Consecutive groups of `n` batches (one update each); the last group of an epoch may be shorter."""
    group: list[Any] = []
    for batch in batches:
        group.append(batch)
        if len(group) == n:
            yield group
            group = []
    if group:
        yield group


@dataclass
class Progress:
    """Counters that a checkpoint carries so that training resumes exactly."""

    step: int = 0  # optimizer updates done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already consumed
    best_bleu: float = -1.0
    best_step: int = 0
    bad_validations: int = 0  # validations since the best one
    nonfinite_in_row: int = 0
    nonfinite_total: int = 0
    train_seconds: float = 0.0  # wall time spent in fit() across resumes
    step_seconds: float = 0.0  # of which in the model step (forward, backward, update)
    valid_seconds: float = 0.0  # of which validating (decoding, scoring, plots, checkpoints)
    history: list[dict[str, float]] = field(default_factory=list)
