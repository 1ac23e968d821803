"""Rendering a sweep report (the data `build_report` returns): the markdown tables (AER beside BLEU
when jobs have an alignment.json), the bar plot of the mean score per group, and the files
report.md, report.json and <metric>_by_group.png.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mt.io import atomic_write, atomic_write_text, write_json
from mt.report.alignment import AER_NAMES

AER_LEGEND = (
    "AER: alignment error rate of the attention against the gold alignments in each run's "
    "alignment.json, in %, lower is better; in-voc: links whose two words occur in the training text."
)
METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER", "bleu_tok_lc": "BLEU(tok,lc)"}


def fmt_stat(stat: dict[str, Any]) -> str:
    """{mean, std, n} -> "38.67 ± 0.42" ("38.67" for one run, "–" for none)."""
    if stat["mean"] is None:
        return "–"
    return f"{stat['mean']:.2f}" if stat["std"] is None else f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def _fmt_p(p: float) -> str:
    """A p-value with three decimals, in scientific notation below 0.0005."""
    return f"{p:.3f}" if p >= 0.0005 else f"{p:.1e}"


def _cell(stat: dict[str, Any], n_group: int) -> str:
    """A table cell: the summary, with its n when it covers fewer runs than the group has."""
    text = fmt_stat(stat)
    return text if stat["n"] in (0, n_group) else f"{text} (n={stat['n']})"


def _aer_significance(sig: dict[str, Any], base: str, by: str, pair: str) -> list[str]:
    """The markdown section of the paired bootstrap of AER against the baseline."""
    lines = [f"## Paired bootstrap of AER against {base}", ""]
    lines.append(
        f"Each run's AER is compared with the {base} run of the same {pair} on the same gold sentences "
        f"({sig['n_resamples']} resamples of the sentences, seed {sig['bootstrap_seed']}, corpus AER recomputed "
        f"from the resampled link counts; sacreBLEU's p-value, as for BLEU). Lower AER is better: "
        f"Δ = run − {base} in AER points, negative when the run aligns better."
    )
    lines.append("")
    lines.append(f"| {by} | AER | Δ AER (mean) | p per {pair} | p < {sig['alpha']} | of which lower AER |")
    lines.append("|---|---|---:|---|---:|---:|")
    for c in sig["comparisons"]:
        name = AER_NAMES[c["scope"]]
        if c["tested"]:
            delta = f"{c['delta_mean']:+.2f}"
            ps = ", ".join(f"{p['pair']}: {_fmt_p(p['p_value'])}" for p in c["pairs"])
            count, lower = f"{c['significant']}/{c['tested']}", f"{c['lower']}/{c['significant']}"
        else:
            delta, ps, count, lower = "–", "not tested (see notes)", "–", "–"
        lines.append(f"| {c['group']} | {name} | {delta} | {ps} | {count} | {lower} |")
    return lines + [""]


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
    aer_columns = report["alignment"]["columns"] if report.get("alignment") else []
    for metric in report["metrics"]:
        name = METRIC_NAMES[metric]
        lines += [f"## {name}", ""]
        aer = aer_columns if metric == "bleu" else []
        header = [by, "n", "valid", *splits] + [f"{AER_NAMES[k]} % ↓" for k in aer]
        header += ["train min"] if metric == report["metric"] else []
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for g in report["groups"]:
            label = f"{g['name']} (baseline)" if g["name"] == base else g["name"]
            cells = [label, str(g["n"]), _cell(g["valid"][metric], g["n"])]
            cells += [_cell(g["test"][s][metric], g["n"]) for s in splits]
            cells += [_cell(g["alignment"][k], g["n"]) for k in aer]
            if metric == report["metric"]:
                cells.append(_cell(g["train_minutes"], g["n"]))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if aer:
            lines += [AER_LEGEND, ""]
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
    aer_sig = (report.get("alignment") or {}).get("significance")
    if aer_sig is not None:
        lines += _aer_significance(aer_sig, base, by, ", ".join(report["pair_by"]) or "run")
    if report["missing"]:
        lines += ["## Not included", ""]
        lines += [f"- `{m['job']}`: {m['reason']}" for m in report["missing"]]
        lines.append("")
    notes = [f"baseline: {base} ({report['baseline_choice']})"] if base else []
    notes += report["notes"] + (sig["notes"] if sig else []) + (aer_sig["notes"] if aer_sig else [])
    notes = list(dict.fromkeys(notes))  # the BLEU and AER tests may note the same pairing problem
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
    return atomic_write(path, lambda f: fig.savefig(f, format="png", bbox_inches="tight"))


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """report.md, report.json and <metric>_by_group.png in `out_dir` -> {kind: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    atomic_write_text(md, render_markdown(report))
    js = out_dir / "report.json"
    write_json(js, report)
    png = bar_plot(report, out_dir / f"{report['metric']}_by_group.png")
    return {"markdown": md, "json": js, "plot": png}
