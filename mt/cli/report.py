"""`mt-report SWEEP_DIR`: the comparison report over a Hydra multirun sweep.

    mt-train -m experiment=attention_comparison hydra.sweep.dir=multirun/cmp
    mt-report multirun/cmp                          # groups by what the sweep varied, baseline bahdanau
    mt-report multirun/cmp --by model.attention.name --baseline luong_general --bootstrap 2000
    mt-report multirun/lr --by optim.lr --baseline 0.001 --out reports/lr

Writes report.md (a table of mean ± std over seeds per group and test split, and the paired
bootstrap of each group against the baseline), report.json (the same numbers) and
<metric>_by_group.png into SWEEP_DIR (or --out), and prints the markdown. Jobs with an
alignment.json (training with alignment.gold, or `mt-align ... gold=FILE results=JOB/alignment.json`)
add AER and in-vocabulary AER columns (%, lower is better) beside BLEU and a paired bootstrap of AER
over the gold sentences. Jobs that are unfinished or cannot be used (results.json malformed,
unreadable or with a score that is not a finite number; an outputs/*.hyp or .ref file that is
unreadable or not UTF-8) are listed under "Not included" with the file and the reason; a
malformed alignment.json is a note (that run has no AER). Neither is fatal. Exit code 2 with
one `error:` line when no job can be reported, or for options that cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mt.report.build import build_report
from mt.report.collect import ReportError
from mt.report.render import render_markdown, write_report
from mt.report.significance import DEFAULT_BOOTSTRAP_SEED, DEFAULT_RESAMPLES, METRICS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of mt-report."""
    p = argparse.ArgumentParser(
        prog="mt-report",
        description="Compare the jobs of a Hydra multirun sweep: mean ± std over seeds, a bar plot, "
        "and sacreBLEU's paired bootstrap of each group against a baseline; AER beside BLEU for jobs "
        "with an alignment.json.",
    )
    p.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="the sweep directory (hydra.sweep.dir)")
    p.add_argument("--out", type=Path, default=None, help="where to write the report (default: SWEEP_DIR)")
    p.add_argument(
        "--by",
        default=None,
        metavar="KEY",
        help="dotted config path(s) to group by, comma-separated (default: every config value that "
        "differs between jobs except seed), e.g. model.attention.name",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="VALUE",
        help="the group the others are tested against (default: bahdanau when grouping by "
        "model.attention.name, else the first group)",
    )
    p.add_argument(
        "--metric", default="bleu", choices=METRICS, help="metric of the plot and the test (default bleu)"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        metavar="N",
        help="bootstrap resamples (default %(default)s)",
    )
    p.add_argument(
        "--bootstrap-seed",
        type=int,
        default=DEFAULT_BOOTSTRAP_SEED,
        metavar="S",
        help="seed of the bootstrap resampling (default %(default)s, sacreBLEU's)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build, write and print the report; exit code 2 with one message when it cannot."""
    args = parse_args(argv)
    try:
        report = build_report(
            args.sweep_dir,
            by=args.by,
            baseline=args.baseline,
            metric=args.metric,
            n_resamples=args.bootstrap,
            bootstrap_seed=args.bootstrap_seed,
            progress=sys.stderr.isatty(),
        )
        paths = write_report(report, args.out or args.sweep_dir)
    except ReportError as e:
        print(f"mt-report: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(
            f"mt-report: error: cannot write the report ({e}); choose a writable --out DIR", file=sys.stderr
        )
        sys.exit(2)
    print(render_markdown(report))
    n_jobs = sum(g["n"] for g in report["groups"])
    aer = f", {report['alignment']['runs']} with AER" if report["alignment"] else ""
    print(
        f"mt-report: {n_jobs} jobs in {len(report['groups'])} groups{aer}, {len(report['missing'])} not included; "
        f"wrote {paths['markdown']}, {paths['json'].name}, {paths['plot'].name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
