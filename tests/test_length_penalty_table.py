"""scripts/length_penalty_table.py on a real tiny run: validation decoded by mt-evaluate once
per length penalty, the figures read from those results, and a second call reading back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import TINY_MODEL, run, tiny_corpus_args

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "length_penalty_table.py"


@pytest.mark.slow  # a tiny mt-train and two mt-evaluate runs
def test_length_penalty_table_on_a_tiny_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "tiny"
    proc = run(
        "mt-train",
        [*tiny_corpus_args(tmp_path), *TINY_MODEL, f"hydra.run.dir={run_dir}"],
        tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = tmp_path / "lp.json"
    args = [
        sys.executable,
        str(SCRIPT),
        str(run_dir),
        "--alphas",
        "1.0",
        "0.0",
        "--workdir",
        str(tmp_path / "lp"),
    ]
    table = subprocess.run([*args, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert table.returncode == 0, table.stderr[-2000:]
    rows = json.loads(out.read_text())["runs"]["tiny"]
    assert list(rows) == ["1.0", "0.0"]
    for alpha, row in rows.items():
        results = json.loads((tmp_path / "lp" / "tiny" / f"a{alpha}" / "results.json").read_text())
        valid = results["test"]["validation"]
        assert set(results["test"]) == {"validation"}  # validation only: the choice is made there
        assert valid["search"]["length_penalty"] == float(alpha)
        assert row == {"bleu": round(valid["bleu"]["score"], 2), "bp": valid["bleu"]["bp"],
                       "tok_lc": round(valid["bleu_tok_lc"]["score"], 2)}  # fmt: skip
    change = rows["0.0"]["bleu"] - rows["1.0"]["bleu"]
    assert f"| tiny | {rows['1.0']['bleu']:.2f} " in table.stdout
    assert f"| mean change | +0.00 | {change:+.2f} |" in table.stdout
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == table.stdout  # read back, not decoded again
    missing = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode != 0 and "no checkpoints/best.pt" in missing.stderr
