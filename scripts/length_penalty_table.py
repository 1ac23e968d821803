#!/usr/bin/env python
"""Validation BLEU of finished runs' best.pt under several beam-search length penalties
(GNMT alpha, `length_penalty=A` of mt-evaluate): the length setting chosen where settings are
chosen, on validation, for every run at once.

    python scripts/length_penalty_table.py runs/directions/* --alphas 1.0 1.5 2.0 --json lp.json

Each run's `checkpoints/best.pt` is decoded by `mt-evaluate splits=[validation]` with the run's
own search settings but the length penalty, into WORKDIR/<run name>/a<alpha> (default
RUN/length_penalty); a result already there is read back. Printed per run: BLEU and its
brevity penalty for each alpha, and the change against the first alpha; then the mean change
over the runs, the figure a default is chosen on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling averaging_table

from averaging_table import evaluate  # noqa: E402


def sweep(run: Path, alphas: list[float], work: Path) -> dict[str, dict[str, float]]:
    """alpha -> validation BLEU, its brevity penalty and tok-lc BLEU, for one run's best.pt."""
    best = run / "checkpoints" / "best.pt"
    if not best.is_file():
        sys.exit(f"{run}: no checkpoints/best.pt; give finished mt-train runs")
    rows = {}
    for a in alphas:
        res: dict[str, Any] = evaluate(work, f"a{a}", [best], ["validation"], [f"length_penalty={a}"])
        v = res["test"]["validation"]
        assert v["search"]["length_penalty"] == a, f"{work}/a{a} was decoded with another length penalty"
        rows[str(a)] = {
            "bleu": round(v["bleu"]["score"], 2),
            "bp": v["bleu"]["bp"],
            "tok_lc": round(v["bleu_tok_lc"]["score"], 2),
        }
    return rows


def markdown(table: dict[str, dict[str, dict[str, float]]], alphas: list[float]) -> str:
    first = str(alphas[0])
    lines = [
        "| run | " + " | ".join(f"alpha {a}: BLEU (BP)" for a in alphas) + " |",
        "|---" * (len(alphas) + 1) + "|",
    ]
    for name, rows in table.items():
        base = rows[first]["bleu"]
        cells = []
        for a in alphas:
            r = rows[str(a)]
            change = "" if str(a) == first else f" {r['bleu'] - base:+.2f}"
            cells.append(f"{r['bleu']:.2f} ({r['bp']:.3f}){change}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = [sum(r[str(a)]["bleu"] - r[first]["bleu"] for r in table.values()) / len(table) for a in alphas]
    lines.append("| mean change | " + " | ".join(f"{m:+.2f}" for m in means) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="finished mt-train runs")
    ap.add_argument(
        "--alphas", type=float, nargs="+", default=[1.0, 1.5, 2.0], help="the first is the baseline"
    )
    ap.add_argument("--workdir", type=Path, default=None, help="default RUN/length_penalty per run")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    table = {}
    for run in a.runs:
        run = run.resolve()
        work = (a.workdir / run.name if a.workdir else run / "length_penalty").resolve()
        work.mkdir(parents=True, exist_ok=True)
        table[run.name] = sweep(run, a.alphas, work)
    print(markdown(table, a.alphas), end="")
    if a.json:
        a.json.write_text(json.dumps({"alphas": a.alphas, "runs": table}, indent=1))


if __name__ == "__main__":
    main()
