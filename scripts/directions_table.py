#!/usr/bin/env python
"""One table of finished runs, one row per translation direction: docs/results.md's table of
every Multi30k direction.

    for pair in de-en en-de fr-en en-fr cs-en en-cs; do
      mt-train data.src_lang=${pair%-*} data.tgt_lang=${pair#*-} hydra.run.dir=runs/directions/$pair
    done
    python scripts/directions_table.py runs/directions/* > table.md
    python scripts/directions_table.py runs/directions/* --json table.json
    python scripts/directions_table.py docs/results/directions/*.json   # the copies kept in docs/

Per run (its results.json): updates and epochs, wall minutes (of its last process: a resumed
run also shows its minutes of training in all), and for each test split sacreBLEU,
chrF and `bleu_tok_lc` (Moses-tokenized lowercased BLEU, the protocol of published Multi30k
results), beside the published attentive-GRU figure where one exists. A split a direction does
not have (test_2017_flickr for Czech) is shown as "-". A run trained on lowercased text
(`tokenizer.lowercase=true`) is marked "(lowercased)": its BLEU and chrF ignore case. A folder without results.json is
named on standard error and left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SPLITS = ("test_2016_flickr", "test_2017_flickr")
# Attentive GRU models on test_2016_flickr, bleu_tok_lc protocol: nmtpytorch (LIUM), Caglayan
# et al. 2017, as quoted by issue 18.
PUBLISHED = {("en", "de"): 39.0, ("en", "fr"): 59.0}
ORDER = [("de", "en"), ("en", "de"), ("fr", "en"), ("en", "fr"), ("cs", "en"), ("en", "cs")]


def row(run_dir: Path) -> dict[str, Any] | None:
    """The figures of one finished run (its folder, or a copy of its results.json), or None
    (named on stderr) without results.json."""
    path = run_dir if run_dir.is_file() else run_dir / "results.json"
    if not path.is_file():
        print(f"{run_dir}: no results.json (unfinished?); left out", file=sys.stderr)
        return None
    r = json.loads(path.read_text())
    data = r["config"]["data"]
    pair = (data["src_lang"], data["tgt_lang"])
    lowercased = bool(r["config"].get("tokenizer", {}).get("lowercase", False))
    out: dict[str, Any] = {
        "run": str(run_dir),
        "direction": f"{pair[0]}->{pair[1]}" + (" (lowercased)" if lowercased else ""),
        "lowercase": lowercased,
        "pair": pair,
        "updates": r["train"]["steps"],
        "epochs": round(r["train"]["epochs"], 1),
        "wall_minutes": r["wall_minutes"],
        "train_minutes": r["train"].get("train_minutes"),
        "published_tok_lc": PUBLISHED.get(pair),
        "signature": None,
    }
    for split in SPLITS:
        s = r["test"].get(split)
        out[split] = None if s is None else {
            "bleu": s["bleu"]["score"], "chrf": s["chrf"]["score"], "bleu_tok_lc": s["bleu_tok_lc"]["score"]
        }  # fmt: skip
        if s is not None:
            out["signature"] = s["bleu"]["signature"]
    return out


def cell(scores: dict[str, float] | None) -> str:
    return (
        "-"
        if scores is None
        else f"{scores['bleu']:.2f} / {scores['chrf']:.2f} / {scores['bleu_tok_lc']:.2f}"
    )


def wall(r: dict[str, Any]) -> str:
    """Wall minutes of the run's last process; a resumed run (more minutes of training in all
    than that process took) also shows its training minutes in all."""
    w, t = r["wall_minutes"], r["train_minutes"]
    return f"{w:.1f}" if t is None or t <= w else f"{w:.1f} (resumed; {t:.1f} of training in all)"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| direction | updates (epochs) | wall min | test_2016_flickr BLEU / chrF / tok-lc "
        "| test_2017_flickr BLEU / chrF / tok-lc | published tok-lc (2016) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        pub = r["published_tok_lc"]
        gap = "" if pub is None or r[SPLITS[0]] is None else f" ({r[SPLITS[0]]['bleu_tok_lc'] - pub:+.2f})"
        lines.append(
            f"| {r['direction']} | {r['updates']} ({r['epochs']}) | {wall(r)} | {cell(r[SPLITS[0]])} "
            f"| {cell(r[SPLITS[1]])} | {'-' if pub is None else f'{pub:.1f}{gap}'} |"
        )
    sigs = sorted({r["signature"] for r in rows if r["signature"]})
    return "\n".join(lines) + "\n\nBLEU signature: " + ", ".join(f"`{s}`" for s in sigs) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "runs", type=Path, nargs="+", help="run directories (each with results.json), or results.json files"
    )
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    rows = [r for r in map(row, a.runs) if r is not None]
    if not rows:
        sys.exit("no finished run among the folders given")
    rows.sort(key=lambda r: (ORDER.index(r["pair"]) if r["pair"] in ORDER else len(ORDER), r["run"]))
    print(markdown(rows), end="")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
