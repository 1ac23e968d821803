"""Significance of AER differences: a paired bootstrap over the gold sentences of each run against
the baseline run of the same seed, as `mt.report.significance` does for BLEU.

The test is sacreBLEU's paired bootstrap (`_paired_bs_test`) with AER in place of BLEU: the same
resamples (numpy `default_rng(seed).choice(n, (n_resamples, n))`, seed and number of resamples
as for BLEU), corpus AER recomputed for both runs from the summed per-sentence counts of each
resample (`mt.evaluation.aer.scores_of_counts`: AER is a ratio of sums), and the same p-value:
the share of resampled |Δ| that, centred on their mean, exceed the observed |Δ| ((c + 1)/(n + 1)),
with p = 1 for identical counts. The test is two-sided; the sign of Δ = system − baseline says
which way: lower AER is better, so a negative Δ is an improvement.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from mt.evaluation.aer import scores_of_counts
from mt.report.alignment import AER_NAMES, AER_SCOPES, Counts, JobAlignment
from mt.report.group import Group
from mt.report.significance import ALPHA, baseline_runs, pair_label


def _aer_of_resamples(counts: Counts, idxs: np.ndarray) -> np.ndarray:
    """Corpus AER of each resample (a row of sentence indices), from the summed counts."""
    sums = np.asarray(counts, dtype=np.int64)[idxs].sum(axis=1)  # (n_resamples, fields)
    return np.array([scores_of_counts([row.tolist()])["aer"] for row in sums])


def paired_bootstrap_aer(
    baseline_counts: Counts, system_counts: Counts, n_resamples: int, seed: int
) -> dict[str, Any]:
    """Paired bootstrap of one system's AER against a baseline's on the same gold sentences ->
    {baseline, system, delta, p_value}, AER in % and delta = system − baseline (negative: better)."""
    n = len(baseline_counts)
    if n != len(system_counts):
        raise ValueError(f"{n} baseline and {len(system_counts)} system sentences")
    if n == 0:
        raise ValueError("no sentences to resample")
    base = scores_of_counts(baseline_counts)["aer"]
    system = scores_of_counts(system_counts)["aer"]
    if [tuple(r) for r in baseline_counts] == [tuple(r) for r in system_counts]:
        p_value = 1.0  # as for BLEU: a zero difference is not attributed to chance
    else:
        idxs = np.random.default_rng(seed).choice(n, size=(n_resamples, n), replace=True)
        sample_diffs = np.abs(
            _aer_of_resamples(system_counts, idxs) - _aer_of_resamples(baseline_counts, idxs)
        )
        stats = sample_diffs - sample_diffs.mean()
        p_value = (int(np.sum(stats > abs(system - base))) + 1) / (n_resamples + 1)
    return {
        "baseline": 100.0 * base,
        "system": 100.0 * system,
        "delta": 100.0 * (system - base),
        "p_value": float(p_value),
    }


def _same_gold(a: Counts, b: Counts) -> bool:
    """Whether two runs' sure and possible links (fixed by the gold set) agree sentence by sentence."""
    return [(r[1], r[4]) for r in a] == [(r[1], r[4]) for r in b]


def compare_aer_to_baseline(
    groups: list[Group],
    baseline: Group,
    alignments: dict[str, JobAlignment],
    pair_keys: list[str],
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Paired bootstrap of every other group's AER (all links and in-vocabulary) against the
    baseline, per pair of runs that agree on `pair_keys`, as `compare_to_baseline` does for BLEU.

    -> {"comparisons": [{group, scope, pairs: [{pair, job, baseline_job, baseline, system, delta,
    p_value}], tested, significant, lower, higher, delta_mean, max_p}], "notes"}. Pairs scored on
    different gold sets, or without counts, are left out and explained in "notes".
    """
    notes: dict[str, None] = {}
    base_by_pair = baseline_runs(baseline, pair_keys, notes)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for group in groups:
        if group is baseline:
            continue
        for job in group.jobs:
            system = alignments.get(job.name)
            if system is None:
                continue
            label = pair_label(job, pair_keys)
            base_job = base_by_pair.get(label)
            base = alignments.get(base_job.name) if base_job is not None else None
            if base is None:
                why = "has no AER" if base_job is not None else "does not exist"
                notes[f"{job.name}: AER not tested, the {baseline.label} run with {label} {why}"] = None
                continue
            if system.counts is None or base.counts is None:
                lacking = job.name if system.counts is None else base_job.name
                notes[f"{lacking}/alignment.json has no sentence_counts, so its AER is not tested"] = None
                continue
            sys_all, base_all = system.counts["aer"], base.counts["aer"]
            if len(sys_all) != len(base_all) or not _same_gold(sys_all, base_all):
                size = f"{len(sys_all)} and {len(base_all)} sentences" if len(sys_all) != len(base_all) else (
                    "the same number of sentences but different sure/possible links")  # fmt: skip
                notes[
                    f"{job.name} and {base_job.name} were scored on different gold sets ({size}); "
                    f"AER not compared: score both with the same mt-align gold=FILE"
                ] = None
                continue
            for key in AER_SCOPES:
                if key != "aer" and not _same_gold(system.counts[key], base.counts[key]):
                    notes[
                        f"{job.name} and {base_job.name} filter the gold links by different training "
                        f"vocabularies; their {AER_NAMES[key]} is not compared"
                    ] = None
                    continue
                test = paired_bootstrap_aer(base.counts[key], system.counts[key], n_resamples, seed)
                results.setdefault((group.label, key), []).append(
                    {"pair": label, "job": job.name, "baseline_job": base_job.name, **test}
                )
    comparisons = []
    for group in groups:
        if group is baseline:
            continue
        for key in AER_SCOPES:
            pairs = results.get((group.label, key), [])
            significant = [p for p in pairs if p["p_value"] < ALPHA]
            comparisons.append({
                "group": group.label,
                "scope": key,
                "pairs": pairs,
                "tested": len(pairs),
                "significant": len(significant),
                "lower": sum(p["delta"] < 0 for p in significant),
                "higher": sum(p["delta"] > 0 for p in significant),
                "delta_mean": statistics.fmean(p["delta"] for p in pairs) if pairs else None,
                "max_p": max((p["p_value"] for p in pairs), default=None),
            })  # fmt: skip
    return {"comparisons": comparisons, "notes": list(notes)}
