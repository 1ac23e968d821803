"""The comparison report over a Hydra multirun sweep: collect every job's `results.json`, group
the jobs (by attention mechanism, or whatever else the sweep varied), and summarise each group
as mean ± sample std over its seeds, a bar plot, and sacreBLEU's paired bootstrap test of each
group against a baseline group.

A sweep directory holds one sub-directory per job (`model.attention=luong_dot,seed=2/`) with
`results.json` and `outputs/<split>.hyp` / `outputs/<split>.ref`. Unfinished jobs (no
`results.json`) are listed, not fatal.

Significance, and why it is done per seed: a run of the system is paired with the baseline run
that has the same seed (and the same value of anything else the sweep varied besides the
grouping keys), and sacreBLEU's paired bootstrap (`PairedTest(test_type="bs")`) resamples the
test sentences of that pair. The report gives the p-value of every pair and how many pairs are
significant. Pooling the seeds by concatenating their outputs would count each test sentence
once per seed as if it were an independent sample and so overstate significance. The
bootstrap measures test-set sampling noise only; the spread between seeds (the std columns)
measures training noise, and a difference that is smaller than that spread is not robust
even when every per-seed p-value is small.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRICS = ("bleu", "chrf", "ter")
METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER", "bleu_tok_lc": "BLEU(tok,lc)"}
SEED_KEY = "seed"
MECHANISM_KEY = "model.attention.name"
DEFAULT_BASELINES = {MECHANISM_KEY: "bahdanau"}
ALPHA = 0.05
DEFAULT_RESAMPLES = 1000
DEFAULT_BOOTSTRAP_SEED = 12345  # sacreBLEU's own default


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


@dataclass
class Group:
    """The jobs that share the values of the grouping keys."""

    label: str
    values: dict[str, Any]
    jobs: list[Job] = field(default_factory=list)


# ---------------------------------------------------------------- collecting


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
            results = json.loads(results_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            missing.append(Missing(path.name, f"unreadable results.json ({e})"))
            continue
        if not isinstance(results, dict) or not isinstance(results.get("config"), dict):
            missing.append(Missing(path.name, "results.json has no 'config' (not written by mt-train)"))
            continue
        jobs.append(Job(path.name, path, results, flatten(results["config"])))
    return jobs, missing


# ---------------------------------------------------------------- grouping


def _key(value: Any) -> str:
    """A hashable, comparable form of a config value."""
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    """A config value as people write it in overrides."""
    return value if isinstance(value, str) else _key(value)


def varying_keys(jobs: list[Job]) -> list[str]:
    """Config keys whose value is not the same in every job (a key absent from a job counts)."""
    keys = sorted({k for job in jobs for k in job.config})
    return [k for k in keys if len({_key(job.config.get(k)) for job in jobs}) > 1]


def _partition(jobs: list[Job], keys: list[str]) -> set[frozenset[str]]:
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
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (1, 0.0, _show(value))
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
            _show(values[keys[0]])
            if len(keys) == 1
            else ",".join(f"{short[k]}={_show(v)}" for k, v in values.items())
        )
        groups.setdefault(label, Group(label, values)).jobs.append(job)
    return sorted(groups.values(), key=lambda g: [_sort_key(g.values[k]) for k in keys])


def pick_baseline(groups: list[Group], keys: list[str], baseline: str | None) -> tuple[Group | None, str]:
    """The baseline group and a note on how it was chosen.

    An explicit `baseline` must match a group label, or exactly one group's value of a grouping
    key; otherwise a ReportError lists the groups. Without one: the key's default (`bahdanau`
    for the attention mechanism) when present, else the first group.
    """
    if len(groups) < 2:
        return None, "one group only: nothing to compare"

    def matches(value: str) -> list[Group]:
        exact = [g for g in groups if g.label == value]
        return exact or [g for g in groups if any(_show(v) == value for v in g.values.values())]

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
            if len(found) == 1:
                return found[0], f"default for {key}"
            return groups[0], (
                f"{DEFAULT_BASELINES[key]!r} (the default for {key}) is not in the sweep; "
                f"compared against the first group instead (choose with --baseline)"
            )
    return groups[0], "first group (choose with --baseline)"


# ---------------------------------------------------------------- summaries


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


def split_names(jobs: list[Job]) -> list[str]:
    """Test split names in the order the jobs list them."""
    seen: dict[str, None] = {}
    for job in jobs:
        for split in job.results.get("test") or {}:
            seen.setdefault(split, None)
    return list(seen)


def group_summary(group: Group, splits: list[str], metrics: list[str]) -> dict[str, Any]:
    """Mean ± std over the group's runs of each metric on validation and each test split, and
    of the training minutes."""

    def collect(get) -> dict[str, Any]:
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


# ---------------------------------------------------------------- significance


def _read_lines(path: Path) -> list[str]:
    """A file written as "\\n".join(lines) + "\\n" -> lines (empty lines kept)."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


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


def _sacrebleu_metric(metric: str):
    from sacrebleu.metrics import BLEU, CHRF, TER

    return {"bleu": BLEU, "chrf": CHRF, "ter": TER}[metric]()


def paired_bootstrap(
    baseline_hyps: list[str],
    system_hyps: list[str],
    refs: list[str],
    metric: str = "bleu",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """sacreBLEU's paired bootstrap of one system against one baseline on the same sentences ->
    {baseline, system, delta, p_value, system_ci, signature}.

    Identical outputs get p = 1: sacreBLEU's test counts resampled differences strictly above
    the observed one, so a zero difference would otherwise come out as p = 1/(n+1).
    """
    from sacrebleu.significance import PairedTest

    if not len(baseline_hyps) == len(system_hyps) == len(refs):
        raise ValueError(
            f"{len(baseline_hyps)} baseline, {len(system_hyps)} system lines, {len(refs)} references"
        )
    if seed < 1:
        raise ValueError(f"bootstrap seed must be >= 1 (sacreBLEU treats 0 as 'unseeded'), got {seed}")
    with _sacrebleu_seed(seed):
        test = PairedTest(
            [("baseline", baseline_hyps), ("system", system_hyps)],
            {metric: _sacrebleu_metric(metric)},
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


def _pair_label(job: Job, pair_keys: list[str]) -> str:
    return ",".join(f"{k}={_show(job.config.get(k))}" for k in pair_keys) or "run"


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
    base_by_pair: dict[str, Job] = {}
    for job in baseline.jobs:
        label = _pair_label(job, pair_keys)
        if label in base_by_pair:
            notes[
                f"baseline {baseline.label} has several runs with {label}; only {base_by_pair[label].name} is paired"
            ] = None
        else:
            base_by_pair[label] = job
    no_ref: dict[str, dict[str, None]] = {}  # split -> runs without outputs/<split>.ref
    read: dict[tuple[str, str], tuple[list[str], list[str]] | None] = {}

    def outputs(job: Job, split: str) -> tuple[list[str], list[str]] | None:
        """(hypotheses, references) of a run, None (and a note) when a file is missing."""
        if (job.name, split) not in read:
            hyp, ref = job.path / "outputs" / f"{split}.hyp", job.path / "outputs" / f"{split}.ref"
            if not hyp.is_file():
                notes[f"{job.name}: no outputs/{split}.hyp, so {split} is not tested for this run"] = None
                read[job.name, split] = None
            elif not ref.is_file():
                no_ref.setdefault(split, {})[job.name] = None
                read[job.name, split] = None
            else:
                read[job.name, split] = (_read_lines(hyp), _read_lines(ref))
        return read[job.name, split]

    tasks = [(g, s, j) for g in groups if g is not baseline for s in splits for j in g.jobs]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for group, split, job in tqdm(tasks, desc="paired bootstrap", disable=not progress, leave=False):
        label = _pair_label(job, pair_keys)
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
        test = paired_bootstrap(base_out[0], sys_out[0], base_out[1], metric, n_resamples, seed)
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


# ---------------------------------------------------------------- the report


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
        found = (
            f"; {len(missing)} job directories have none yet: {', '.join(m.name for m in missing)}"
            if missing
            else ""
        )
        raise ReportError(
            f"no finished jobs in {sweep_dir}: expected <job>/results.json files written by "
            f"`mt-train -m ... hydra.sweep.dir={sweep_dir}`{found}"
        )
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
            "method": "sacreBLEU paired bootstrap (PairedTest, test_type='bs'), per seed",
            "metric": metric, "n_resamples": n_resamples, "bootstrap_seed": bootstrap_seed, "alpha": ALPHA,
        })  # fmt: skip
    notes = []
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
        "missing": [{"job": m.name, "reason": m.reason} for m in missing],
        "notes": notes,
    }


def fmt_stat(stat: dict[str, Any]) -> str:
    """{mean, std, n} -> "38.67 ± 0.42" ("38.67" for one run, "–" for none)."""
    if stat["mean"] is None:
        return "–"
    return f"{stat['mean']:.2f}" if stat["std"] is None else f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def _fmt_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.0005 else f"{p:.1e}"


def _cell(stat: dict[str, Any], n_group: int) -> str:
    text = fmt_stat(stat)
    return text if stat["n"] in (0, n_group) else f"{text} (n={stat['n']})"


def render_markdown(report: dict[str, Any]) -> str:
    """The report as markdown: a table per metric, the significance table, missing jobs, notes."""
    by = ", ".join(report["group_by"]) or "group"
    splits = report["splits"]
    base = report["baseline"]
    lines = [f"# Sweep report: {report['sweep_dir']}", ""]
    n_jobs = sum(g["n"] for g in report["groups"])
    lines.append(
        f"{n_jobs} finished jobs in {len(report['groups'])} groups by `{by}`"
        + (f", {len(report['missing'])} not included (see below)" if report["missing"] else "")
        + ". Cells are mean ± sample standard deviation (n−1) over the runs of a group; n = runs."
    )
    lines.append("")
    for metric in report["metrics"]:
        name = METRIC_NAMES[metric]
        lines += [f"## {name}", ""]
        header = [by, "n", "valid", *splits] + (["train min"] if metric == report["metric"] else [])
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for g in report["groups"]:
            label = f"{g['name']} (baseline)" if g["name"] == base else g["name"]
            cells = [label, str(g["n"]), _cell(g["valid"][metric], g["n"])]
            cells += [_cell(g["test"][s][metric], g["n"]) for s in splits]
            if metric == report["metric"]:
                cells.append(_cell(g["train_minutes"], g["n"]))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    sig = report["significance"]
    if sig is not None:
        name = METRIC_NAMES[sig["metric"]]
        lines += [f"## Paired bootstrap against {base} ({name})", ""]
        pair = ", ".join(report["pair_by"]) or "run"
        lines.append(
            f"Each run is compared with the {base} run of the same {pair} on the same test sentences "
            f"(sacreBLEU paired bootstrap, {sig['n_resamples']} resamples, seed {sig['bootstrap_seed']}); "
            f"one p-value per {pair}, not pooled: concatenating the seeds' outputs would count every test "
            f"sentence once per seed as an independent sample and overstate significance. The bootstrap "
            f"covers test-set sampling only; compare Δ with the std columns for the spread between seeds. "
            f"Δ is the mean over the pairs of the scores recomputed from outputs/*.hyp."
        )
        lines.append("")
        lines.append(f"| {by} | split | Δ {name} (mean) | p per {pair} | p < {sig['alpha']} |")
        lines.append("|---|---|---:|---|---:|")
        for c in sig["comparisons"]:
            if c["tested"]:
                delta = f"{c['delta_mean']:+.2f}"
                ps = ", ".join(f"{p['pair']}: {_fmt_p(p['p_value'])}" for p in c["pairs"])
                count = f"{c['significant']}/{c['tested']}"
            else:
                delta, ps, count = "–", "not tested (see notes)", "–"
            lines.append(f"| {c['group']} | {c['split']} | {delta} | {ps} | {count} |")
        lines.append("")
        if sig["signature"]:
            lines += [f"sacreBLEU signature: `{sig['signature']}`", ""]
    elif base is None:
        lines += ["## Paired bootstrap", "", "Not run: the sweep has one group only.", ""]
    else:
        lines += ["## Paired bootstrap", "", "Not run: the results have no test splits.", ""]
    if report["missing"]:
        lines += ["## Not included", ""]
        lines += [f"- `{m['job']}`: {m['reason']}" for m in report["missing"]]
        lines.append("")
    notes = [f"baseline: {base} ({report['baseline_choice']})"] if base else []
    notes += report["notes"] + (sig["notes"] if sig else [])
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def bar_plot(report: dict[str, Any], path: Path) -> Path:
    """Bars of the mean score per group for each test split (validation when there are none),
    with sample-std error bars; written as PNG."""
    import matplotlib
    from matplotlib.figure import Figure

    metric = report["metric"]
    name = METRIC_NAMES[metric]
    groups = report["groups"]
    splits = report["splits"] or ["valid"]

    def stat(g: dict[str, Any], split: str) -> dict[str, Any]:
        return g["valid"][metric] if split == "valid" and not report["splits"] else g["test"][split][metric]

    width = 0.8 / max(1, len(groups))
    fig = Figure(figsize=(max(6.0, 1.5 + len(splits) * (0.45 * len(groups) + 0.8)), 4.8), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    cmap = matplotlib.colormaps["tab10" if len(groups) <= 10 else "tab20"]
    top = 0.0
    for i, g in enumerate(groups):
        stats = [stat(g, s) for s in splits]
        means = [s["mean"] if s["mean"] is not None else math.nan for s in stats]
        stds = [s["std"] or 0.0 for s in stats]
        xs = [j + (i - (len(groups) - 1) / 2) * width for j in range(len(splits))]
        label = f"{g['name']} (baseline)" if g["name"] == report["baseline"] else g["name"]
        ax.bar(
            xs,
            means,
            width * 0.92,
            yerr=stds,
            capsize=3,
            label=f"{label}, n={g['n']}",
            color=cmap(i % cmap.N),
        )
        for x, m, s in zip(xs, means, stds, strict=True):
            if not math.isnan(m):
                top = max(top, m + s)
                if len(groups) <= 8:
                    ax.text(x, m + s, f"{m:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(splits)))
    ax.set_xticklabels(
        splits, rotation=15 if len(splits) > 3 else 0, ha="right" if len(splits) > 3 else "center"
    )
    ax.set_ylabel(f"{name} (mean ± std over seeds)")
    ax.set_ylim(0, top * 1.12 if top > 0 else 1)
    ax.set_title(f"{name} by {', '.join(report['group_by']) or 'group'}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """report.md, report.json and <metric>_by_group.png in `out_dir` -> {kind: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(render_markdown(report), encoding="utf-8")
    js = out_dir / "report.json"
    js.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    png = bar_plot(report, out_dir / f"{report['metric']}_by_group.png")
    return {"markdown": md, "json": js, "plot": png}
