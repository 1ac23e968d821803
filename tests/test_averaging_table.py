"""scripts/averaging_table.py on a real tiny run with step checkpoints: every variant decoded by
mt-evaluate on validation and the run's test split, figures read from those results, the
averaged files written by mt-average, and a second call reading back instead of decoding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import TINY_MODEL, run, tiny_corpus_args

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "averaging_table.py"


@pytest.mark.slow  # a tiny mt-train and four mt-evaluate runs
def test_averaging_table_on_a_tiny_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [*tiny_corpus_args(tmp_path), *TINY_MODEL, "trainer.checkpoint_every=15", "trainer.keep_last=2",
            f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = run("mt-train", args, tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = tmp_path / "avg.json"
    args = [sys.executable, str(SCRIPT), str(run_dir), "--last", "2", "--best", "2", "--other", str(run_dir)]
    table = subprocess.run([*args, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert table.returncode == 0, table.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert list(rows) == [
        "best",
        "avg last 2",
        "avg best 2",
        "ensemble best 2",
        "other best",
        "other avg best 2",
        "ensemble 2 seeds",
        "ensemble 2 seeds avg best 2",
    ]
    work = run_dir / "averaging"
    for name, row in rows.items():
        evaluated = json.loads((work / name.replace(" ", "_") / "results.json").read_text())["test"]
        assert set(evaluated) == {"validation", "test"}
        assert row["validation"] == round(evaluated["validation"]["bleu"]["score"], 2)
        assert row["test"] == round(evaluated["test"]["bleu"]["score"], 2) and row["decode_seconds"] > 0
    # two step checkpoints kept (15 and 30), both validated: the last 2 and the best 2 are one set
    assert (work / "averaged_last2.pt").is_file() and (work / "averaged_best2.pt").is_file()
    assert rows["avg last 2"]["validation"] == rows["avg best 2"]["validation"]
    assert [Path(p).name for p in rows["ensemble best 2"]["checkpoints"]] == [
        "step_00000015.pt",
        "step_00000030.pt",
    ]
    # "another seed" that is the run itself: an ensemble of a model with itself is that model
    # (and its rows are the run's own)
    for other, own in [("other best", "best"), ("ensemble 2 seeds", "best"), ("other avg best 2", "avg best 2"),
                       ("ensemble 2 seeds avg best 2", "avg best 2")]:  # fmt: skip
        assert (rows[other]["validation"], rows[other]["test"]) == (
            rows[own]["validation"],
            rows[own]["test"],
        )
    assert (work / "other" / "averaged_best2.pt").is_file()
    assert rows["ensemble 2 seeds avg best 2"]["checkpoints"] == [
        str(work / "averaged_best2.pt"),
        str(work / "other" / "averaged_best2.pt"),
    ]
    assert "| ensemble best 2 |" in table.stdout and "(1.00x)" in table.stdout
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == table.stdout  # read back, not decoded again
    # two other runs (here the run twice): one ensemble of three, each other run's rows apart
    many = [*args, str(run_dir), "--json", str(tmp_path / "avg3.json")]
    three = subprocess.run(many, capture_output=True, text=True, timeout=600)
    assert three.returncode == 0, three.stderr[-2000:]
    rows3 = json.loads((tmp_path / "avg3.json").read_text())["rows"]
    assert list(rows3)[4:] == ["other1 best", "other1 avg best 2", "other2 best", "other2 avg best 2",
                               "ensemble 3 seeds", "ensemble 3 seeds avg best 2"]  # fmt: skip
    assert len(rows3["ensemble 3 seeds avg best 2"]["checkpoints"]) == 3
    assert (work / "other1" / "averaged_best2.pt").is_file() and (
        work / "other2" / "averaged_best2.pt"
    ).is_file()
    assert rows3["ensemble 3 seeds"]["checkpoints"] == [str(run_dir / "checkpoints" / "best.pt")] * 3
    assert rows3["other2 best"]["validation"] == rows["best"]["validation"]
