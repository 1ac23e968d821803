"""`mt-report` with AER: hand-made sweep directories whose jobs hold alignment.json files with
hand-written per-sentence link counts, whose corpus AER is worked out by hand below."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from clihelpers import run

SPLIT = "test_2016_flickr"
N = 20  # gold sentences
FIELDS = ["predicted", "sure", "a_and_s", "a_and_p", "possible"]
# (mechanism, seed) -> (row of even sentences, row of odd sentences), for all links and in-vocabulary
# links. Gold: 4 sure and 6 possible links per sentence, 3 and 4 of them in the vocabulary.
ROWS = {
    ("bahdanau", 1): (([4, 4, 2, 3, 6], [5, 4, 1, 2, 6]), ([3, 3, 1, 2, 4], [4, 3, 1, 1, 4])),
    ("bahdanau", 2): (([4, 4, 2, 2, 6], [4, 4, 1, 2, 6]), ([3, 3, 2, 2, 4], [3, 3, 1, 1, 4])),
    ("luong_dot", 1): (([4, 4, 4, 4, 6], [4, 4, 3, 4, 6]), ([3, 3, 3, 3, 4], [3, 3, 2, 3, 4])),
    ("luong_dot", 2): (([4, 4, 4, 4, 6], [3, 4, 3, 3, 6]), ([3, 3, 3, 3, 4], [3, 3, 3, 3, 4])),
}
# AER = 1 - (sum|A∩S| + sum|A∩P|) / (sum|A| + sum|S|), summed over 10 even and 10 odd sentences:
AER = {  # (mechanism, seed) -> (AER, in-vocabulary AER), as fractions
    ("bahdanau", 1): (1 - (30 + 50) / (90 + 80), 1 - (20 + 30) / (70 + 60)),  # 52.94 %, 61.54 %
    ("bahdanau", 2): (1 - (30 + 40) / (80 + 80), 1 - (30 + 30) / (60 + 60)),  # 56.25 %, 50.00 %
    ("luong_dot", 1): (1 - (70 + 80) / (80 + 80), 1 - (50 + 60) / (60 + 60)),  # 6.25 %, 8.33 %
    ("luong_dot", 2): (1 - (70 + 70) / (70 + 80), 0.0),  # 6.67 %, 0.00 %
}
BLEU = {("bahdanau", 1): 30.1, ("bahdanau", 2): 32.3, ("luong_dot", 1): 35.0, ("luong_dot", 2): 36.5}
LINES = [f"a dog runs {i}" for i in range(N)]


def counts(mechanism: str, seed: int, n: int = N) -> dict:
    """The sentence_counts block of a job: ROWS repeated over n sentences."""
    (even, odd), (even_v, odd_v) = ROWS[(mechanism, seed)]
    return {
        "fields": FIELDS,
        "all": [list(even if i % 2 == 0 else odd) for i in range(n)],
        "in_vocabulary": [list(even_v if i % 2 == 0 else odd_v) for i in range(n)],
    }


def write_job(sweep: Path, mechanism: str, seed: int, alignment: bool = True) -> Path:
    """A finished job (results.json, outputs/) and, unless `alignment` is False, its alignment.json."""
    job = sweep / f"model.attention={mechanism},seed={seed}"
    (job / "outputs").mkdir(parents=True)
    bleu = BLEU[(mechanism, seed)]
    results = {
        "valid": {"bleu": {"score": bleu + 1}, "chrf": {"score": bleu + 20}},
        "test": {SPLIT: {"bleu": {"score": bleu}, "chrf": {"score": bleu + 20}, "sentences": N}},
        "train": {"steps": 100, "train_minutes": 10.0},
        "config": {"model": {"attention": {"name": mechanism}}, "seed": seed},
    }
    (job / "results.json").write_text(json.dumps(results))
    for ext in ("hyp", "ref"):
        (job / "outputs" / f"{SPLIT}.{ext}").write_text("\n".join(LINES) + "\n")
    if alignment:
        aer, aer_voc = AER[(mechanism, seed)]
        data = {
            "all": {"aer": aer, "precision": 0.5, "recall": 0.5, "sentences": N},
            "in_vocabulary": {"aer": aer_voc, "precision": 0.5, "recall": 0.5, "sentences": N},
            "sentence_counts": counts(mechanism, seed),
            "settings": {"gold": "gold.align", "method": "argmax"},
        }
        (job / "alignment.json").write_text(json.dumps(data))
    return job


def write_sweep(sweep: Path, alignment: bool = True) -> Path:
    for mechanism, seed in ROWS:
        write_job(sweep, mechanism, seed, alignment)
    return sweep


def table_row(markdown: str, heading: str, label: str) -> list[str]:
    """The cells of the row `label` in the table under `## heading`."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} under {heading!r}:\n{section}")


def mean_std_pct(values: list[float]) -> str:
    pct = [100 * v for v in values]
    return f"{statistics.mean(pct):.2f} ± {statistics.stdev(pct):.2f}"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """2 mechanisms x 2 seeds with AER, reported by the real CLI."""
    sweep = write_sweep(tmp_path_factory.mktemp("report_aer") / "sweep")
    proc = run("mt-report", [str(sweep), "--bootstrap", "200"], cwd=sweep.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    (sweep / "stdout.md").write_bytes(proc.stdout)
    return sweep


def test_aer_columns_beside_bleu_with_mean_and_std(sweep: Path):
    md = (sweep / "report.md").read_text()
    header = md.split("## BLEU\n", 1)[1].strip().splitlines()[0]
    assert header == (
        f"| model.attention.name | n | valid | {SPLIT} | AER % ↓ | AER in-voc % ↓ | train min |"
    )
    for mechanism, label in (("bahdanau", "bahdanau (baseline)"), ("luong_dot", "luong_dot")):
        row = table_row(md, "BLEU", label)
        assert row[3] == f"{statistics.mean([BLEU[(mechanism, s)] for s in (1, 2)]):.2f} ± " + (
            f"{statistics.stdev([BLEU[(mechanism, s)] for s in (1, 2)]):.2f}"
        )
        assert row[4] == mean_std_pct([AER[(mechanism, s)][0] for s in (1, 2)])
        assert row[5] == mean_std_pct([AER[(mechanism, s)][1] for s in (1, 2)])
    assert table_row(md, "BLEU", "luong_dot")[4] == "6.46 ± 0.29"  # (6.25 + 6.67) / 2, by hand
    assert "AER: alignment error rate" in md and "in %, lower is better" in md
    assert "AER" not in md.split("## chrF\n", 1)[1].split("\n## ", 1)[0]  # beside BLEU only
    stdout = (sweep / "stdout.md").read_text()
    assert "4 jobs in 2 groups, 4 with AER" in stdout


def test_report_json_has_aer_in_percent(sweep: Path):
    report = json.loads((sweep / "report.json").read_text())
    alignment = report["alignment"]
    assert alignment["columns"] == ["aer", "aer_in_vocabulary"]
    assert alignment["unit"] == "%" and alignment["lower_is_better"] is True and alignment["runs"] == 4
    groups = {g["name"]: g for g in report["groups"]}
    for mechanism in ("bahdanau", "luong_dot"):
        for k, key in enumerate(("aer", "aer_in_vocabulary")):
            stat = groups[mechanism]["alignment"][key]
            expected = [100 * AER[(mechanism, s)][k] for s in (1, 2)]
            assert stat["values"] == pytest.approx(expected)
            assert stat["mean"] == pytest.approx(statistics.mean(expected))
            assert stat["std"] == pytest.approx(statistics.stdev(expected))
    assert groups["bahdanau"]["alignment"]["aer"]["values"] == pytest.approx([52.941176, 56.25])


def test_clearly_better_alignment_is_significant_with_the_right_sign(sweep: Path):
    sig = json.loads((sweep / "report.json").read_text())["alignment"]["significance"]
    assert sig["n_resamples"] == 200 and sig["bootstrap_seed"] == 12345 and sig["notes"] == []
    assert {(c["group"], c["scope"]) for c in sig["comparisons"]} == {
        ("luong_dot", "aer"),
        ("luong_dot", "aer_in_vocabulary"),
    }
    for c in sig["comparisons"]:
        k = 0 if c["scope"] == "aer" else 1
        assert c["tested"] == 2 and c["significant"] == 2 and c["lower"] == 2 and c["higher"] == 0
        for p, seed in zip(c["pairs"], (1, 2), strict=True):
            assert p["pair"] == f"seed={seed}" and p["baseline_job"].endswith(f"seed={seed}")
            assert p["baseline"] == pytest.approx(100 * AER[("bahdanau", seed)][k])
            assert p["system"] == pytest.approx(100 * AER[("luong_dot", seed)][k])
            assert p["delta"] == pytest.approx(p["system"] - p["baseline"]) and p["delta"] < -40
            assert p["p_value"] < 0.01
    md = (sweep / "report.md").read_text()
    assert "## Paired bootstrap of AER against bahdanau" in md
    assert "Lower AER is better" in md
    row = table_row(md, "Paired bootstrap of AER against bahdanau", "luong_dot")
    assert row[1] == "AER" and row[2].startswith("-") and row[4] == "2/2" and row[5] == "2/2"


def test_worse_alignment_gets_a_positive_delta(tmp_path: Path):
    from mt.report.build import build_report

    report = build_report(write_sweep(tmp_path / "sweep"), baseline="luong_dot", n_resamples=100)
    comparisons = report["alignment"]["significance"]["comparisons"]
    assert [c["group"] for c in comparisons] == ["bahdanau", "bahdanau"]
    for c in comparisons:
        assert c["delta_mean"] > 40 and c["significant"] == 2
        assert c["higher"] == 2 and c["lower"] == 0


def test_identical_counts_give_p_1_and_the_bootstrap_matches_a_plain_loop():
    import numpy as np

    from mt.report.aer_significance import paired_bootstrap_aer

    a = counts("bahdanau", 1)["all"]
    same = paired_bootstrap_aer(a, [list(r) for r in a], n_resamples=100, seed=12345)
    assert same["delta"] == 0.0 and same["p_value"] == 1.0
    # One more right link in one sentence: a p-value from the resamples, recomputed with plain loops.
    b = [list(r) for r in a]
    b[1] = [5, 4, 2, 3, 6]
    got = paired_bootstrap_aer(a, b, n_resamples=300, seed=7)

    def aer(rows: list[list[int]]) -> float:
        n_a, n_s, a_s, a_p = (sum(r[k] for r in rows) for k in range(4))
        return 1 - (a_s + a_p) / (n_a + n_s)

    idxs = np.random.default_rng(7).choice(N, size=(300, N), replace=True)
    diffs = [abs(aer([b[i] for i in row]) - aer([a[i] for i in row])) for row in idxs]
    mean = sum(diffs) / len(diffs)
    observed = abs(aer(b) - aer(a))
    p = (sum(d - mean > observed for d in diffs) + 1) / 301
    assert got["delta"] == pytest.approx(100 * (aer(b) - aer(a)))
    assert got["p_value"] == pytest.approx(p) and got["p_value"] > 0.05


def test_different_gold_sets_are_not_compared(tmp_path: Path):
    from mt.report.build import build_report
    from mt.report.render import render_markdown

    sweep = write_sweep(tmp_path / "sweep")
    path = sweep / "model.attention=luong_dot,seed=2" / "alignment.json"
    data = json.loads(path.read_text())
    data["sentence_counts"] = counts("luong_dot", 2, n=N - 1)  # a gold set one sentence shorter
    data["all"]["aer"] = 1 - (10 * 4 + 9 * 3 + 10 * 4 + 9 * 3) / (10 * 4 + 9 * 3 + 19 * 4)  # 1 - 134/143
    data["in_vocabulary"]["aer"] = 0.0
    path.write_text(json.dumps(data))
    report = build_report(sweep, n_resamples=100)
    sig = report["alignment"]["significance"]
    assert all(c["tested"] == 1 and c["pairs"][0]["pair"] == "seed=1" for c in sig["comparisons"])
    assert sig["notes"] == [
        "model.attention=luong_dot,seed=2 and model.attention=bahdanau,seed=2 were scored on different "
        "gold sets (19 and 20 sentences); AER not compared: score both with the same mt-align gold=FILE"
    ]
    assert "were scored on different gold sets (19 and 20 sentences)" in render_markdown(report)
    # same length, other sure links (|S| = 5 in the even sentences): also another gold set
    path = sweep / "model.attention=luong_dot,seed=1" / "alignment.json"
    data = json.loads(path.read_text())
    for row in data["sentence_counts"]["all"][::2]:
        row[1] = 5
    data["all"]["aer"] = 1 - (70 + 80) / (80 + 90)
    path.write_text(json.dumps(data))
    sig = build_report(sweep, n_resamples=100)["alignment"]["significance"]
    assert all(c["tested"] == 0 for c in sig["comparisons"])
    assert "the same number of sentences but different sure/possible links" in sig["notes"][0]


def test_malformed_alignment_json_is_a_one_line_note(tmp_path: Path):
    sweep = write_sweep(tmp_path / "sweep")
    (sweep / "model.attention=luong_dot,seed=2" / "alignment.json").write_text('{"all": {"aer": 0.1,')
    bad = sweep / "model.attention=bahdanau,seed=2" / "alignment.json"
    data = json.loads(bad.read_text())
    data["all"]["aer"] = 0.2  # its counts give 0.5625
    bad.write_text(json.dumps(data))
    proc = run("mt-report", [str(sweep), "--bootstrap", "50"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert "Traceback" not in proc.stderr.decode()
    md = (sweep / "report.md").read_text()
    notes = [line for line in md.splitlines() if "alignment.json is malformed" in line]
    assert len(notes) == 2
    assert notes[0].startswith(
        "- model.attention=bahdanau,seed=2/alignment.json is malformed (all.aer is 0.2000"
    )
    assert notes[1].startswith("- model.attention=luong_dot,seed=2/alignment.json is malformed (unreadable")
    assert all("no AER" in n and "mt-align" in n for n in notes)
    # the runs stay in the BLEU table; their AER cells count one run each
    row = table_row(md, "BLEU", "luong_dot")
    assert row[1] == "2" and row[4] == f"{100 * AER[('luong_dot', 1)][0]:.2f} (n=1)"
    sig = json.loads((sweep / "report.json").read_text())["alignment"]["significance"]
    assert all(c["tested"] == 1 for c in sig["comparisons"])


def test_jobs_without_alignment_json_have_no_aer_columns(tmp_path: Path):
    sweep = write_sweep(tmp_path / "sweep", alignment=False)
    proc = run("mt-report", [str(sweep), "--bootstrap", "50"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    md = (sweep / "report.md").read_text()
    assert "AER" not in md
    header = md.split("## BLEU\n", 1)[1].strip().splitlines()[0]
    assert header == f"| model.attention.name | n | valid | {SPLIT} | train min |"
    assert json.loads((sweep / "report.json").read_text())["alignment"] is None
    # one job with alignment.json: the columns appear, "–" for the group without any
    write_job(tmp_path / "one", "bahdanau", 1)
    write_job(tmp_path / "one", "luong_dot", 1, alignment=False)
    from mt.report.build import build_report
    from mt.report.render import render_markdown

    report = build_report(tmp_path / "one", n_resamples=50)
    md = render_markdown(report)
    assert table_row(md, "BLEU", "luong_dot")[4:6] == ["–", "–"]
    assert table_row(md, "BLEU", "bahdanau (baseline)")[4] == f"{100 * AER[('bahdanau', 1)][0]:.2f}"
    assert all(c["tested"] == 0 for c in report["alignment"]["significance"]["comparisons"])
