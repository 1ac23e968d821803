"""AER in a sweep report: each job's `alignment.json` (written by training when `alignment.gold`
is set, or by `mt-align checkpoint=JOB/checkpoints/best.pt gold=FILE results=JOB/alignment.json`),
read and checked, and each group's mean ± std over seeds of AER and in-vocabulary AER, in %.

The file holds corpus scores over all links ("all") and over links whose two words occur in the
training text ("in_vocabulary"), and, per gold sentence, the counts |A|, |S|, |A∩S|, |A∩P|, |P|
(`mt.evaluation.aer.COUNT_FIELDS`) from which `mt.report.aer_significance` recomputes corpus AER
on bootstrap resamples. A job without the file has no AER; a malformed one is a note, not fatal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mt.evaluation.aer import COUNT_FIELDS, scores_of_counts
from mt.io import read_json
from mt.report.collect import Job
from mt.report.group import Group
from mt.report.stats import summarize

ALIGNMENT_FILE = "alignment.json"
AER_SCOPES = {"aer": "all", "aer_in_vocabulary": "in_vocabulary"}  # report key -> alignment.json key
AER_NAMES = {"aer": "AER", "aer_in_vocabulary": "AER in-voc"}
AER_TOLERANCE = 5e-4  # a stored AER may differ this much from its counts' (rounded to 3 decimals)

Counts = list[tuple[int, ...]]  # one row per gold sentence, in the order of COUNT_FIELDS


@dataclass
class JobAlignment:
    """One job's AER (a fraction) per report key, and its per-sentence counts when the file has them."""

    aer: dict[str, float]
    counts: dict[str, Counts] | None
    gold: str | None  # the gold file named in the file's settings, when it names one


def _rows(value: Any, fields: list[str], what: str) -> Counts:
    """sentence_counts[scope] -> rows reordered to COUNT_FIELDS; ValueError when malformed."""
    if not isinstance(value, list):
        raise ValueError(f"sentence_counts.{what} is not a list")
    order = [fields.index(f) for f in COUNT_FIELDS]
    rows = []
    for i, row in enumerate(value):
        if (
            not isinstance(row, list)
            or len(row) != len(fields)
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in row)
        ):
            raise ValueError(
                f"sentence_counts.{what}[{i}] is {row!r}, not {len(fields)} non-negative integers"
            )
        rows.append(tuple(row[k] for k in order))
    return rows


def read_alignment(path: Path) -> JobAlignment:
    """A job's alignment.json -> JobAlignment; ValueError with a one-line reason when malformed."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"unreadable: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    aer: dict[str, float] = {}
    for key, scope in AER_SCOPES.items():
        block = data.get(scope)
        value = block.get("aer") if isinstance(block, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ValueError(f'no "{scope}": {{"aer": <a number from 0 to 1>}} (got {block!r:.80})')
        aer[key] = float(value)
    counts = None
    if "sentence_counts" in data:
        sc = data["sentence_counts"]
        fields = sc.get("fields") if isinstance(sc, dict) else None
        if not isinstance(fields, list) or not set(COUNT_FIELDS) <= set(fields):
            raise ValueError(
                f"sentence_counts.fields must list {', '.join(COUNT_FIELDS)} (got {fields!r:.80})"
            )
        counts = {key: _rows(sc.get(scope), fields, scope) for key, scope in AER_SCOPES.items()}
        sizes = {len(rows) for rows in counts.values()}
        if len(sizes) > 1:
            raise ValueError("sentence_counts.all and sentence_counts.in_vocabulary differ in length")
        for key, scope in AER_SCOPES.items():
            recomputed = scores_of_counts(counts[key])["aer"]
            if not math.isclose(recomputed, aer[key], abs_tol=AER_TOLERANCE):
                raise ValueError(
                    f"{scope}.aer is {aer[key]:.4f} but its sentence_counts give {recomputed:.4f}"
                )
            aer[key] = recomputed  # the exact value the bootstrap starts from
    settings = data.get("settings")
    gold = settings.get("gold") if isinstance(settings, dict) else None
    return JobAlignment(aer, counts, str(gold) if gold else None)


def collect_alignments(jobs: list[Job]) -> tuple[dict[str, JobAlignment], list[str]]:
    """{job name: JobAlignment} for the jobs with a readable alignment.json, and a note for each
    malformed one (that job is reported without AER)."""
    found: dict[str, JobAlignment] = {}
    notes: list[str] = []
    for job in jobs:
        path = job.path / ALIGNMENT_FILE
        if not path.exists():  # a directory or an unreadable file is read below, and noted
            continue
        try:
            found[job.name] = read_alignment(path)
        except ValueError as e:
            notes.append(
                f"{job.name}/{ALIGNMENT_FILE} is malformed ({e}), so this run has no AER; rewrite it with "
                f"`mt-align checkpoint={job.path}/checkpoints/best.pt gold=FILE results={path}`"
            )
    golds = {a.gold for a in found.values() if a.gold}
    if len(golds) > 1:
        notes.append(
            f"the runs' AER comes from {len(golds)} different gold files: {', '.join(sorted(golds))}"
        )
    return found, notes


def aer_summary(group: Group, alignments: dict[str, JobAlignment]) -> dict[str, Any]:
    """{report key: mean ± std over the group's runs that have AER, in %}."""
    runs = [alignments[job.name] for job in group.jobs if job.name in alignments]
    return {key: summarize([100.0 * run.aer[key] for run in runs]) for key in AER_SCOPES}
