"""Significance: sacreBLEU's paired bootstrap of each group of a sweep against the baseline group,
one test per pair of runs, per test split.

Why per seed: a run of the system is paired with the baseline run that has the same seed (and
the same value of anything else the sweep varied besides the grouping keys), and sacreBLEU's
paired bootstrap (`PairedTest(test_type="bs")`) resamples the test sentences of that pair. The
report gives the p-value of every pair and how many pairs are significant. Pooling the seeds by
concatenating their outputs would count each test sentence once per seed as if it were an
independent sample and so overstate significance. The bootstrap measures test-set sampling noise
only; the spread between seeds (the std columns) measures training noise, and a difference that
is smaller than that spread is not robust even when every per-seed p-value is small.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mt.evaluation.metrics import nfc_lines, sacrebleu_metric
from mt.report.collect import Job
from mt.report.group import Group, show_value

METRICS = ("bleu", "chrf", "ter")
ALPHA = 0.05
DEFAULT_RESAMPLES = 1000
DEFAULT_BOOTSTRAP_SEED = 12345  # sacreBLEU's own default


@contextmanager
def _sacrebleu_seed(seed: int) -> Iterator[None]:
    """sacreBLEU takes the bootstrap seed from $SACREBLEU_SEED; set it for the duration."""
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = old


def paired_bootstrap(
    baseline_hyps: list[str],
    system_hyps: list[str],
    refs: list[str],
    metric: str = "bleu",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
    lowercase: bool = False,
) -> dict[str, Any]:
    """sacreBLEU's paired bootstrap of one system against one baseline on the same sentences ->
    {baseline, system, delta, p_value, system_ci, signature}; `lowercase` ignores case (when
    either system was trained on lowercased text, see `tokenizer.lowercase`).

    Identical outputs get p = 1: sacreBLEU's test counts resampled differences strictly above
    the observed one, so a zero difference would otherwise come out as p = 1/(n+1). Text is
    scored in Unicode NFC, as by `mt.evaluation.metrics.score_corpus`.
    """
    from sacrebleu.significance import PairedTest

    baseline_hyps, system_hyps, refs = nfc_lines(baseline_hyps), nfc_lines(system_hyps), nfc_lines(refs)

    if not len(baseline_hyps) == len(system_hyps) == len(refs):
        raise ValueError(
            f"{len(baseline_hyps)} baseline, {len(system_hyps)} system lines, {len(refs)} references"
        )
    if seed < 1:
        raise ValueError(f"bootstrap seed must be >= 1 (sacreBLEU treats 0 as 'unseeded'), got {seed}")
    with _sacrebleu_seed(seed):
        test = PairedTest(
            [("baseline", baseline_hyps), ("system", system_hyps)],
            {metric: sacrebleu_metric(metric, lowercase)},
            references=[refs],
            test_type="bs",
            n_samples=n_resamples,
        )
        signatures, scores = test()
    name = next(k for k in scores if k != "System")
    base, system = scores[name]
    p_value = 1.0 if baseline_hyps == system_hyps else float(system.p_value)
    return {
        "baseline": float(base.score),
        "system": float(system.score),
        "delta": float(system.score - base.score),
        "p_value": p_value,
        "system_ci": float(system.ci),
        "signature": str(signatures[name]),
    }


def pair_label(job: Job, pair_keys: list[str]) -> str:
    """What pairs a run with a baseline run, e.g. "seed=2" ("run" when nothing varies)."""
    return ",".join(f"{k}={show_value(job.config.get(k))}" for k in pair_keys) or "run"


def baseline_runs(baseline: Group, pair_keys: list[str], notes: dict[str, None]) -> dict[str, Job]:
    """The baseline's run for each pair label; a second run with the same label is noted, not used."""
    runs: dict[str, Job] = {}
    for job in baseline.jobs:
        label = pair_label(job, pair_keys)
        if label in runs:
            notes[
                f"baseline {baseline.label} has several runs with {label}; only {runs[label].name} is paired"
            ] = None
        else:
            runs[label] = job
    return runs


def compare_to_baseline(
    groups: list[Group],
    baseline: Group,
    splits: list[str],
    pair_keys: list[str],
    metric: str,
    n_resamples: int,
    seed: int,
    progress: bool = False,
) -> dict[str, Any]:
    """Paired bootstrap of every other group against the baseline, per test split and per pair
    of runs that agree on `pair_keys` (the seed, and whatever else varies within groups).

    -> {"comparisons": [{group, split, pairs: [{pair, baseline, system, delta, p_value}],
    delta_mean, significant, tested}], "signature", "notes"}. Pairs that cannot be tested
    (no baseline run with that seed, missing .hyp/.ref files, different references) are left
    out and explained in "notes".
    """
    from tqdm import tqdm

    notes: dict[str, None] = {}
    signature = None
    base_by_pair = baseline_runs(baseline, pair_keys, notes)
    no_ref: dict[str, dict[str, None]] = {}  # split -> runs without outputs/<split>.ref

    def outputs(job: Job, split: str) -> tuple[list[str], list[str]] | None:
        """(hypotheses, references) of a run (read by `collect_jobs`), None (and a note) when a file is missing."""
        hyps, refs = job.outputs.get(split, (None, None))
        if hyps is None:
            notes[f"{job.name}: no outputs/{split}.hyp, so {split} is not tested for this run"] = None
            return None
        if refs is None:
            no_ref.setdefault(split, {})[job.name] = None
            return None
        return hyps, refs

    tasks = [(g, s, j) for g in groups if g is not baseline for s in splits for j in g.jobs]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for group, split, job in tqdm(tasks, desc="paired bootstrap", disable=not progress, leave=False):
        label = pair_label(job, pair_keys)
        base = base_by_pair.get(label)
        if base is None:
            notes[f"{job.name}: no {baseline.label} run with {label} to pair it with"] = None
            continue
        sys_out, base_out = outputs(job, split), outputs(base, split)
        if sys_out is None or base_out is None:
            continue
        if sys_out[1] != base_out[1]:
            notes[f"{job.name} and {base.name} have different {split} references; not compared"] = None
            continue
        if not len(sys_out[0]) == len(base_out[0]) == len(base_out[1]):
            notes[
                f"{job.name} / {base.name}: {split} has {len(sys_out[0])} / {len(base_out[0])} hypotheses "
                f"but {len(base_out[1])} references; not compared"
            ] = None
            continue
        lowercase = any(bool(j.config.get("tokenizer.lowercase", False)) for j in (job, base))
        test = paired_bootstrap(base_out[0], sys_out[0], base_out[1], metric, n_resamples, seed, lowercase)
        signature = test.pop("signature")
        results.setdefault((group.label, split), []).append(
            {"pair": label, "job": job.name, "baseline_job": base.name, **test}
        )

    for split, runs in no_ref.items():
        notes[
            f"significance needs outputs/{split}.ref, which {len(runs)} run(s) lack ({', '.join(runs)}): "
            f"older mt-train runs wrote only .hyp; put the {split} references there, one line per sentence"
        ] = None
    comparisons = []
    for group in groups:
        if group is baseline:
            continue
        for split in splits:
            pairs = results.get((group.label, split), [])
            comparisons.append({
                "group": group.label,
                "split": split,
                "pairs": pairs,
                "tested": len(pairs),
                "significant": sum(p["p_value"] < ALPHA for p in pairs),
                "delta_mean": statistics.fmean(p["delta"] for p in pairs) if pairs else None,
                "max_p": max((p["p_value"] for p in pairs), default=None),
            })  # fmt: skip
    return {"comparisons": comparisons, "signature": signature, "notes": list(notes)}
