"""scripts/bench_beam_ab.py on a tiny trained model: both beam searches decode the split and
agree bit for bit when the baseline is this tree's own commit; a wrong commit or split is
one clear line and exit code 2 (checks the report, not any speed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import TINY_MODEL, run, tiny_corpus_args

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_beam_ab.py"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("beam_ab")
    proc = run("mt-train", [*TINY_MODEL, *tiny_corpus_args(root), f"hydra.run.dir={root / 'run'}"], cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return root / "run" / "checkpoints" / "best.pt"


def ab(checkpoint: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--checkpoint", str(checkpoint), *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_same_commit_decodes_identically(checkpoint: Path):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    proc = ab(checkpoint, "--baseline", "HEAD", "--split", "test", "--rounds", "1", "--beam", "3")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    m = re.search(r"baseline HEAD ([\d.]+) sentences/s, this tree ([\d.]+) \(([\d.]+)x\); "
                  r"identical tokens, score and attention: (\d+) of (\d+)", proc.stdout)  # fmt: skip
    assert m, proc.stdout
    assert float(m[1]) > 0 and float(m[2]) > 0
    assert m[4] == m[5] == "30"  # every test sentence of the tiny corpus


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--baseline", "no-such-commit", "--split", "test"], "--baseline no-such-commit"),
        (["--baseline", "HEAD", "--split", "nope"], "--split nope"),
    ],
)
def test_bad_baseline_or_split_is_one_line_exit_2(checkpoint: Path, args: list[str], says: str):
    proc = ab(checkpoint, *args)
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {says}")
