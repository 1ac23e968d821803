"""Learning-rate schedules: plateau on the validation score, warm-up then inverse square
root, linear decay over the training budget, or constant; any of them but the budget one
optionally cooled down over the end of the budget. Each has `step_update(step, seconds)`,
`valid_update(score)` and a state dict."""

from __future__ import annotations

import math
from typing import Any

import torch

from mt.config import COOLDOWN_SHAPES


class LRSchedule:
    """Sets the learning rate of every parameter group of `optimizer`."""

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, min_lr: float) -> None:
        self.optimizer, self.base_lr, self.min_lr = optimizer, base_lr, min_lr
        self.lr = base_lr
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def step_update(self, step: int, seconds: float = 0.0) -> None:
        """Called after every optimizer step (`step` = updates done so far, `seconds` = training
        wall time so far, the same on every rank)."""

    def valid_update(self, score: float) -> None:
        """Called after every validation with the score to maximise."""

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr = state["lr"]
        self._apply()


class Constant(LRSchedule):
    """No schedule: the learning rate stays at its base value."""


class InverseSqrt(LRSchedule):
    """Linear warm-up over `warmup` steps, then decay with 1/sqrt(step) (Vaswani et al., 2017)."""

    def __init__(self, optimizer, base_lr: float, min_lr: float, warmup: int) -> None:
        self.warmup = max(warmup, 1)
        super().__init__(optimizer, base_lr, min_lr)
        self.step_update(0)

    def step_update(self, step: int, seconds: float = 0.0) -> None:
        s = step + 1
        factor = min(s / self.warmup, math.sqrt(self.warmup / s))
        self.lr = max(self.base_lr * factor, self.min_lr if s > self.warmup else 0.0)
        self._apply()


def budget_done(step: int, seconds: float, total_steps: int, total_seconds: float) -> float:
    """Fraction of the training budget used, in [0, 1]: the larger of steps / `total_steps`
    and seconds / `total_seconds` (a limit of 0 is ignored)."""
    by_steps = step / total_steps if total_steps > 0 else 0.0
    by_time = seconds / total_seconds if total_seconds > 0 else 0.0
    return min(max(by_steps, by_time), 1.0)


class Budget(LRSchedule):
    """Linear warm-up over `warmup` steps, then linear decay to `min_lr` at the end of the
    training budget (Li et al., 2020, "Budgeted Training"): the rate is
    ``base_lr * (1 - done)``, where ``done`` is the larger of steps / `total_steps` and
    seconds / `total_seconds` (a limit of 0 is ignored), so a run reaches its smallest
    rate when whichever limit stops it is reached.

    With a time limit the rate depends on how fast the machine is; with only step limits
    it is a function of the step alone.
    """

    def __init__(
        self, optimizer, base_lr: float, min_lr: float, warmup: int, total_steps: int, total_seconds: float
    ) -> None:
        if total_steps <= 0 and total_seconds <= 0:
            raise ValueError("the budget schedule needs a step limit or a time limit to decay over")
        self.warmup, self.total_steps, self.total_seconds = max(warmup, 0), total_steps, total_seconds
        super().__init__(optimizer, base_lr, min_lr)
        self.step_update(0)

    def done(self, step: int, seconds: float) -> float:
        """Fraction of the budget used, in [0, 1]."""
        return budget_done(step, seconds, self.total_steps, self.total_seconds)

    def step_update(self, step: int, seconds: float = 0.0) -> None:
        warm = min((step + 1) / self.warmup, 1.0) if self.warmup else 1.0
        self.lr = max(self.base_lr * warm * (1.0 - self.done(step, seconds)), self.min_lr)
        self._apply()


class Plateau(LRSchedule):
    """Multiply the rate by `factor` on the `patience`-th validation in a row without a better
    score, then count again from zero.

    The rule of the trainer's early stopping too. PyTorch's ``ReduceLROnPlateau(patience=P)``
    tolerates P such validations and decays on the next one: our `patience` N is its P = N - 1.
    """

    def __init__(self, optimizer, base_lr: float, min_lr: float, factor: float, patience: int) -> None:
        if patience < 1:
            raise ValueError(f"plateau patience must be at least 1, got {patience}")
        super().__init__(optimizer, base_lr, min_lr)
        self.factor, self.patience = factor, patience
        self.best = -math.inf
        self.bad = 0  # validations in a row without a better score

    def valid_update(self, score: float) -> None:
        if score > self.best:
            self.best, self.bad = score, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            self.lr = max(self.lr * self.factor, self.min_lr)
            self.bad = 0
            self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best, self.bad = state["best"], state["bad"]


class Cooldown(LRSchedule):
    """Another schedule's rate, cooled down to `min_lr` over the last `fraction` of the training
    budget (constant rate plus cooldown, Hägele et al., 2024): with ``x`` the progress through
    the cooldown, in [0, 1], the rate is ``max(inner_lr * f(x), min_lr)`` where ``f(x) = 1 - x``
    (`shape` linear) or ``1 - sqrt(x)`` (`shape` 1-sqrt, their better cooldown).

    Progress is measured as in :class:`Budget`, by whichever limit (steps or time) is closer.
    """

    def __init__(
        self, inner: LRSchedule, fraction: float, shape: str, total_steps: int, total_seconds: float
    ) -> None:
        if total_steps <= 0 and total_seconds <= 0:
            raise ValueError("a cooldown needs a step limit or a time limit to end with")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"the cooldown fraction must be in (0, 1], got {fraction}")
        if shape not in COOLDOWN_SHAPES:
            raise ValueError(f"unknown cooldown shape {shape!r}; choose {' or '.join(COOLDOWN_SHAPES)}")
        self.inner, self.fraction, self.shape = inner, fraction, shape
        self.total_steps, self.total_seconds = total_steps, total_seconds
        self.factor = 1.0  # f(x) of the last step_update
        super().__init__(inner.optimizer, inner.base_lr, inner.min_lr)
        self.step_update(0)

    def _apply(self) -> None:
        self.lr = self.inner.lr if self.factor >= 1.0 else max(self.inner.lr * self.factor, self.min_lr)
        super()._apply()

    def step_update(self, step: int, seconds: float = 0.0) -> None:
        self.inner.step_update(step, seconds)
        done = budget_done(step, seconds, self.total_steps, self.total_seconds)
        x = max(done - (1.0 - self.fraction), 0.0) / self.fraction
        self.factor = 1.0 - (math.sqrt(x) if self.shape == "1-sqrt" else x)
        self._apply()

    def valid_update(self, score: float) -> None:
        self.inner.valid_update(score)
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "factor": self.factor, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        self.factor = state["factor"]
        self._apply()


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: Any, total_steps: int = 0, total_seconds: float = 0.0
) -> LRSchedule:
    """From an OptimConfig: `plateau`, `inverse_sqrt`, `budget` or `none`, cooled down over the
    last `cooldown` fraction of the budget when it is above 0.

    `total_steps` / `total_seconds` (0 = no limit): the training budget `budget` and the
    cooldown end with.
    """
    inner = _base_schedule(optimizer, cfg, total_steps, total_seconds)
    if cfg.cooldown <= 0:
        return inner
    if isinstance(inner, Budget):
        raise ValueError("optim.schedule=budget decays over the whole budget already: set optim.cooldown=0")
    return Cooldown(inner, cfg.cooldown, cfg.cooldown_shape, total_steps, total_seconds)


def _base_schedule(
    optimizer: torch.optim.Optimizer, cfg: Any, total_steps: int, total_seconds: float
) -> LRSchedule:
    if cfg.schedule == "plateau":
        return Plateau(optimizer, cfg.lr, cfg.min_lr, cfg.plateau_factor, cfg.plateau_patience)
    if cfg.schedule == "inverse_sqrt":
        return InverseSqrt(optimizer, cfg.lr, cfg.min_lr, cfg.warmup_steps)
    if cfg.schedule == "budget":
        return Budget(optimizer, cfg.lr, cfg.min_lr, cfg.warmup_steps, total_steps, total_seconds)
    if cfg.schedule == "none":
        return Constant(optimizer, cfg.lr, cfg.min_lr)
    raise ValueError(f"unknown optim.schedule {cfg.schedule!r}; choose plateau, inverse_sqrt, budget or none")
