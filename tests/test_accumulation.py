"""Gradient accumulation (trainer.accumulate_batches): N batches summed into one update give the
gradient of one batch holding them all, the loop groups an epoch's batches, and a real run of
mt-train with accumulation writes its steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from clihelpers import TINY_MODEL, run, tiny_corpus_args
from tinytrainer import tiny_trainer
from torch import nn

from mt.data.loaders import PairBatches
from mt.training.progress import grouped
from mt.training.trainer import Trainer


def without_dropout(trainer: Trainer) -> Trainer:
    for module in trainer.model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0  # the masks of two small batches and one large one differ
    return trainer


def trainer_in(path: Path, **trainer: object) -> Trainer:
    path.mkdir()
    return without_dropout(tiny_trainer(path, **trainer))


def gradients(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def test_accumulated_batches_give_the_gradient_of_one_batch_holding_them(tmp_path: Path) -> None:
    one = trainer_in(tmp_path / "one")
    acc = trainer_in(tmp_path / "acc", accumulate_batches=3)
    acc.model.load_state_dict(one.model.state_dict())
    pairs = PairBatches(one.data.train)
    parts = [list(range(0, 5)), list(range(5, 14)), list(range(14, 17))]  # unequal sizes and widths
    whole = [i for part in parts for i in part]
    loss_one, _, ok_one = one._update([pairs[whole]])
    loss_acc, _, ok_acc = acc._update([pairs[part] for part in parts])
    assert ok_one and ok_acc and loss_acc == pytest.approx(loss_one, rel=1e-6)
    g_one, g_acc = gradients(one), gradients(acc)
    assert g_one.keys() == g_acc.keys() and g_one
    for name in g_one:
        torch.testing.assert_close(g_acc[name], g_one[name], rtol=1e-5, atol=1e-7, msg=name)
    # and not the gradient of the last batch alone, nor of a mean over batches
    last = trainer_in(tmp_path / "last")
    last.model.load_state_dict(one.model.state_dict())
    last._update([pairs[parts[-1]]])
    assert any(not torch.allclose(g_one[n], g, rtol=1e-3) for n, g in gradients(last).items())


def test_grouped_keeps_order_and_the_short_last_group() -> None:
    assert list(grouped(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(grouped(range(4), 1)) == [[0], [1], [2], [3]]
    assert list(grouped([], 2)) == []


@pytest.mark.slow  # three real runs of mt-train
def test_mt_train_accumulates_and_resumes_exactly(tmp_path: Path) -> None:
    """A run of 8 updates of 2 batches each, and one stopped after 4 and resumed: the same
    parameters and the same place in the data."""
    model = [a for a in TINY_MODEL if not a.startswith(("trainer.max_steps=", "trainer.val_every="))]
    # the stop is a smaller step limit, which would move the cooldown (it follows the limit): off
    base = (
        tiny_corpus_args(tmp_path)
        + model
        + ["trainer.accumulate_batches=2", "trainer.val_every=4", "optim.cooldown=0"]
    )
    straight, split = tmp_path / "straight", tmp_path / "split"
    for args in (
        ["trainer.max_steps=8", f"hydra.run.dir={straight}"],
        ["trainer.max_steps=4", f"hydra.run.dir={split}"],
        ["trainer.max_steps=8", f"resume={split}"],
    ):
        proc = run("mt-train", base + args, tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    a = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(split / "checkpoints" / "last.pt", weights_only=True)
    assert a["progress"]["step"] == b["progress"]["step"] == 8
    batches = a["progress"]["epoch"], a["progress"]["batch_in_epoch"]
    assert batches == (b["progress"]["epoch"], b["progress"]["batch_in_epoch"])
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
