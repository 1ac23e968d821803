"""The comparison report over a Hydra multirun sweep (`mt-report`): `collect` reads the jobs'
results, `group` groups them and picks the baseline, `stats` and `significance` give mean ± std
and sacreBLEU's paired bootstrap, `build` assembles the report and `render` writes md/JSON/plot.
"""

from mt.report.build import build_report
from mt.report.collect import Job, Missing, ReportError, collect_jobs, flatten, split_names
from mt.report.group import (
    DEFAULT_BASELINES,
    MECHANISM_KEY,
    SEED_KEY,
    Group,
    drop_redundant,
    group_jobs,
    pick_baseline,
    resolve_group_keys,
    varying_keys,
)
from mt.report.render import METRIC_NAMES, bar_plot, fmt_stat, render_markdown, write_report
from mt.report.significance import (
    ALPHA,
    DEFAULT_BOOTSTRAP_SEED,
    DEFAULT_RESAMPLES,
    METRICS,
    compare_to_baseline,
    paired_bootstrap,
)
from mt.report.stats import group_summary, summarize

__all__ = [
    "ALPHA",
    "DEFAULT_BASELINES",
    "DEFAULT_BOOTSTRAP_SEED",
    "DEFAULT_RESAMPLES",
    "MECHANISM_KEY",
    "METRICS",
    "METRIC_NAMES",
    "SEED_KEY",
    "Group",
    "Job",
    "Missing",
    "ReportError",
    "bar_plot",
    "build_report",
    "collect_jobs",
    "compare_to_baseline",
    "drop_redundant",
    "flatten",
    "fmt_stat",
    "group_jobs",
    "group_summary",
    "paired_bootstrap",
    "pick_baseline",
    "render_markdown",
    "resolve_group_keys",
    "split_names",
    "summarize",
    "varying_keys",
    "write_report",
]
