"""scripts/directions_table.py on run folders shaped like mt-train's: rows in direction order,
"-" for a split a direction lacks, the published figure and the gap to it, unfinished runs named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "directions_table.py"
SIG = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"


def fake_run(
    root: Path,
    src: str,
    tgt: str,
    scores: dict[str, tuple[float, float, float]],
    lowercase: bool | None = None,
) -> Path:
    run = root / f"{src}-{tgt}" if lowercase is None else root / f"{src}-{tgt}-lc{int(lowercase)}"
    run.mkdir()
    test = {split: {"bleu": {"score": b, "signature": SIG}, "chrf": {"score": c}, "bleu_tok_lc": {"score": t}}
            for split, (b, c, t) in scores.items()}  # fmt: skip
    results = {"test": test, "train": {"steps": 1950, "epochs": 23.04}, "wall_minutes": 47.25,
               "config": {"data": {"src_lang": src, "tgt_lang": tgt}}}  # fmt: skip
    if lowercase is not None:  # runs before tokenizer.lowercase existed have no such key
        results["config"]["tokenizer"] = {"lowercase": lowercase}
    (run / "results.json").write_text(json.dumps(results))
    return run


def test_table_of_directions(tmp_path: Path):
    cs = fake_run(tmp_path, "en", "cs", {"test_2016_flickr": (30.0, 50.0, 30.5)})
    de = fake_run(
        tmp_path, "en", "de", {"test_2016_flickr": (38.1, 60.0, 38.5), "test_2017_flickr": (30.0, 55.0, 31.0)}
    )
    unfinished = tmp_path / "fr-en"
    unfinished.mkdir()
    out = tmp_path / "t.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(cs), str(unfinished), str(de), "--json", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| en->")]
    assert rows == [
        "| en->de | 1950 (23.0) | 47.2 | 38.10 / 60.00 / 38.50 | 30.00 / 55.00 / 31.00 | 39.0 (-0.50) |",
        "| en->cs | 1950 (23.0) | 47.2 | 30.00 / 50.00 / 30.50 | - | - |",
    ]
    assert f"`{SIG}`" in proc.stdout
    assert "fr-en: no results.json" in proc.stderr
    data = json.loads(out.read_text())
    assert [r["direction"] for r in data] == ["en->de", "en->cs"] and data[1]["test_2017_flickr"] is None


def test_no_finished_run_is_an_error(tmp_path: Path):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1 and "no finished run" in proc.stderr


def test_a_copied_results_file_is_read_like_its_run(tmp_path: Path):
    """docs/results/directions/*.json are copies of results.json: the same row as the run folder."""
    run = fake_run(tmp_path, "fr", "en", {"test_2016_flickr": (45.0, 66.0, 46.0)})
    copy = tmp_path / "fr-en.json"
    copy.write_bytes((run / "results.json").read_bytes())
    tables = [
        subprocess.run([sys.executable, str(SCRIPT), str(p)], capture_output=True, text=True).stdout
        for p in (run, copy)
    ]
    assert "| fr->en | 1950 (23.0) | 47.2 | 45.00 / 66.00 / 46.00 | - | - |" in tables[0]
    assert tables[0] == tables[1]


def test_a_lowercased_run_is_marked(tmp_path: Path):
    """Its BLEU and chrF ignore case: the row says so, beside the cased run of the same direction."""
    cased = fake_run(tmp_path, "en", "de", {"test_2016_flickr": (37.0, 61.0, 37.2)}, lowercase=False)
    lowered = fake_run(tmp_path, "en", "de", {"test_2016_flickr": (38.5, 62.0, 38.1)}, lowercase=True)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(lowered), str(cased)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| en->")]
    assert rows == [
        "| en->de | 1950 (23.0) | 47.2 | 37.00 / 61.00 / 37.20 | - | 39.0 (-1.80) |",
        "| en->de (lowercased) | 1950 (23.0) | 47.2 | 38.50 / 62.00 / 38.10 | - | 39.0 (-0.90) |",
    ]


def test_a_resumed_run_shows_its_training_minutes_in_all(tmp_path: Path):
    """results.json's wall_minutes is the last process's; a run stopped and resumed has trained
    longer than that in all (train_minutes), and the row says so. A run that was not resumed
    trains for less than its wall time (data and the final decoding come on top): no mark."""
    rows = []
    for pair, train_minutes in (("cs-en", 71.9), ("en-cs", 46.1)):
        run = fake_run(tmp_path, *pair.split("-"), {"test_2016_flickr": (37.8, 58.2, 38.3)})
        results = json.loads((run / "results.json").read_text())
        results["train"]["train_minutes"] = train_minutes
        (run / "results.json").write_text(json.dumps(results))
        proc = subprocess.run([sys.executable, str(SCRIPT), str(run)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        rows += [
            line for line in proc.stdout.splitlines() if line.startswith(f"| {pair.replace('-', '->')} ")
        ]
    assert rows == [
        "| cs->en | 1950 (23.0) | 47.2 (resumed; 71.9 of training in all) | 37.80 / 58.20 / 38.30 | - | - |",
        "| en->cs | 1950 (23.0) | 47.2 | 37.80 / 58.20 / 38.30 | - | - |",
    ]
