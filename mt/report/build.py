"""Building a sweep report: collect the jobs, group them, choose the baseline, summarise each
group and test each against the baseline -> plain JSON-ready data for `mt.report.render`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mt.report.aer_significance import compare_aer_to_baseline
from mt.report.alignment import AER_SCOPES, ALIGNMENT_FILE, aer_summary, collect_alignments
from mt.report.collect import Job, Missing, ReportError, collect_jobs, split_names
from mt.report.group import SEED_KEY, Group, group_jobs, pick_baseline, resolve_group_keys, varying_keys
from mt.report.significance import (
    ALPHA,
    DEFAULT_BOOTSTRAP_SEED,
    DEFAULT_RESAMPLES,
    METRICS,
    compare_to_baseline,
)
from mt.report.stats import group_summary


def no_jobs_message(sweep_dir: Path, missing: list[Missing], shown: int = 3) -> str:
    """One line for a sweep without a usable job: what was expected, and why the job directories
    found (the first `shown` of them) cannot be used."""
    message = (
        f"no finished jobs to report in {sweep_dir}: expected <job>/results.json files written by "
        f"`mt-train -m ... hydra.sweep.dir={sweep_dir}`"
    )
    if missing:
        reasons = "; ".join(f"{m.name}: {m.reason}" for m in missing[:shown])
        more = f"; and {len(missing) - shown} more" if len(missing) > shown else ""
        message += (
            f"; {len(missing)} job director{'y' if len(missing) == 1 else 'ies'} not usable ({reasons}{more})"
        )
    return message


def _aer_section(
    jobs: list[Job],
    groups: list[Group],
    summaries: list[dict[str, Any]],
    base: Group | None,
    pair_keys: list[str],
    n_resamples: int,
    seed: int,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The AER part of the report, when any job has an alignment.json: each group's summary gets
    "alignment" (mean ± std in %), and -> ({columns, unit, ..., significance} or None, notes)."""
    alignments, notes = collect_alignments(jobs)
    if not alignments:
        return None, notes
    for summary, group in zip(summaries, groups, strict=True):
        summary["alignment"] = aer_summary(group, alignments)
    significance = None
    if base is not None:
        significance = compare_aer_to_baseline(groups, base, alignments, pair_keys, n_resamples, seed)
        significance.update({
            "method": "paired bootstrap over the gold sentences (sacreBLEU's resampling and p-value), per seed",
            "n_resamples": n_resamples, "bootstrap_seed": seed, "alpha": ALPHA,
        })  # fmt: skip
    return {
        "columns": list(AER_SCOPES), "unit": "%", "lower_is_better": True, "file": ALIGNMENT_FILE,
        "runs": len(alignments), "significance": significance,
    }, notes  # fmt: skip


def build_report(
    sweep_dir: Path,
    by: str | None = None,
    baseline: str | None = None,
    metric: str = "bleu",
    n_resamples: int = DEFAULT_RESAMPLES,
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED,
    progress: bool = False,
) -> dict[str, Any]:
    """Everything the report says, as plain JSON-ready data (see `render_markdown`)."""
    if metric not in METRICS:
        raise ReportError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if n_resamples < 1:
        raise ReportError(f"--bootstrap must be at least 1 (default {DEFAULT_RESAMPLES}), got {n_resamples}")
    if bootstrap_seed < 1:
        raise ReportError(
            f"--bootstrap-seed must be at least 1 (sacreBLEU reads 0 as unseeded), got {bootstrap_seed}"
        )
    sweep_dir = Path(sweep_dir)
    jobs, missing = collect_jobs(sweep_dir)
    if not jobs:
        raise ReportError(no_jobs_message(sweep_dir, missing))
    keys, dropped = resolve_group_keys(jobs, by)
    groups = group_jobs(jobs, keys)
    base, base_note = pick_baseline(groups, keys, baseline)
    pair_keys = [k for k in varying_keys(jobs) if k not in keys and k not in dropped]
    splits = split_names(jobs)
    metrics = [metric] + [m for m in ("bleu", "chrf") if m != metric]
    if base is not None:
        groups = [base] + [g for g in groups if g is not base]
    summaries = [group_summary(g, splits, metrics) for g in groups]
    significance = None
    if base is not None and splits:
        significance = compare_to_baseline(
            groups, base, splits, pair_keys, metric, n_resamples, bootstrap_seed, progress
        )
        significance.update({
            "method": "sacreBLEU paired bootstrap (PairedTest, test_type='bs') on Unicode NFC text, per seed",
            "metric": metric, "n_resamples": n_resamples, "bootstrap_seed": bootstrap_seed, "alpha": ALPHA,
        })  # fmt: skip
    alignment, notes = _aer_section(jobs, groups, summaries, base, pair_keys, n_resamples, bootstrap_seed)
    if dropped:
        notes.append(f"also differ between groups, determined by {', '.join(keys)}: {', '.join(dropped)}")
    within = [k for k in pair_keys if k != SEED_KEY]
    if within:
        notes.append(f"groups pool runs that also differ in {', '.join(within)}; runs are paired on them too")
    return {
        "sweep_dir": str(sweep_dir),
        "group_by": keys,
        "metric": metric,
        "metrics": metrics,
        "splits": splits,
        "baseline": base.label if base is not None else None,
        "baseline_choice": base_note,
        "pair_by": pair_keys,
        "groups": summaries,
        "significance": significance,
        "alignment": alignment,
        "missing": [{"job": m.name, "reason": m.reason} for m in missing],
        "notes": notes,
    }
