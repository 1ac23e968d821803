"""Grouping a sweep's jobs: the config keys the sweep varied, the groups of jobs that share the
values of the grouping keys (by default every varied key except the seed), and the baseline group.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from mt.config import TrainConfig
from mt.report.collect import Job, ReportError

SEED_KEY = "seed"
MECHANISM_KEY = "model.attention.name"
DEFAULT_BASELINES = {MECHANISM_KEY: "bahdanau"}


@dataclass
class Group:
    """The jobs that share the values of the grouping keys."""

    label: str
    values: dict[str, Any]
    jobs: list[Job] = field(default_factory=list)


def _key(value: Any) -> str:
    """A hashable, comparable form of a config value."""
    return json.dumps(value, sort_keys=True, default=str)


def show_value(value: Any) -> str:
    """A config value as people write it in overrides."""
    return value if isinstance(value, str) else _key(value)


# Settings that say how a run was carried out or scored, not what was trained: never a
# variable of the comparison (a resumed run, another progress bar or gold-set sample size).
OPERATIONAL = ("resume", "trainer.progress", "trainer.device", "data.data_dir", "data.cache_dir",
               "data.download", "alignment.")  # fmt: skip


def varying_keys(jobs: list[Job]) -> list[str]:
    """Config keys whose value is not the same in every job (a key absent from a job counts),
    leaving out the operational ones (:data:`OPERATIONAL`; a trailing dot is a prefix)."""
    keys = sorted({k for job in jobs for k in job.config})
    keys = [k for k in keys if not any(k == o or (o.endswith(".") and k.startswith(o)) for o in OPERATIONAL)]
    return [k for k in keys if len({_key(job.config.get(k)) for job in jobs}) > 1]


def _partition(jobs: list[Job], keys: list[str]) -> set[frozenset[str]]:
    """The sets of job names that agree on every one of `keys`."""
    parts: dict[tuple[str, ...], set[str]] = {}
    for job in jobs:
        parts.setdefault(tuple(_key(job.config.get(k)) for k in keys), set()).add(job.name)
    return {frozenset(p) for p in parts.values()}


def drop_redundant(jobs: list[Job], keys: list[str]) -> tuple[list[str], list[str]]:
    """Remove keys whose value follows from the other keys (e.g. `model.dec_hidden` tied to
    `model.enc_hidden`); keys named `...name` are kept longest. -> (kept, dropped)."""
    target = _partition(jobs, keys)
    kept = list(keys)
    dropped = []
    for key in sorted(keys, key=lambda k: (k.endswith("name"), k)):
        rest = [k for k in kept if k != key]
        if rest and _partition(jobs, rest) == target:
            kept, dropped = rest, dropped + [key]
    return kept, dropped


def resolve_group_keys(jobs: list[Job], by: str | None) -> tuple[list[str], list[str]]:
    """The keys to group by -> (keys, keys dropped because another key determines them).

    `by=None`: every key that differs between jobs except `seed`. `by="a.b,c"`: those keys; a
    key that names a sub-tree (`model.attention`) means its leaves that differ.
    """
    varying = varying_keys(jobs)
    if by is None:
        return drop_redundant(jobs, [k for k in varying if k != SEED_KEY])
    all_keys = sorted({k for job in jobs for k in job.config})
    keys: list[str] = []
    for wanted in (w.strip() for w in by.split(",") if w.strip()):
        if wanted in all_keys:
            keys.append(wanted)
            continue
        leaves = [k for k in all_keys if k.startswith(wanted + ".")]
        if not leaves:
            hint = ", ".join(k for k in varying if k != SEED_KEY) or "none besides seed"
            raise ReportError(
                f"unknown --by key {wanted!r}: no job's config has it; keys that differ between jobs: {hint} "
                f"(use a dotted config path such as --by {MECHANISM_KEY})"
            )
        keys.extend([k for k in leaves if k in varying] or leaves)
    if not keys:
        raise ReportError("--by is empty; give a dotted config path such as --by model.attention.name")
    return list(dict.fromkeys(keys)), []


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers first, in numeric order, then everything else by its override text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (1, 0.0, show_value(value))
    return (0, float(value), "")


def group_jobs(jobs: list[Job], keys: list[str]) -> list[Group]:
    """Jobs grouped by the values of `keys`, ordered by those values."""
    if not keys:
        return [Group("all", {}, list(jobs))]
    short = {k: k.rsplit(".", 1)[-1] for k in keys}
    if len(set(short.values())) < len(keys):
        short = {k: k for k in keys}
    groups: dict[str, Group] = {}
    for job in jobs:
        values = {k: job.config.get(k) for k in keys}
        label = (
            show_value(values[keys[0]])
            if len(keys) == 1
            else ",".join(f"{short[k]}={show_value(v)}" for k, v in values.items())
        )
        groups.setdefault(label, Group(label, values)).jobs.append(job)
    return sorted(groups.values(), key=lambda g: [_sort_key(g.values[k]) for k in keys])


_NO_DEFAULT = object()


def schema_default(key: str) -> Any:
    """The `mt-train` schema's default of a dotted key (TrainConfig), or _NO_DEFAULT."""
    obj: Any = TrainConfig()
    for part in key.split("."):
        if not dataclasses.is_dataclass(obj) or not hasattr(obj, part):
            return _NO_DEFAULT
        obj = getattr(obj, part)
    return obj


def pick_baseline(groups: list[Group], keys: list[str], baseline: str | None) -> tuple[Group | None, str]:
    """The baseline group and a note on how it was chosen.

    An explicit `baseline` must match a group label, or exactly one group's value of a grouping
    key; otherwise a ReportError lists the groups. Without one: the key's default (`bahdanau`
    for the attention mechanism) when present, else the first group. Grouped by several keys,
    several groups holding the default are narrowed to the one whose other keys hold their
    schema defaults (bahdanau without the coverage loss, not bahdanau with it).
    """
    if len(groups) < 2:
        return None, "one group only: nothing to compare"

    def matches(value: str) -> list[Group]:
        exact = [g for g in groups if g.label == value]
        return exact or [g for g in groups if any(show_value(v) == value for v in g.values.values())]

    labels = ", ".join(g.label for g in groups)
    if baseline is not None:
        found = matches(baseline)
        if len(found) != 1:
            why = "is not in the sweep" if not found else f"matches {len(found)} groups"
            raise ReportError(
                f"baseline {baseline!r} {why}; groups are: {labels} (choose one with --baseline)"
            )
        return found[0], f"--baseline {baseline}"
    for key in keys:
        if key in DEFAULT_BASELINES:
            found = matches(DEFAULT_BASELINES[key])
            narrowed = len(found) > 1
            if narrowed:
                others = [k for k in keys if k != key]
                found = [g for g in found if all(g.values[k] == schema_default(k) for k in others)]
            if len(found) == 1:
                return found[0], f"default for {key}" + (
                    " with the other keys at their defaults" if narrowed else ""
                )
            why = "is not in the sweep" if not found else f"matches {len(found)} groups"
            return groups[0], (
                f"{DEFAULT_BASELINES[key]!r} (the default for {key}) {why}; "
                f"compared against the first group instead (choose with --baseline)"
            )
    return groups[0], "first group (choose with --baseline)"
