"""Failures outside the happy path are one `error:` line and exit 2, found before the work they
would lose, and leave what was written before intact (issue: reliability II, pattern 4): a device
that is absent, an interpolation that names no key, a path that is a directory or a symlink
loop, an empty test split (found before training), a plot that cannot be written (a warning,
the run goes on), and a full disk during the final evaluation (what was decoded is kept and
`resume=` finishes the run without decoding it again)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clihelpers import TINY_MODEL, run, tiny_corpus_args

STEPS = ["trainer.max_steps=4", "trainer.val_every=4", "trainer.early_stopping_patience=0"]


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one `error:` line of a command that failed as it should (exit 2, no traceback)."""
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("late")
    args = tiny_corpus_args(root) + TINY_MODEL + STEPS
    proc = run("mt-train", args + [f"hydra.run.dir={root / 'run'}"], cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return root, args


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.slow  # about 10 s: the full run's time budget
def test_cuda_without_cuda_is_a_config_error_before_any_file(trained, tmp_path: Path) -> None:
    root, args = trained
    proc = run("mt-train", args + ["trainer.device=cuda", f"hydra.run.dir={tmp_path / 'r'}"], cwd=root)
    assert "config error at `trainer.device`: cuda but CUDA is not available" in error_line(proc)
    assert not (tmp_path / "r" / "checkpoints").exists()
    proc = run(
        "mt-translate",
        [f"checkpoint={root / 'run/checkpoints/best.pt'}", "device=cuda:1"],
        cwd=root,
        stdin=b"x\n",
    )
    assert "config error at `device`" in error_line(proc)


def test_unknown_device_string_names_the_key(trained) -> None:
    root, _ = trained
    proc = run(
        "mt-translate",
        [f"checkpoint={root / 'run/checkpoints/best.pt'}", "device=xpu:3"],
        cwd=root,
        stdin=b"x\n",
    )
    assert "config error at `device`: 'xpu:3'" in error_line(proc)


def test_interpolation_that_names_no_key_is_refused_by_name(trained, tmp_path: Path) -> None:
    root, args = trained
    proc = run("mt-train", args + ["trainer.max_steps=${nope}", f"hydra.run.dir={tmp_path / 'r'}"], cwd=root)
    err = error_line(proc)
    assert "bad override `trainer.max_steps=${nope}`" in err and "Interpolation key 'nope' not found" in err


@pytest.mark.parametrize("kind", ["directory", "symlink loop", "dangling symlink"])
def test_checkpoint_path_that_is_not_a_file_says_what_it_is(trained, tmp_path: Path, kind: str) -> None:
    root, _ = trained
    path = tmp_path / "ck.pt"
    if kind == "directory":
        path.mkdir()
        expected = "is a directory, not a file"
    elif kind == "symlink loop":
        os.symlink(tmp_path / "other", path)
        os.symlink(path, tmp_path / "other")
        expected = "is a symlink loop"
    else:
        os.symlink(tmp_path / "gone.pt", path)
        expected = "which does not exist"
    proc = run("mt-evaluate", [f"checkpoint={path}", f"hydra.run.dir={tmp_path / 'ev'}"], cwd=root)
    assert expected in error_line(proc)


def test_empty_test_split_is_found_before_training(trained, tmp_path: Path) -> None:
    root, args = trained
    (tmp_path / "empty.de").write_text("")
    (tmp_path / "empty.en").write_text("")
    run_dir = tmp_path / "r"
    proc = run(
        "mt-train", args + [f"data.files.test={tmp_path / 'empty'}", f"hydra.run.dir={run_dir}"], cwd=root
    )
    err = error_line(proc)
    assert "the test split of data.source=local is empty" in err and "~data.files.test" in err
    assert not (run_dir / "checkpoints").exists(), "refused only after training"


def test_output_under_a_file_is_one_line_and_no_traceback(trained, tmp_path: Path) -> None:
    root, _ = trained
    (tmp_path / "afile").write_text("keep me\n")
    out = tmp_path / "afile" / "out.txt"
    proc = run("mt-translate", [f"checkpoint={root / 'run/checkpoints/best.pt'}", f"output={out}"], cwd=root,
               stdin=b"ein Hund\n")  # fmt: skip
    assert str(tmp_path / "afile") in error_line(proc)
    assert (tmp_path / "afile").read_text() == "keep me\n"


PLOTS_FAIL = """
import errno, sys
from matplotlib.figure import Figure
def full(self, *a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")
Figure.savefig = full
from mt.cli.train import main
sys.argv = ["mt-train", *sys.argv[1:]]
main()
"""


@pytest.mark.slow  # about 10 s: the full run's time budget
def test_plots_that_cannot_be_written_are_a_warning_and_the_run_finishes(trained, tmp_path: Path) -> None:
    root, args = trained
    run_dir = tmp_path / "r"
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run([sys.executable, "-c", PLOTS_FAIL, *args, f"hydra.run.dir={run_dir}"], cwd=root,
                          capture_output=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    log = proc.stdout.decode() + proc.stderr.decode() + (run_dir / "train.log").read_text()
    assert "plot not saved: " in log and "No space left on device" in log, log[-3000:]
    assert (run_dir / "results.json").is_file()
    assert not list((run_dir / "plots").glob("*.png")) and not list((run_dir / "plots").glob(".*"))


# A full disk while the final evaluation writes the test split's outputs: an OSError(ENOSPC)
# injected into the one write helper (a real small tmpfs would need root and a size tuned to the
# model); the command is the real `mt-train` entry point.
FULL_DISK = """
import errno, sys
import mt.evaluation.evaluate as ev
real = ev.write_lines
def full(path, lines):
    if str(path).endswith("test.hyp"):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return real(path, lines)
ev.write_lines = full
from mt.cli.train import main
sys.argv = ["mt-train", *sys.argv[1:]]
main()
"""


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_full_disk_in_final_evaluation_keeps_what_was_decoded_and_resume_finishes(
    trained, tmp_path: Path
) -> None:
    root, args = trained
    run_dir = tmp_path / "r"
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, *args, f"hydra.run.dir={run_dir}"], cwd=root,
                          capture_output=True, env=env, timeout=300)  # fmt: skip
    err = error_line(proc)
    assert "No space left on device" in err and "resume=" in err
    assert not (run_dir / "results.json").exists()
    kept = snapshot(run_dir / "checkpoints")
    valid = (run_dir / "outputs" / "validation.hyp").read_bytes()
    proc = run("mt-train", args + [f"resume={run_dir}", f"hydra.run.dir={run_dir}"], cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    log = proc.stderr.decode() + proc.stdout.decode()
    assert "validation: reusing the outputs decoded before" in log, log[-3000:]
    assert (run_dir / "results.json").is_file() and (run_dir / "outputs" / "test.hyp").is_file()
    assert (run_dir / "outputs" / "validation.hyp").read_bytes() == valid
    assert snapshot(run_dir / "checkpoints") == kept
