"""The comparison report over a Hydra multirun sweep (`mt-report`): `collect` reads the jobs'
results, `group` groups them, `stats`, `significance` (BLEU) and `alignment`, `aer_significance` (AER)
give mean ± std and paired bootstraps, `build` assembles the report, `render` writes md/JSON/plot.
"""

from mt.report.aer_significance import compare_aer_to_baseline, paired_bootstrap_aer
from mt.report.alignment import ALIGNMENT_FILE, JobAlignment, aer_summary, collect_alignments, read_alignment
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
    "ALIGNMENT_FILE",
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
    "JobAlignment",
    "Missing",
    "ReportError",
    "aer_summary",
    "bar_plot",
    "build_report",
    "collect_alignments",
    "collect_jobs",
    "compare_aer_to_baseline",
    "compare_to_baseline",
    "drop_redundant",
    "flatten",
    "fmt_stat",
    "group_jobs",
    "group_summary",
    "paired_bootstrap",
    "paired_bootstrap_aer",
    "pick_baseline",
    "read_alignment",
    "render_markdown",
    "resolve_group_keys",
    "split_names",
    "summarize",
    "varying_keys",
    "write_report",
]
