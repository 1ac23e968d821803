"""`mt-evaluate` on a checkpoint whose training corpus has moved: it reads only the checkpoint
(model, tokenizer, config) and the splits it evaluates, never the training data or the run's data
cache; an evaluated split that is gone is one error naming the path and the override to use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clihelpers import TINY_MODEL, run, tiny_corpus_args

pytestmark = pytest.mark.slow  # a trained model and three CLI runs: 25 s of the full run's budget


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny real run on corpus/, whose training files and data cache are then moved away -> run dir."""
    root = tmp_path_factory.mktemp("moved")
    corpus = root / "corpus"
    corpus.mkdir()
    args = tiny_corpus_args(corpus) + [f"hydra.run.dir={root / 'run'}"] + TINY_MODEL
    proc = run("mt-train", args, cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    (root / "elsewhere").mkdir()
    for path in [*corpus.glob("train.*"), corpus / "cache"]:
        shutil.move(path, root / "elsewhere" / path.name)
    return root / "run"


def evaluate(run_dir: Path, out: Path, *overrides: str):
    ckpt = run_dir / "checkpoints" / "best.pt"
    return run("mt-evaluate", [f"checkpoint={ckpt}", f"hydra.run.dir={out}", *overrides], cwd=out.parent)


def test_evaluate_needs_no_training_data(trained: Path, tmp_path: Path):
    proc = evaluate(trained, tmp_path / "ev", "splits=[test]")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert list(results["test"]) == ["test"]
    # the same model, beam and batches as the run's own final test: the same translations
    assert (tmp_path / "ev/outputs/test.hyp").read_text() == (trained / "outputs/test.hyp").read_text()
    run_bleu = json.loads((trained / "results.json").read_text())["test"]["test"]["bleu"]["score"]
    assert results["test"]["test"]["bleu"]["score"] == run_bleu
    assert not (trained.parent / "corpus" / "cache").exists()  # the old data cache is not written again


def test_default_splits_and_a_moved_test_split(trained: Path, tmp_path: Path):
    corpus = trained.parent / "corpus"
    moved = tmp_path / "new_place"
    moved.mkdir()
    for path in corpus.glob("test_2016_flickr.*"):
        shutil.copy(path, moved / path.name)
    proc = evaluate(trained, tmp_path / "ev", f"+files.test={moved / 'test_2016_flickr'}")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert list(results["test"]) == ["test"]  # every test split by default, validation left out
    assert len((tmp_path / "ev/outputs/test.ref").read_text().splitlines()) == 30


def test_a_missing_evaluated_split_is_one_error_with_the_override(trained: Path, tmp_path: Path):
    corpus = trained.parent / "corpus"
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    files = list(corpus.glob("test_2016_flickr.*"))
    for path in files:
        shutil.move(path, hidden / path.name)
    try:
        proc = evaluate(trained, tmp_path / "ev")
    finally:
        for path in files:
            shutil.move(hidden / path.name, path)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-3000:]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "the test split to evaluate is not there" in lines[0]
    assert str(corpus / "test_2016_flickr") in lines[0]  # the path looked at
    assert "+files.test=PATH" in lines[0]  # and how to point to the new place


def test_an_unknown_split_names_the_choices(trained: Path, tmp_path: Path):
    proc = evaluate(trained, tmp_path / "ev", "splits=[test_2099]")
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-3000:]
    assert "['test_2099'] not in this data; choose from ['validation', 'test']" in err


def test_score_references_writes_each_references_log_probability(trained: Path, tmp_path: Path):
    proc = evaluate(trained, tmp_path / "eval", "score_references=true", "splits=[test]")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = (tmp_path / "eval" / "outputs" / "test.ref_scores").read_text().splitlines()
    refs = (tmp_path / "eval" / "outputs" / "test.ref").read_text().splitlines()
    assert len(lines) == len(refs) > 0
    scores = [(float(a), int(b)) for a, b in (line.split("\t") for line in lines)]
    assert all(s < 0 and n >= 1 for s, n in scores)
    total = json.loads((tmp_path / "eval" / "results.json").read_text())["test"]["test"]["reference_scores"]
    assert total["tokens"] == sum(n for _, n in scores)
    assert total["log_prob"] == pytest.approx(sum(s for s, _ in scores), abs=0.01 * len(scores))
    both = evaluate(
        trained,
        tmp_path / "ens",
        "score_references=true",
        f"ensemble=[{trained / 'checkpoints' / 'best.pt'}]",
    )
    assert both.returncode == 2 and "config error at `score_references`" in both.stderr.decode()
