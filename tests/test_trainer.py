"""The training loop in-process: non-finite losses are skipped, counted, and stop the run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from tinytrainer import tiny_trainer

from mt.errors import TrainingStopped
from mt.training.trainer import Trainer


@pytest.fixture
def trainer(tmp_path: Path):
    return tiny_trainer(tmp_path, max_steps=30, val_every=1000, max_nonfinite=3)


def poison(trainer: Trainer, bad_calls: set[int]) -> list[int]:
    """Make the loss NaN on the given (0-based) calls of model.loss in training mode."""
    calls = []
    real = trainer.model.loss

    def loss(*args, **kwargs):
        out = real(*args, **kwargs)
        if trainer.model.training:
            calls.append(len(calls))
            if calls[-1] in bad_calls:
                return out[0] * math.nan, out[1]
        return out

    trainer.model.loss = loss  # type: ignore[method-assign]
    return calls


def test_isolated_nonfinite_losses_are_skipped_and_counted(trainer: Trainer):
    poison(trainer, {2, 5, 6})
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    progress = trainer.fit()
    assert progress.step == 30  # three skipped updates did not count as steps
    assert progress.nonfinite_total == 3 and progress.nonfinite_in_row == 0
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_a_skipped_update_leaves_the_parameters_unchanged(trainer: Trainer):
    poison(trainer, {0})
    batch = next(iter(trainer.loader))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    _, _, applied = trainer._update([batch])
    assert not applied
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.model.parameters(), strict=True))


def test_too_many_nonfinite_in_a_row_stop_with_a_checkpoint(trainer: Trainer):
    poison(trainer, set(range(4, 1000)))
    with pytest.raises(TrainingStopped, match=r"4 non-finite losses in a row \(trainer.max_nonfinite=3\)"):
        trainer.fit()
    ckpt = torch.load(trainer.ckpt_dir / "last.pt", weights_only=True)
    assert ckpt["progress"]["step"] == 4  # the last good state
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())


def test_time_breakdown_adds_up_with_a_final_validation(trainer: Trainer):
    """30 steps, validation every 1000: the only validation runs after the loop; its time is
    part of the training time, so step + validation seconds never exceed the total."""
    from mt.training.run import time_breakdown

    p = trainer.fit()
    assert [h["step"] for h in p.history] == [30]
    assert p.valid_seconds > 0 and p.step_seconds > 0
    assert p.step_seconds + p.valid_seconds <= p.train_seconds
    b = time_breakdown(p)
    assert b["other_seconds"] == pytest.approx(p.train_seconds - p.step_seconds - p.valid_seconds, abs=0.06)
    assert 0.0 <= b["other_fraction"] < 1.0


def test_a_skipped_update_does_not_repeat_the_step_cadence(trainer: Trainer):
    """A skipped (non-finite) update leaves the step where it was: validation, checkpoints and
    logging run once per step, not again for every batch skipped at that step."""
    t = trainer.cfg.trainer
    t.max_steps, t.val_every, t.checkpoint_every, t.keep_last = 12, 5, 3, 10
    # step -> updates skipped there: the first update, and right after a checkpoint and a validation
    skips = {0: 1, 3: 1, 5: 2}
    real = trainer._update

    def update(batch, n_tokens=None):
        if skips.get(trainer.progress.step, 0):
            skips[trainer.progress.step] -= 1
            return math.nan, math.nan, False
        return real(batch, n_tokens)

    trainer._update = update  # type: ignore[method-assign]
    saved: list[int] = []
    real_save = trainer.save

    def save(best: bool = False) -> None:
        saved.append(trainer.progress.step)
        real_save(best)

    trainer.save = save  # type: ignore[method-assign]
    p = trainer.fit()
    assert not any(skips.values())  # every planned skip happened
    assert p.step == 12
    assert [h["step"] for h in p.history] == [5, 10, 12]  # one record per validation step
    assert [s for s in saved if s < 12] == [3, 5, 6, 9, 10]  # each checkpoint written once
    assert sorted(f.name for f in trainer.ckpt_dir.glob("step_*.pt")) == [
        f"step_{s:08d}.pt" for s in (3, 6, 9, 12)
    ]
