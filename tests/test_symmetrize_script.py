"""scripts/symmetrize.py: two directions' Pharaoh files combined and scored, on hand-made links."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "symmetrize.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_reverse_links_are_flipped_combined_and_scored(tmp_path: Path):
    # pair 1: forward {0-0, 1-1}, reverse (target first) {0-0, 2-1} = {0-0, 1-2} flipped
    # pair 2: forward {0-1}, reverse {1-0} = {0-1}
    (tmp_path / "f.align").write_text("0-0 1-1\n0-1\n")
    (tmp_path / "r.align").write_text("0-0 2-1\n1-0\n")
    # gold (1-based, English first): pair 1 sure 1-1 2-2, possible 2-3; pair 2 sure 1-2
    (tmp_path / "g.tsv").write_text("a b\tx y z\t1-1 2-2\t2-3\nc d\tu v\t1-2\t\n")
    out = tmp_path / "sym.align"
    proc = run("--forward", str(tmp_path / "f.align"), "--reverse", str(tmp_path / "r.align"), "--method",
               "intersection", "--output", str(out), "--gold", str(tmp_path / "g.tsv"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "0-0\n0-1\n"
    scores = json.loads(proc.stdout)["scores"]
    # intersection {0-0}, {0-1}: |A| 2, |S| 3, A∩S 2, A∩P 2 -> AER 1 - 4/5 = 0.2
    assert abs(scores["intersection"]["aer"] - 0.2) < 1e-9
    # reverse, flipped: {0-0, 1-2}, {0-1}: A∩S 2, A∩P 3 (1-2 is possible), |A| 3 -> 1 - 5/6
    assert abs(scores["reverse"]["aer"] - 1 / 6) < 1e-9
    union = run(
        "--forward", str(tmp_path / "f.align"), "--reverse", str(tmp_path / "r.align"), "--method", "union"
    )
    assert union.returncode == 0 and union.stdout == "0-0 1-1 1-2\n0-1\n"


def test_line_count_mismatch_and_bad_links_are_one_error_line(tmp_path: Path):
    (tmp_path / "f.align").write_text("0-0\n0-1\n")
    (tmp_path / "r.align").write_text("0-0\n")
    proc = run("--forward", str(tmp_path / "f.align"), "--reverse", str(tmp_path / "r.align"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "has 2 lines but" in proc.stderr
    (tmp_path / "r.align").write_text("0-0\n1-x\n")
    proc = run("--forward", str(tmp_path / "f.align"), "--reverse", str(tmp_path / "r.align"))
    assert (
        proc.returncode == 2
        and f"{tmp_path / 'r.align'}:2:" in proc.stderr
        and "Traceback" not in proc.stderr
    )
