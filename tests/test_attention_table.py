"""scripts/attention_table.py end to end: a sweep of two tiny jobs (two mechanisms), a gold TSV,
an eflomal scores file; the table, each job's alignment.json, and the side-by-side PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import TINY_MODEL, run, tiny_corpus_args

from mt.config import DEFAULT_ALIGN_METHOD

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # two real training runs and the script: about 45 s
MECHANISMS = ("bahdanau", "luong_general")


def eflomal_scores(path: Path) -> None:
    """A scores.json shaped like scripts/eflomal_baseline.py's, with recognisable values."""
    one = {"aer": 0.123, "precision": 0.9, "recall": 0.8}
    methods = ("forward", "reverse", "intersection", "grow-diag-final-and")
    path.write_text(json.dumps({"scores": {m: one for m in methods},
                                "scores_both_words_in_multi30k_train": {m: one for m in methods}}))  # fmt: skip


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("table")
    data = tiny_corpus_args(root)
    sweep = root / "sweep"
    for name in MECHANISMS:
        proc = run("mt-train", data + TINY_MODEL + [f"model/attention={name}", "trainer.max_steps=20",
                                                    f"hydra.run.dir={sweep / f'model.attention={name},seed=1'}"],
                   cwd=root)  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    de = (root / "test_2016_flickr.de").read_text(encoding="utf-8").splitlines()[:12]
    en = (root / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[:12]
    rows = []
    for s, t in zip(de, en, strict=True):  # English first, like CzEnAli; 1-based diagonal sure links
        n = min(len(s.split()), len(t.split()))
        rows.append(
            "\t".join(
                [" ".join(t.split()), " ".join(s.split()), " ".join(f"{k}-{k}" for k in range(1, n + 1)), ""]
            )
        )
    (root / "gold.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    eflomal_scores(root / "eflomal.json")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "attention_table.py"), str(sweep), "--gold",
                           str(root / "gold.tsv"), "--gold-langs", "en", "de", "--dev-pairs", "5", "--thresholds",
                           "0.2", "0.4", "--eflomal", str(root / "eflomal.json"), "--device", "cpu", "--test-split", "test"],
                          cwd=root, capture_output=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return sweep, proc.stdout.decode()


def test_table_rows_match_each_jobs_alignment_json(table):
    sweep, out = table
    written = (sweep / "attention_table" / "table.md").read_text()
    assert out.strip() == written.strip()
    for name in MECHANISMS:
        job = sweep / f"model.attention={name},seed=1"
        scores = json.loads((job / "alignment.json").read_text())
        results = json.loads((job / "results.json").read_text())
        assert (
            len(scores["sentence_counts"]["all"]) == 12
            and scores["settings"]["method"] == DEFAULT_ALIGN_METHOD
        )
        a, v = scores["all"], scores["in_vocabulary"]
        bleu = results["test"]["test"]["bleu"]["score"]
        row = next(line for line in written.splitlines() if line.startswith(f"| {name} | {bleu:.2f} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2:8] == [f"{100 * x:.1f}" for x in (a["aer"], a["precision"], a["recall"], v["aer"],
                                                          v["precision"], v["recall"])]  # fmt: skip
        assert cells[8] == "20"  # steps
    assert "| eflomal forward | - | 12.3 | 90.0 | 80.0 | 12.3 |" in written


def test_selection_table_has_argmax_and_each_threshold_on_the_dev_pairs(table):
    sweep, _ = table
    rows = json.loads((sweep / "attention_table" / "table.json").read_text())["rows"]
    assert [r["attention"] for r in rows] == list(MECHANISMS)
    for r in rows:
        assert list(r["selection"]) == ["argmax", "threshold 0.2", "threshold 0.4"]
        assert all(s["sentences"] == 5 for s in r["selection"].values())
    written = (sweep / "attention_table" / "table.md").read_text()
    assert "| mechanism | argmax | threshold 0.2 | threshold 0.4 |" in written and "| mean |" in written


def test_side_by_side_png(table):
    sweep, _ = table
    png = sweep / "attention_table" / "side_by_side.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
