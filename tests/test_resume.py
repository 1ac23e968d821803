"""Exact resume: a run killed with SIGKILL and restarted with resume=RUN_DIR ends with the
same parameters, bit for bit, as a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from clihelpers import BIN, TINY_MODEL, run, tiny_corpus_args

STEPS = ["trainer.max_steps=40", "trainer.val_every=20", "trainer.checkpoint_every=4", "trainer.keep_last=2",
         "trainer.early_stopping_patience=0", "trainer.max_minutes=0", "model.dropout=0.3"]  # fmt: skip


def final_params(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["progress"]["step"] == 40
    return ckpt["model"]


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_sigkill_then_resume_is_bit_identical(tmp_path: Path):
    data = tiny_corpus_args(tmp_path)
    args = data + TINY_MODEL + STEPS

    straight = tmp_path / "straight"
    proc = run("mt-train", args + [f"hydra.run.dir={straight}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]

    killed = tmp_path / "killed"
    exe = BIN / "mt-train"
    p = subprocess.Popen([str(exe)] + args + [f"hydra.run.dir={killed}"], cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and not list((killed / "checkpoints").glob("step_00000012.pt")):
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    ckpt = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    assert 12 <= ckpt["progress"]["step"] < 40  # really stopped midway

    proc = run("mt-train", args + [f"resume={killed}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert b"resumed from" in proc.stdout + proc.stderr
    a, b = final_params(straight), final_params(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert len(list((killed / "checkpoints").glob("step_*.pt"))) == 2  # keep_last rotation


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path: Path):
    args = tiny_corpus_args(tmp_path) + TINY_MODEL + ["trainer.max_steps=100000", "trainer.val_every=100000",
                                                      "trainer.max_minutes=0"]  # fmt: skip
    run_dir = tmp_path / "run"
    p = subprocess.Popen([str(BIN / "mt-train")] + args + [f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and not list((run_dir / "tb").glob("events.*")):
        time.sleep(0.05)  # the events file appears when the training loop starts
    time.sleep(2.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, err.decode()[-2000:]
    assert b"stopped by signal SIGTERM" in err
    assert b"Traceback" not in err
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["progress"]["step"] > 0
    # and it resumes from there
    proc = run("mt-train", [a for a in args if not a.startswith("trainer.max_steps")]
               + [f"trainer.max_steps={ckpt['progress']['step'] + 3}", f"resume={run_dir}"], cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert (
        torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"]
        == ckpt["progress"]["step"] + 3
    )
