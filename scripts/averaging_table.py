#!/usr/bin/env python
"""Checkpoint averaging and ensembles against the single best checkpoint of one finished run:
BLEU on validation and the test splits, and the decoding time of each, side by side.

    mt-train trainer.checkpoint_every=150 trainer.keep_last=5 hydra.run.dir=runs/de-en
    python scripts/averaging_table.py runs/de-en --json avg.json
    python scripts/averaging_table.py runs/de-en --other runs/de-en-seed2   # + a two-seed ensemble

Variants (each decoded by `mt-evaluate` with the run's own search settings, beam 5 by default):
- `best`: checkpoints/best.pt, the run's test model (best validation BLEU);
- `avg last N`: `mt-average --run RUN --last N` (the N newest step checkpoints);
- `avg best M`: `mt-average --run RUN --best M` (the M best-validated step checkpoints);
- `ensemble best M`: those M step checkpoints decoded as one ensemble (no averaging);
- with --other (another seed's finished run of the same configuration): `other best` and
  `other avg best M`, that run's best.pt and average (written under WORKDIR/other);
  `ensemble 2 seeds`, the two best.pt as one ensemble; `ensemble 2 seeds avg best M`, the
  two runs' `avg best M` as one ensemble. With more runs after --other (other seeds or
  settings sharing the target vocabulary), `otherI best` / `otherI avg best M` for the I-th
  (averages under WORKDIR/otherI) and `ensemble N seeds` / `ensemble N seeds avg best M` of all.

Every variant is scored on validation, so that the choice between them is made there; test
scores are printed beside. Decoding time is `mt-evaluate`'s own (search and scoring, summed over
the splits), as a ratio to `best`. Files go under RUN/averaging (or --workdir); a variant whose
results already exist there is read back, not decoded again. Run it alone on the machine: the
time column is a measurement.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def command(name: str) -> str:
    """An mt console script beside this interpreter, else on PATH."""
    local = BIN / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def check(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()[-2000:]}")


def evaluate(
    work: Path, name: str, checkpoints: list[Path], splits: list[str], overrides: list[str] = ()
) -> dict[str, Any]:
    """mt-evaluate of one checkpoint or an ensemble into work/name (more `overrides` of
    mt-evaluate, e.g. `length_penalty=1.5`); its results.json."""
    out = work / name
    if (out / "results.json").is_file():
        return json.loads((out / "results.json").read_text())
    if out.exists():  # an interrupted earlier try of this script
        shutil.rmtree(out)
    args = [f"checkpoint={checkpoints[0]}", f"splits=[{','.join(splits)}]", f"hydra.run.dir={out}"]
    if len(checkpoints) > 1:
        args.append("ensemble=[" + ",".join(map(str, checkpoints[1:])) + "]")
    check([command("mt-evaluate"), *args, *overrides])
    return json.loads((out / "results.json").read_text())


def average(run: Path, work: Path, how: str, n: int) -> Path:
    """mt-average --run RUN --last/--best N into work (kept and reused)."""
    out = work / f"averaged_{how}{n}.pt"
    if not out.is_file():
        check([command("mt-average"), "--run", str(run), f"--{how}", str(n), "--output", str(out)])
    return out


def best_steps(run: Path, n: int) -> list[Path]:
    """The n best-validated step checkpoints, as `mt-average --best` picks them."""
    from argparse import Namespace

    from mt.cli.average import chosen_checkpoints

    return chosen_checkpoints(Namespace(checkpoints=[], run=run, last=0, best=n))


def summary(results: dict[str, Any], splits: list[str]) -> dict[str, Any]:
    test = results["test"]
    return {
        **{s: round(test[s]["bleu"]["score"], 2) for s in splits},
        **{f"{s}_tok_lc": round(test[s]["bleu_tok_lc"]["score"], 2) for s in splits if s != "validation"},
        "decode_seconds": round(sum(test[s]["decode_seconds"] for s in splits), 2),
    }


def markdown(rows: dict[str, dict[str, Any]], splits: list[str]) -> str:
    base = rows["best"]
    head = "| variant | " + " | ".join(f"{s} BLEU" for s in splits) + " | decode s (x best) |"
    lines = [head, "|" + "---|" * (len(splits) + 2)]
    for name, r in rows.items():
        cells = [f"{r[s]:.2f}" + ("" if name == "best" else f" ({r[s] - base[s]:+.2f})") for s in splits]
        ratio = r["decode_seconds"] / base["decode_seconds"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['decode_seconds']:.1f} ({ratio:.2f}x) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished mt-train run with step checkpoints")
    ap.add_argument("--last", type=int, default=5, help="average the N newest step checkpoints")
    ap.add_argument("--best", type=int, default=3, help="average / ensemble the M best-validated ones")
    ap.add_argument(
        "--other",
        type=Path,
        nargs="+",
        default=[],
        help="other runs (seeds) of one vocabulary: an ensemble of all",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="default RUN/averaging")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    run = a.run.resolve()
    ckpts = run / "checkpoints"
    if not (ckpts / "best.pt").is_file() or not (run / "results.json").is_file():
        sys.exit(f"{run}: no checkpoints/best.pt or results.json; give a finished mt-train run")
    tested = json.loads((run / "results.json").read_text())["test"]
    splits = ["validation", *tested]  # the run's own test splits (no test_2017_flickr for Czech)
    work = (a.workdir or run / "averaging").resolve()
    work.mkdir(parents=True, exist_ok=True)
    variants: dict[str, list[Path]] = {"best": [ckpts / "best.pt"]}
    variants[f"avg last {a.last}"] = [average(run, work, "last", a.last)]
    variants[f"avg best {a.best}"] = [average(run, work, "best", a.best)]
    variants[f"ensemble best {a.best}"] = best_steps(run, a.best)
    if a.other:
        others = [o.resolve() for o in a.other]
        for other in others:
            if not (other / "checkpoints" / "best.pt").is_file():
                sys.exit(f"{other}: no checkpoints/best.pt; --other takes finished mt-train runs")
        best_pts, avgs = [ckpts / "best.pt"], [variants[f"avg best {a.best}"][0]]
        for i, other in enumerate(others):
            sub = work / "other" if len(others) == 1 else work / f"other{i + 1}"
            tag = "other" if len(others) == 1 else f"other{i + 1}"
            sub.mkdir(exist_ok=True)
            avgs.append(average(other, sub, "best", a.best))
            best_pts.append(other / "checkpoints" / "best.pt")
            variants[f"{tag} best"] = [best_pts[-1]]
            variants[f"{tag} avg best {a.best}"] = [avgs[-1]]
        n = len(best_pts)
        variants[f"ensemble {n} seeds"] = best_pts
        variants[f"ensemble {n} seeds avg best {a.best}"] = avgs
    rows = {}
    for name, paths in variants.items():
        rows[name] = summary(evaluate(work, name.replace(" ", "_"), paths, splits), splits)
        rows[name]["checkpoints"] = [str(p) for p in paths]
    print(markdown(rows, splits), end="")
    if a.json:
        a.json.write_text(json.dumps({"run": str(run), "splits": splits, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
