"""`mt-train alignment.gold=...`: real tiny runs whose validations and final evaluation score the
attention against a gold alignment set, a run without one, a resume, and bad gold files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clihelpers import TINY_MODEL, run, tiny_corpus_args

from mt.evaluation.aer import COUNT_FIELDS, scores_of_counts
from mt.evaluation.gold_scores import alignment_record, scores_line
from mt.training.gold_alignment import VALID_KEYS

# what GoldScorer returns: score_links's blocks plus the pass's size and time
SCORE_KEYS = (
    "all",
    "in_vocabulary",
    "in_vocabulary_rule",
    "sentence_counts",
    "pairs",
    "seconds",
    "pairs_per_s",
)

N_GOLD = 12  # gold pairs; each validation scores the first VALID_PAIRS of them
VALID_PAIRS = 5
# the tiny model of clihelpers, without plots and with a cheap beam: the runs take seconds
MODEL = [a for a in TINY_MODEL if not a.startswith(("trainer.plot_sentences", "trainer.test_beam_size"))]
MODEL += ["trainer.plot_sentences=[]", "trainer.test_beam_size=1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[str]]:
    """The tiny de-en corpus of clihelpers: (its folder, the data overrides)."""
    root = tmp_path_factory.mktemp("corpus")
    return root, tiny_corpus_args(root)


def gold_sentences(root: Path) -> tuple[list[str], list[str]]:
    """The first N_GOLD test pairs, whitespace-tokenized, as a gold set's sentences."""
    de = (root / "test_2016_flickr.de").read_text(encoding="utf-8").splitlines()[:N_GOLD]
    en = (root / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[:N_GOLD]
    return [" ".join(s.split()) for s in de], [" ".join(s.split()) for s in en]


def diagonal(n_first: int, n_second: int) -> tuple[str, str]:
    """1-based sure links k-k and possible links k-(k+1)."""
    m = min(n_first, n_second)
    sure = " ".join(f"{k}-{k}" for k in range(1, m + 1))
    possible = " ".join(f"{k}-{k + 1}" for k in range(1, m) if k + 1 <= n_second)
    return sure, possible


def pharaoh_gold(root: Path, folder: Path) -> list[str]:
    """A de->en gold set in Pharaoh format (sure i-j, possible ipj); its overrides."""
    de, en = gold_sentences(root)
    links = []
    for s, t in zip(de, en, strict=True):
        sure, possible = diagonal(len(s.split()), len(t.split()))
        links.append(sure + " " + " ".join(p.replace("-", "p") for p in possible.split()))
    for name, lines in (("g.de", de), ("g.en", en), ("g.align", links)):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [f"alignment.gold={folder / 'g.align'}", "alignment.format=pharaoh", f"alignment.src={folder / 'g.de'}",
            f"alignment.tgt={folder / 'g.en'}"]  # fmt: skip


def czenali_gold(root: Path, folder: Path) -> list[str]:
    """A CzEnAli-shaped TSV (English, other language, sure, possible) over en and de; its overrides."""
    de, en = gold_sentences(root)
    rows = []
    for s, t in zip(de, en, strict=True):
        sure, possible = diagonal(len(t.split()), len(s.split()))  # English first, like CzEnAli
        rows.append("\t".join([t, s, sure, possible]))
    (folder / "gold.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return [f"alignment.gold={folder / 'gold.tsv'}", "alignment.langs=[en,de]"]


def train(args: list[str], cwd: Path) -> None:
    proc = run("mt-train", args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]


def scalar_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in (run_dir / "tb").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


@pytest.fixture(scope="module")
def gold_run(corpus) -> Path:
    """One tiny run (2 validations) with a Pharaoh gold set; its run directory."""
    root, data = corpus
    run_dir = root / "gold_run"
    gold = pharaoh_gold(root, root) + [f"alignment.valid_max_pairs={VALID_PAIRS}"]
    train(data + MODEL + gold + [f"hydra.run.dir={run_dir}"], root)
    return run_dir


def test_each_validation_records_aer_in_history_and_tensorboard(gold_run: Path):
    history = json.loads((gold_run / "results.json").read_text())["train"]["history"]
    assert [h["step"] for h in history] == [15, 30]
    for record in history:
        assert set(VALID_KEYS) <= record.keys(), record
        assert all(0.0 <= record[k] <= 1.0 for k in VALID_KEYS), record
    assert {f"valid/{k}" for k in VALID_KEYS} <= scalar_tags(gold_run)
    log = (gold_run / "train.log").read_text()
    assert log.count(f"on {VALID_PAIRS} gold pairs in") == 2  # valid_max_pairs, not all N_GOLD


def test_the_final_score_of_all_pairs_goes_to_alignment_json_and_results(gold_run: Path):
    scores = json.loads((gold_run / "alignment.json").read_text())
    results = json.loads((gold_run / "results.json").read_text())
    assert scores["pairs"] == N_GOLD
    counts = scores["sentence_counts"]
    assert len(counts["all"]) == len(counts["in_vocabulary"]) == N_GOLD
    assert counts["fields"] == list(COUNT_FIELDS) and all(len(c) == len(COUNT_FIELDS) for c in counts["all"])
    for block in ("all", "in_vocabulary"):
        assert scores[block] == pytest.approx(scores_of_counts(counts[block]))
        assert 0.0 <= scores[block]["aer"] <= 1.0 and scores[block]["sentences"] == N_GOLD
    assert scores["settings"]["format"] == "pharaoh" and scores["settings"]["valid_max_pairs"] == VALID_PAIRS
    assert scores["model"]["step"] == results["valid"]["best_step"]
    assert scores["model"]["checkpoint"].endswith("best.pt") and scores["model"]["src_lang"] == "de"
    assert results["alignment"] == {"all": scores["all"], "in_vocabulary": scores["in_vocabulary"],
                                    "pairs": N_GOLD}  # fmt: skip
    # the one record builder of mt-align, runs and the attention table, and its summary line
    expected = alignment_record({k: scores[k] for k in SCORE_KEYS}, 0, {}, {})
    assert scores.keys() == expected.keys() and scores["warnings"] == 0
    assert f"final {scores_line(scores)} on {N_GOLD} gold pairs" in (gold_run / "train.log").read_text()


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_no_gold_no_scores_and_a_resume_with_czenali_gold(corpus, tmp_path: Path):
    root, data = corpus
    run_dir = tmp_path / "run"
    first = [a for a in MODEL if not a.startswith("trainer.max_steps")] + ["trainer.max_steps=15"]
    train(data + first + [f"hydra.run.dir={run_dir}"], tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    assert "alignment" not in results and not (run_dir / "alignment.json").exists()
    (record,) = results["train"]["history"]
    assert not set(VALID_KEYS) & record.keys()
    assert not {f"valid/{k}" for k in VALID_KEYS} & scalar_tags(run_dir)

    # alignment settings are not part of a checkpoint's compatibility: the run goes on, scored
    train(data + MODEL + czenali_gold(root, tmp_path) + [f"resume={run_dir}"], tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    before, after = results["train"]["history"]
    assert (before["step"], after["step"]) == (15, 30)
    assert not set(VALID_KEYS) & before.keys() and set(VALID_KEYS) <= after.keys()
    scores = json.loads((run_dir / "alignment.json").read_text())
    assert scores["pairs"] == N_GOLD and len(scores["sentence_counts"]["all"]) == N_GOLD
    assert scores["settings"]["langs"] == ["en", "de"] and results["alignment"]["pairs"] == N_GOLD


@pytest.mark.parametrize("bad", ["missing", "three_columns"])
def test_a_bad_gold_file_is_one_error_line_and_exit_2(corpus, tmp_path: Path, bad: str):
    root, data = corpus
    gold = tmp_path / "gold.tsv"
    if bad == "three_columns":
        gold.write_text("a dog\tein Hund\t1-1\n", encoding="utf-8")
    proc = run("mt-train", data + MODEL + [f"alignment.gold={gold}", "alignment.langs=[en,de]",
                                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(gold) in errors[0], err[-3000:]
    assert ("config error at `alignment.gold`" if bad == "missing" else f"{gold}:1: expected 4") in errors[0]
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before training
