"""`mt-report` over a hand-made sweep directory: the table, the plot, report.json, the paired
bootstrap, unfinished jobs and the errors."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest
from clihelpers import run, synthetic_lines

SPLITS = ("test_2016_flickr", "test_2017_flickr")
REFS = {split: synthetic_lines(60, "en", seed=i + 10) for i, split in enumerate(SPLITS)}
SCORES = {  # (mechanism, seed) -> BLEU per split, valid BLEU, train minutes, as results.json says
    ("bahdanau", 1): ({"test_2016_flickr": 30.1, "test_2017_flickr": 27.4}, 31.0, 10.5),
    ("bahdanau", 2): ({"test_2016_flickr": 32.3, "test_2017_flickr": 26.0}, 33.5, 11.0),
    ("luong_dot", 1): ({"test_2016_flickr": 100.0, "test_2017_flickr": 100.0}, 99.0, 9.0),
    ("luong_dot", 2): ({"test_2016_flickr": 100.0, "test_2017_flickr": 100.0}, 98.0, 9.5),
}


def noisy(lines: list[str], seed: int) -> list[str]:
    """Each word replaced by a wrong one with probability 0.4."""
    rng = random.Random(seed)
    return [" ".join(w if rng.random() > 0.4 else "zebra" for w in line.split()) for line in lines]


def metric(score: float) -> dict:
    return {"score": score, "signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"}


def write_job(sweep: Path, mechanism: str, seed: int, refs: bool = True) -> Path:
    """One finished job: results.json and outputs/<split>.hyp/.ref; luong_dot's outputs are the references."""
    job = sweep / f"model.attention={mechanism},seed={seed}"
    (job / "outputs").mkdir(parents=True)
    test_bleu, valid_bleu, minutes = SCORES[(mechanism, seed)]
    results = {
        "valid": {"best_greedy_bleu": valid_bleu, "bleu": metric(valid_bleu), "chrf": metric(valid_bleu + 20)},
        "test": {
            split: {"bleu": metric(b), "chrf": metric(b + 20), "ter": metric(100 - b), "sentences": 60}
            for split, b in test_bleu.items()
        },
        "train": {"steps": 100, "train_minutes": minutes},
        "wall_minutes": minutes + 1,
        "config": {"model": {"attention": {"name": mechanism, "hidden_size": 0}, "emb_size": 32}, "seed": seed,
                   "data": {"src_lang": "de", "tgt_lang": "en"}},
    }  # fmt: skip
    (job / "results.json").write_text(json.dumps(results))
    for split, lines in REFS.items():
        hyps = lines if mechanism == "luong_dot" else noisy(lines, seed)
        (job / "outputs" / f"{split}.hyp").write_text("\n".join(hyps) + "\n")
        if refs:
            (job / "outputs" / f"{split}.ref").write_text("\n".join(lines) + "\n")
    return job


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """2 mechanisms x 2 seeds, plus an unfinished job, and the report written by the real CLI."""
    sweep = tmp_path_factory.mktemp("report") / "sweep"
    for mechanism, seed in SCORES:
        write_job(sweep, mechanism, seed)
    (sweep / "model.attention=luong_dot,seed=3" / ".hydra").mkdir(parents=True)  # started, not finished
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    proc = run("mt-report", [str(sweep), "--bootstrap", "200"], cwd=sweep.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    (sweep / "stdout.md").write_bytes(proc.stdout)
    return sweep


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table_row(markdown: str, heading: str, label: str) -> list[str]:
    """The cells of the row `label` in the table under `## heading`."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} under {heading!r}:\n{section}")


def test_table_has_mean_and_std_over_seeds(sweep: Path):
    md = (sweep / "report.md").read_text()
    assert md in (sweep / "stdout.md").read_text()  # the markdown is also printed
    for mechanism, label in (("bahdanau", "bahdanau (baseline)"), ("luong_dot", "luong_dot")):
        runs = [SCORES[(mechanism, s)] for s in (1, 2)]
        row = table_row(md, "BLEU", label)
        assert row[1] == "2"
        assert row[2] == mean_std([r[1] for r in runs])
        assert row[3:5] == [mean_std([r[0][s] for r in runs]) for s in SPLITS]
        assert row[5] == mean_std([r[2] for r in runs])
        chrf = table_row(md, "chrF", label)
        assert chrf[3:5] == [mean_std([r[0][s] + 20 for r in runs]) for s in SPLITS]
    header = md.split("## BLEU\n", 1)[1].strip().splitlines()[0]
    assert header == "| model.attention.name | n | valid | test_2016_flickr | test_2017_flickr | train min |"


def test_unfinished_job_is_listed(sweep: Path):
    md = (sweep / "report.md").read_text()
    assert "`model.attention=luong_dot,seed=3`: unfinished: no results.json" in md
    report = json.loads((sweep / "report.json").read_text())
    assert report["missing"] == [
        {"job": "model.attention=luong_dot,seed=3", "reason": "unfinished: no results.json"}
    ]


def test_report_json_and_plot(sweep: Path):
    report = json.loads((sweep / "report.json").read_text())
    assert report["group_by"] == ["model.attention.name"]
    assert report["baseline"] == "bahdanau"
    assert report["pair_by"] == ["seed"]
    assert report["splits"] == list(SPLITS)
    groups = {g["name"]: g for g in report["groups"]}
    assert list(groups) == ["bahdanau", "luong_dot"]
    stat = groups["bahdanau"]["test"]["test_2016_flickr"]["bleu"]
    assert stat["values"] == [30.1, 32.3]
    assert stat["mean"] == pytest.approx(31.2)
    assert stat["std"] == pytest.approx(statistics.stdev([30.1, 32.3]))
    assert sorted(groups["luong_dot"]["seeds"]) == [1, 2]
    png = (sweep / "bleu_by_group.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_perfect_system_is_significantly_better_than_the_baseline(sweep: Path):
    sig = json.loads((sweep / "report.json").read_text())["significance"]
    assert sig["n_resamples"] == 200 and sig["metric"] == "bleu"
    assert "bs:200" in sig["signature"] and "seed:12345" in sig["signature"]
    assert {(c["group"], c["split"]) for c in sig["comparisons"]} == {("luong_dot", s) for s in SPLITS}
    for c in sig["comparisons"]:
        assert c["tested"] == 2 and c["significant"] == 2
        assert [p["pair"] for p in c["pairs"]] == ["seed=1", "seed=2"]
        for p in c["pairs"]:
            assert p["system"] == pytest.approx(100.0)
            assert p["baseline"] < 80.0 and p["delta"] > 20.0
            assert p["p_value"] < 0.01
            assert p["baseline_job"].endswith(p["pair"])  # seed k is paired with seed k
    md = (sweep / "report.md").read_text()
    assert "## Paired bootstrap against bahdanau (BLEU)" in md
    assert "| luong_dot | test_2016_flickr | +" in md


def test_identical_outputs_are_not_significant():
    from mt.report.significance import paired_bootstrap

    refs = REFS[SPLITS[0]]
    hyps = noisy(refs, 1)
    same = paired_bootstrap(hyps, list(hyps), refs, n_resamples=100)
    assert same["delta"] == 0.0 and same["p_value"] == 1.0
    better = paired_bootstrap(hyps, refs, refs, n_resamples=100)
    assert better["delta"] > 0 and better["p_value"] < 0.05


def test_runs_without_references_are_explained_not_fatal(tmp_path: Path):
    from mt.report.build import build_report
    from mt.report.render import render_markdown

    for mechanism, seed in SCORES:
        write_job(tmp_path, mechanism, seed, refs=False)
    report = build_report(tmp_path, n_resamples=50)
    md = render_markdown(report)
    assert "not tested (see notes)" in md
    assert "significance needs outputs/test_2016_flickr.ref, which 4 run(s) lack" in md
    comparisons = report["significance"]["comparisons"]  # listed, each with nothing tested
    assert {(c["group"], c["split"]) for c in comparisons} == {("luong_dot", s) for s in SPLITS}
    assert all(c["tested"] == 0 for c in comparisons)


@pytest.mark.slow  # about 10 s: the full run's time budget
def test_errors_exit_2_with_one_message(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run("mt-report", [str(empty)], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "no finished jobs" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1

    sweep = tmp_path / "sweep"
    write_job(sweep, "bahdanau", 1)
    write_job(sweep, "luong_dot", 1)
    proc = run("mt-report", [str(sweep), "--by", "model.nope"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "unknown --by key 'model.nope'" in proc.stderr.decode()
    proc = run("mt-report", [str(sweep), "--baseline", "luong_general"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "baseline 'luong_general' is not in the sweep" in proc.stderr.decode()


def test_operational_settings_and_keys_added_later_do_not_split_a_comparison():
    # a resumed job, another gold-sample size, or a config written before a key existed must not
    # become a variable of the comparison (they made every pairing fail on a real sweep)
    from mt.report.collect import Job
    from mt.report.group import varying_keys

    def job(name: str, **config) -> Job:
        return Job(name, Path(name), {}, config)

    jobs = [
        job(
            "a", **{"model.attention.name": "bahdanau", "resume": "runs/a", "alignment.valid_max_pairs": 500}
        ),
        job(
            "b",
            **{
                "model.attention.name": "luong_dot",
                "resume": None,
                "alignment.valid_max_pairs": 100,
                "trainer.progress": False,
            },
        ),  # fmt: skip
    ]
    assert varying_keys(jobs) == ["model.attention.name"]


def test_default_baseline_with_several_keys_is_the_group_at_schema_defaults():
    from mt.report.group import Group, pick_baseline

    keys = ["model.attention.name", "trainer.coverage_loss_weight"]
    groups = [Group(f"g{i}", {keys[0]: name, keys[1]: w}) for i, (name, w) in
              enumerate([("bahdanau", 1.0), ("bahdanau", 0.0), ("local_m", 0.0)])]  # fmt: skip
    base, note = pick_baseline(groups, keys, None)
    assert (
        base is groups[1] and note == "default for model.attention.name with the other keys at their defaults"
    )
    # one bahdanau group: that one, whatever its other keys
    assert pick_baseline([groups[2], groups[0]], keys, None) == (
        groups[0],
        "default for model.attention.name",
    )
    base, note = pick_baseline([groups[2], Group("g4", {keys[0]: "scaled_dot", keys[1]: 0.0})], keys, None)
    assert (
        base is groups[2] and "'bahdanau' (the default for model.attention.name) is not in the sweep" in note
    )
    two = [groups[1], Group("g3", {keys[0]: "bahdanau", keys[1]: 0.0}), groups[2]]
    assert "matches 2 groups" in pick_baseline(two, keys, None)[1]
    single = [Group(name, {keys[0]: name}) for name in ("local_m", "bahdanau")]
    assert pick_baseline(single, keys[:1], None) == (single[1], "default for model.attention.name")
