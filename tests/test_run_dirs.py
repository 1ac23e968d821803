"""Run directories and `resume=` are never trusted blindly (docs/reliability.md, "Run directories
and resume: the rules"), through real tiny `mt-train` runs: a finished run resumed changes no
file, a run killed in its final evaluation redoes only that, a setting the checkpoint overrides
is refused by name, a directory holding a run or locked by a live process is refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
from clihelpers import BIN, TINY_MODEL, run, tiny_corpus_args

STEPS = ["trainer.max_steps=6", "trainer.val_every=3", "trainer.max_minutes=0",
         "trainer.early_stopping_patience=0"]  # fmt: skip


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root` (hidden ones included), by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def error_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-3000:]
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    return err


def step_of(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("finished")
    args = tiny_corpus_args(root) + TINY_MODEL + STEPS
    proc = run("mt-train", args + [f"hydra.run.dir={root / 'run'}"], cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return root / "run", args


@pytest.fixture
def done(finished_run, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of a finished run (6 steps, validated at 3 and 6, results.json written) and its arguments."""
    src, args = finished_run
    shutil.copytree(src, tmp_path / "run")
    return tmp_path / "run", args


def test_a_finished_run_resumed_changes_no_file(done, tmp_path: Path):
    run_dir, args = done
    before = snapshot(run_dir)
    proc = run("mt-train", args + [f"resume={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"nothing to do" in proc.stdout and b"no file changed" in proc.stdout
    assert snapshot(run_dir) == before  # not one more update, no checkpoint, not even Hydra's files


def test_a_run_killed_in_its_final_evaluation_redoes_only_that(done, tmp_path: Path):
    run_dir, args = done
    (run_dir / "results.json").unlink()  # as if killed while decoding the test set
    checkpoints = snapshot(run_dir / "checkpoints")
    proc = run("mt-train", args + [f"resume={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert snapshot(run_dir / "checkpoints") == checkpoints  # no update, no checkpoint written
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train"]["steps"] == 6
    assert [h["step"] for h in results["train"]["history"]] == [3, 6]  # no validation added
    assert results["test"]["test"]["bleu"]["score"] >= 0
    assert "training had ended at step 6 (max_steps=6)" in (run_dir / "train.log").read_text()


def test_resume_refuses_a_setting_the_checkpoint_overrides(done, tmp_path: Path):
    run_dir, args = done
    before = snapshot(run_dir)
    err = error_line(run("mt-train", args + [f"resume={run_dir}", "optim.lr=0.5", "seed=2"], cwd=tmp_path))
    assert "optim.lr is 0.002 there (requested 0.5)" in err and "seed is 1 there (requested 2)" in err
    assert "drop the override, or start a new run" in err.lower()
    assert snapshot(run_dir) == before


def test_resume_alone_takes_the_runs_own_settings(done, tmp_path: Path):
    run_dir, args = done
    before = snapshot(run_dir)
    # no data=local, no tiny model on this command line: they come from the run's overrides.yaml
    proc = run("mt-train", [f"resume={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"nothing to do" in proc.stdout
    assert snapshot(run_dir) == before
    # what the command line sets still wins, and is refused by name when the checkpoint fixes it
    err = error_line(run("mt-train", [f"resume={run_dir}", "model.dec_hidden=48"], cwd=tmp_path))
    assert "model.dec_hidden: checkpoint 64 vs now 48" in err and "data." not in err
    assert snapshot(run_dir) == before


def test_resume_with_an_unreadable_overrides_file_warns_and_uses_the_command_line(done, tmp_path: Path):
    run_dir, args = done
    overrides = run_dir / ".hydra" / "overrides.yaml"
    overrides.write_text("{not: a list}\n")
    before = snapshot(run_dir)
    proc = run("mt-train", args + [f"resume={run_dir}"], cwd=tmp_path)  # the full command line still works
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert f"warning: {overrides}: not a list of overrides".encode() in proc.stderr
    assert snapshot(run_dir) == before


@pytest.mark.slow  # about 10 s: the full run's time budget
def test_resume_with_more_steps_continues_and_records_it(done, tmp_path: Path):
    run_dir, args = done
    # only the new budget on the command line: the rest comes from the run's overrides.yaml
    proc = run("mt-train", [f"resume={run_dir}", "trainer.max_steps=9"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert (
        "resume: the run's own settings from .hydra/overrides.yaml: data=local"
        in (run_dir / "train.log").read_text()
    )
    assert step_of(run_dir) == 9
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train"]["steps"] == 9 and results["config"]["trainer"]["max_steps"] == 9
    assert [h["step"] for h in results["train"]["history"]] == [3, 6, 9]
    assert "max_steps: 9" in (run_dir / "config.yaml").read_text()


@pytest.mark.slow  # about 10 s: the full run's time budget
def test_resume_needs_a_run_directory_with_last_pt(done, tmp_path: Path):
    run_dir, args = done
    (run_dir / "checkpoints" / "last.pt").unlink()
    before = snapshot(run_dir)
    err = error_line(run("mt-train", args + [f"resume={run_dir}"], cwd=tmp_path))
    assert "best.pt but no checkpoints/last.pt" in err and "mt-evaluate checkpoint=" in err
    assert snapshot(run_dir) == before  # best.pt and results.json not overwritten by a fresh run

    missing = tmp_path / "nope"
    assert "no such directory" in error_line(run("mt-train", args + [f"resume={missing}"], cwd=tmp_path))
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no checkpoints/last.pt" in error_line(run("mt-train", args + [f"resume={empty}"], cwd=tmp_path))
    assert list(empty.iterdir()) == []


def test_a_fresh_run_into_an_existing_run_is_refused(done, tmp_path: Path):
    run_dir, args = done
    before = snapshot(run_dir)
    err = error_line(run("mt-train", args + [f"hydra.run.dir={run_dir}"], cwd=tmp_path))
    assert f"resume={run_dir}" in err and "another directory" in err
    assert snapshot(run_dir) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    assert "is not empty" in error_line(run("mt-train", args + [f"hydra.run.dir={other}"], cwd=tmp_path))
    assert snapshot(other) == {"notes.txt": hashlib.sha256(b"mine\n").hexdigest()}


def test_a_second_run_into_a_directory_in_use_is_refused(finished_run, tmp_path: Path):
    _, args = finished_run
    run_dir = tmp_path / "run"
    long = args + ["trainer.max_steps=100000", "trainer.val_every=100000", f"hydra.run.dir={run_dir}"]
    first = subprocess.Popen([str(BIN / "mt-train"), *long], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        lock, deadline = run_dir / ".lock", time.time() + 120
        while time.time() < deadline and not (lock.is_file() and lock.read_text().strip()):
            time.sleep(0.05)
        assert lock.read_text().strip() == str(first.pid)
        err = error_line(run("mt-train", long, cwd=tmp_path))
        assert f"in use by another mt-train (pid {first.pid}" in err
        assert first.poll() is None  # the first run goes on, its lock untouched
        assert lock.read_text().strip() == str(first.pid)
    finally:
        first.terminate()
        first.wait(timeout=120)


def test_a_lock_of_a_live_process_refuses_and_a_stale_one_is_taken_over(done, tmp_path: Path):
    run_dir, args = done
    (run_dir / ".lock").write_text(f"{os.getpid()}\n")  # a live process (this test) holds it
    before = snapshot(run_dir)
    err = error_line(run("mt-train", args + [f"resume={run_dir}", "trainer.max_steps=9"], cwd=tmp_path))
    assert f"pid {os.getpid()}" in err and str(run_dir / ".lock") in err
    assert snapshot(run_dir) == before

    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid no longer runs
    (run_dir / ".lock").write_text(f"{gone.pid}\n")
    proc = run("mt-train", args + [f"resume={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert f"taking over the stale lock {run_dir / '.lock'} of pid {gone.pid}".encode() in proc.stderr
    assert b"nothing to do" in proc.stdout
    assert not (run_dir / ".lock").exists()  # released at the end
    del before[".lock"]
    assert snapshot(run_dir) == before
