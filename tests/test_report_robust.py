"""`mt-report` on a sweep where one job's files are damaged: the report still covers the other
jobs (exit 0) and lists the damaged one under "not included" with the file and what is wrong;
with no usable job at all it is one `error:` line and exit 2."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from clihelpers import run
from test_report import SCORES, write_job

BAD = "model.attention=luong_dot,seed=3"
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root reads files whatever their mode


def copy_job(sweep: Path, mechanism: str, seed: int) -> Path:
    """Job `mechanism`, seed 1, copied as seed `seed` (its config says so)."""
    job = sweep / f"model.attention={mechanism},seed={seed}"
    shutil.copytree(sweep / f"model.attention={mechanism},seed=1", job)
    results = json.loads((job / "results.json").read_text())
    results["config"]["seed"] = seed
    (job / "results.json").write_text(json.dumps(results))
    return job


def make_sweep(root: Path) -> tuple[Path, Path]:
    """2 mechanisms x seeds 1, 2 plus bahdanau seed 3, all good, and luong_dot seed 3 (to damage),
    which pairs with bahdanau seed 3, so the paired bootstrap reads its outputs."""
    sweep = root / "sweep"
    for mechanism, seed in SCORES:
        write_job(sweep, mechanism, seed)
    copy_job(sweep, "bahdanau", 3)
    return sweep, copy_job(sweep, "luong_dot", 3)


def edit_results(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A damage: results.json rewritten after `change` edited it in place."""

    def damage(job: Path) -> None:
        results = json.loads((job / "results.json").read_text())
        change(results)
        (job / "results.json").write_text(json.dumps(results))

    return damage


def write_raw(rel: str, data: bytes) -> Callable[[Path], None]:
    def damage(job: Path) -> None:
        (job / rel).write_bytes(data)

    return damage


def make_dir(rel: str) -> Callable[[Path], None]:
    def damage(job: Path) -> None:
        (job / rel).unlink()
        (job / rel).mkdir()

    return damage


def set_score(where: str, metric: str, value: object) -> Callable[[Path], None]:
    def change(results: dict) -> None:
        block = results["valid"] if where == "valid" else results["test"][where]
        block[metric]["score"] = value

    return edit_results(change)


def set_key(key: str, value: object) -> Callable[[Path], None]:
    def change(results: dict) -> None:
        results[key] = value

    return edit_results(change)


def drop_key(key: str) -> Callable[[Path], None]:
    return edit_results(lambda results: results.pop(key))


NOT_UTF8 = b"a dog \xff\xfe runs\n"
CASES = {  # name -> (damage, what the reason must say)
    "invalid JSON": (write_raw("results.json", b'{"valid": {'), "results.json is not valid JSON"),
    "JSON list": (write_raw("results.json", b"[1, 2]"), "results.json holds a list, not a JSON object"),
    "JSON string": (write_raw("results.json", b'"done"'), "results.json holds a string, not a JSON object"),
    "results.json not UTF-8": (write_raw("results.json", NOT_UTF8), "results.json is not UTF-8 (byte 0xff on line 1)"),
    "results.json a directory": (make_dir("results.json"), "results.json is a directory, not a file"),
    "no config": (drop_key("config"), "results.json has no 'config' object"),
    "no test": (drop_key("test"), "results.json: test is null, not an object of test splits"),
    "no valid": (drop_key("valid"), "results.json: valid is null, not an object of scores"),
    "test a list": (set_key("test", ["test_2016_flickr"]), "results.json: test is a list, not an object"),
    "train a list": (set_key("train", [1, 2]), "results.json: train is a list, not an object"),
    "split not an object": (
        edit_results(lambda r: r["test"].update(test_2017_flickr=27.0)),
        "results.json: test.test_2017_flickr is a number, not an object of scores",
    ),
    "no bleu": (
        edit_results(lambda r: r["test"]["test_2016_flickr"].pop("bleu")),
        'results.json: test.test_2016_flickr.bleu is null, not {"score": <number>}',
    ),
    "score a string": (
        set_score("test_2016_flickr", "bleu", "30.1"),
        "results.json: test.test_2016_flickr.bleu.score is a string, not a number",
    ),
    "score a boolean": (set_score("valid", "bleu", True), "results.json: valid.bleu.score is a boolean, not a number"),
    "score NaN": (
        set_score("test_2016_flickr", "bleu", float("nan")),
        "results.json: test.test_2016_flickr.bleu.score is nan, not a finite score >= 0",
    ),
    "score infinite": (
        set_score("test_2017_flickr", "chrf", float("inf")),
        "results.json: test.test_2017_flickr.chrf.score is inf, not a finite score >= 0",
    ),
    "TER -inf": (
        set_score("test_2016_flickr", "ter", float("-inf")),
        "results.json: test.test_2016_flickr.ter.score is -inf",
    ),
    "minutes overflow": (
        edit_results(lambda r: r["train"].update(train_minutes=1e308)),
        "results.json: train.train_minutes is 1e+308, not a number of minutes",
    ),
    "hyp not UTF-8": (write_raw("outputs/test_2016_flickr.hyp", NOT_UTF8), "outputs/test_2016_flickr.hyp is not UTF-8 (byte 0xff on line 1)"),
    "ref not UTF-8": (write_raw("outputs/test_2017_flickr.ref", b"ok\n" + NOT_UTF8), "outputs/test_2017_flickr.ref is not UTF-8 (byte 0xff on line 2)"),
    "hyp a directory": (make_dir("outputs/test_2016_flickr.hyp"), "outputs/test_2016_flickr.hyp is a directory, not a file"),
}  # fmt: skip


def report_of(sweep: Path) -> tuple[dict, str]:
    """Run the real mt-report on `sweep`; it must succeed -> (report.json, report.md)."""
    proc = run("mt-report", [str(sweep), "--bootstrap", "20"], cwd=sweep.parent, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    return json.loads((sweep / "report.json").read_text()), (sweep / "report.md").read_text()


def assert_listed(sweep: Path, reason: str) -> None:
    """The good jobs are reported as usual and BAD is listed as not included, with `reason`."""
    report, md = report_of(sweep)
    groups = {g["name"]: g for g in report["groups"]}
    assert {name: g["n"] for name, g in groups.items()} == {"bahdanau": 3, "luong_dot": 2}
    assert BAD not in groups["luong_dot"]["jobs"]
    assert [m["job"] for m in report["missing"]] == [BAD]
    assert reason in report["missing"][0]["reason"]
    assert f"- `{BAD}`: {report['missing'][0]['reason']}" in md.split("## Not included", 1)[1]
    bleu = groups["luong_dot"]["test"]["test_2016_flickr"]["bleu"]
    assert bleu["values"] == [100.0, 100.0]  # only the good runs, nothing NaN
    tested = {(p["job"], c["split"]) for c in report["significance"]["comparisons"] for p in c["pairs"]}
    assert ("model.attention=luong_dot,seed=2", "test_2017_flickr") in tested


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_job_is_listed_with_its_reason(case: str, tmp_path: Path):
    damage, reason = CASES[case]
    sweep, bad = make_sweep(tmp_path)
    damage(bad)
    assert_listed(sweep, reason)


@pytest.mark.skipif(ROOT, reason="root reads files whatever their permissions")
@pytest.mark.parametrize("rel", ["results.json", "outputs/test_2016_flickr.hyp", "outputs", "."])
def test_a_job_with_an_unreadable_file_is_listed(rel: str, tmp_path: Path):
    sweep, bad = make_sweep(tmp_path)
    (bad / rel).chmod(0)
    try:
        assert_listed(sweep, "Permission denied")
    finally:
        (bad / rel).chmod(0o755)


def test_unreadable_files_are_reasons_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the same as above where the tests run as root: reading the file raises PermissionError
    from mt.report.collect import collect_jobs

    sweep, bad = make_sweep(tmp_path)
    denied = {bad / "outputs" / "test_2017_flickr.ref"}
    for name in ("read_bytes", "read_text"):
        original = getattr(Path, name)

        def read(self: Path, *args, _original=original, **kwargs):
            if self in denied:
                raise PermissionError(13, "Permission denied", str(self))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Path, name, read)
    jobs, missing = collect_jobs(sweep)
    assert len(jobs) == 5
    assert [(m.name, m.reason) for m in missing] == [
        (BAD, "outputs/test_2017_flickr.ref cannot be read (Permission denied)")
    ]


def test_no_usable_job_is_one_error_line_with_the_reasons(tmp_path: Path):
    sweep = tmp_path / "sweep"
    write_job(sweep, "bahdanau", 1)
    write_job(sweep, "luong_dot", 1)
    (sweep / "model.attention=bahdanau,seed=1" / "results.json").write_bytes(b"[]")
    set_score("valid", "bleu", float("nan"))(sweep / "model.attention=luong_dot,seed=1")
    proc = run("mt-report", [str(sweep)], cwd=tmp_path, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "error: no finished jobs to report in" in err
    assert "model.attention=bahdanau,seed=1: results.json holds a list, not a JSON object" in err
    assert "model.attention=luong_dot,seed=1: results.json: valid.bleu.score is nan" in err
