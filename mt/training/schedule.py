"""Learning-rate schedules: plateau on the validation score, warm-up then inverse square
root, or constant. Each has `step_update(step)`, `valid_update(score)` and a state dict."""

from __future__ import annotations

import math
from typing import Any

import torch


class LRSchedule:
    """Sets the learning rate of every parameter group of `optimizer`."""

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, min_lr: float) -> None:
        self.optimizer, self.base_lr, self.min_lr = optimizer, base_lr, min_lr
        self.lr = base_lr
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def step_update(self, step: int) -> None:
        """Called after every optimizer step (`step` = updates done so far)."""

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

    def step_update(self, step: int) -> None:
        s = step + 1
        factor = min(s / self.warmup, math.sqrt(self.warmup / s))
        self.lr = max(self.base_lr * factor, self.min_lr if s > self.warmup else 0.0)
        self._apply()


class Plateau(LRSchedule):
    """Multiply the rate by `factor` after `patience` validations without a better score."""

    def __init__(self, optimizer, base_lr: float, min_lr: float, factor: float, patience: int) -> None:
        super().__init__(optimizer, base_lr, min_lr)
        self.factor, self.patience = factor, patience
        self.best = -math.inf
        self.bad = 0

    def valid_update(self, score: float) -> None:
        if score > self.best:
            self.best, self.bad = score, 0
            return
        self.bad += 1
        if self.bad > self.patience:
            self.lr = max(self.lr * self.factor, self.min_lr)
            self.bad = 0
            self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best, self.bad = state["best"], state["bad"]


def build_schedule(optimizer: torch.optim.Optimizer, cfg: Any) -> LRSchedule:
    """From an OptimConfig: `plateau`, `inverse_sqrt` or `none`."""
    if cfg.schedule == "plateau":
        return Plateau(optimizer, cfg.lr, cfg.min_lr, cfg.plateau_factor, cfg.plateau_patience)
    if cfg.schedule == "inverse_sqrt":
        return InverseSqrt(optimizer, cfg.lr, cfg.min_lr, cfg.warmup_steps)
    if cfg.schedule == "none":
        return Constant(optimizer, cfg.lr, cfg.min_lr)
    raise ValueError(f"unknown optim.schedule {cfg.schedule!r}; choose plateau, inverse_sqrt or none")
